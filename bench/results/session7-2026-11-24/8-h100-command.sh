# call 8: [grouped_linear] with the BF16 cuBLASLt loop checked too; the BF16 head by vocab chunk
S=build-cuda/stage-v
export LD_LIBRARY_PATH=$PWD/$S/lib:${LD_LIBRARY_PATH:-}
$S/bench_gpu_moe_head --head-chunks > $OUT/head_chunks.txt 2>&1; echo "head rc $?"; cat $OUT/head_chunks.txt
( time $S/test_gpu "[grouped_linear]" ) > $OUT/tests.txt 2>&1; grep "passed\|failed\|real" $OUT/tests.txt | tail -4
grep -B3 -A10 "FAILED" $OUT/tests.txt | head -30
grep "loop bf16" $OUT/tests.txt | awk '{print $NF, $0}' | sort -g | tail -2
