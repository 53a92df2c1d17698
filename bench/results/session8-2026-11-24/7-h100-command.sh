# call 7: rope_apply_at (MLA's query rope dims in place) and the upload-free one-group
# transposed quantizer: poisoned tests, the FP8 step's trace, steps against transformers
S=build-cuda/stage-v
export LD_LIBRARY_PATH=$PWD/$S/lib:${LD_LIBRARY_PATH:-}
( time CRUCIBLE_POISON_EMPTY=1 timeout 330 $S/test_gpu "[rope],[model],[fp8],[linear]" ) > $OUT/tests.txt 2>&1; grep "passed\|failed\|real" $OUT/tests.txt | tail -4
grep -B3 -A12 "FAILED" $OUT/tests.txt | head -30
grep "^model " $OUT/tests.txt
CRUCIBLE_TRACE_DIV=5 CRUCIBLE_TRACE_TOP=14 LD_PRELOAD=$PWD/$S/lib/libcrucible_kernel_trace.so \
  timeout 90 $S/bench_gpu_model_step --precision fp8 > $OUT/trace_fp8.txt 2>&1
echo "trace rc $?"; sed -n '/kernel trace/,$p' $OUT/trace_fp8.txt | cut -c1-110 | head -8
for i in 1 2; do timeout 90 $S/bench_gpu_model_step --hf-config $OUT/hf_step 2>&1 | grep "^step" | tee -a $OUT/step.txt; done
timeout 90 python3 tools/bench_hf_step.py $OUT/hf_step 2>&1 | tail -1 | tee -a $OUT/step.txt
rm -rf $OUT/hf_step
