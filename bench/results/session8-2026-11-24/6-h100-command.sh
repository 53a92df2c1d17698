# call 6: the final build's remaining GPU tests under CRUCIBLE_POISON_EMPTY=1; the FP8
# step's per-kernel table with the idle-gap table; generate against transformers
S=build-cuda/stage-v
export LD_LIBRARY_PATH=$PWD/$S/lib:${LD_LIBRARY_PATH:-}
( time CRUCIBLE_POISON_EMPTY=1 timeout 300 $S/test_gpu "[grouped_linear],[weight_cache],[decode],[kd_head],[rmsnorm],[swiglu],[embedding],[rope],[cast],[tensor_ops],[moe_routing]" ) > $OUT/tests.txt 2>&1; grep "passed\|failed\|real" $OUT/tests.txt | tail -4
grep -B3 -A12 "FAILED" $OUT/tests.txt | head -40
CRUCIBLE_TRACE_DIV=5 CRUCIBLE_TRACE_TOP=40 LD_PRELOAD=$PWD/$S/lib/libcrucible_kernel_trace.so \
  timeout 120 $S/bench_gpu_model_step --precision fp8 > $OUT/trace_fp8.txt 2>&1
echo "trace rc $?"; grep "^step" $OUT/trace_fp8.txt; sed -n '/idle GPU/,$p' $OUT/trace_fp8.txt | cut -c1-120 | head -18
timeout 100 $S/bench_gpu_generate --hf-config $OUT/hf_gen > $OUT/gen.txt 2>&1; grep "^gen" $OUT/gen.txt
[ -f $OUT/hf_gen/config.json ] && timeout 90 python3 tools/bench_hf_generate.py $OUT/hf_gen 2>&1 | tail -1 | tee $OUT/hf_gen.txt
rm -rf $OUT/hf_gen
