# call 8: attention keeps its BF16 q, k, v for the backward: poisoned [attention] and
# [model] tests, the FP8 step's trace, steps against transformers
S=build-cuda/stage-v
export LD_LIBRARY_PATH=$PWD/$S/lib:${LD_LIBRARY_PATH:-}
( time CRUCIBLE_POISON_EMPTY=1 timeout 240 $S/test_gpu "[attention],[model]" ) > $OUT/tests.txt 2>&1; grep "passed\|failed\|real" $OUT/tests.txt | tail -4
grep -B3 -A12 "FAILED" $OUT/tests.txt | head -30
CRUCIBLE_TRACE_DIV=5 CRUCIBLE_TRACE_TOP=12 LD_PRELOAD=$PWD/$S/lib/libcrucible_kernel_trace.so \
  timeout 80 $S/bench_gpu_model_step --precision fp8 > $OUT/trace_fp8.txt 2>&1
echo "trace rc $?"; sed -n '/kernel trace/,$p' $OUT/trace_fp8.txt | cut -c1-110 | head -14
for i in 1 2; do timeout 80 $S/bench_gpu_model_step --hf-config $OUT/hf_step 2>&1 | grep "^step" | tee -a $OUT/step.txt; done
timeout 80 python3 tools/bench_hf_step.py $OUT/hf_step 2>&1 | tail -1 | tee -a $OUT/step.txt
rm -rf $OUT/hf_step
