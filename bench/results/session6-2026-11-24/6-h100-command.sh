S=build-cuda/stage-h1
export LD_LIBRARY_PATH=$PWD/$S/lib:${LD_LIBRARY_PATH:-}
nvidia-smi --query-gpu=name --format=csv,noheader
( time $S/test_gpu "[model]" ) > $OUT/tests.txt 2>&1; grep "^model \|passed\|failed\|real" $OUT/tests.txt
$S/bench_gpu_generate --hf-config $OUT/hf_gen > $OUT/gen.txt 2>&1; grep "^generate" $OUT/gen.txt
python3 tools/bench_hf_generate.py $OUT/hf_gen 2>&1 | tail -1 | tee $OUT/hf_gen.txt
rm -rf $OUT/hf_gen
