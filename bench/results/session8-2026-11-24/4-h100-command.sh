# call 4: at the linear pair ops commit (MTP carry fixed, lse_update and the tile quantizer
# as before call 3): poisoned tests, per-kernel tables, the step against transformers
S=build-cuda/stage-v
export LD_LIBRARY_PATH=$PWD/$S/lib:${LD_LIBRARY_PATH:-}
( time CRUCIBLE_POISON_EMPTY=1 $S/test_gpu "[model],[linear],[cast],[logprob_head],[fp8]" ) > $OUT/tests.txt 2>&1; grep "passed\|failed\|real" $OUT/tests.txt | tail -4
grep -B3 -A12 "FAILED" $OUT/tests.txt | head -40
grep "^model " $OUT/tests.txt
for p in fp8 bf16; do
  CRUCIBLE_TRACE_DIV=5 CRUCIBLE_TRACE_TOP=40 LD_PRELOAD=$PWD/$S/lib/libcrucible_kernel_trace.so \
    timeout 120 $S/bench_gpu_model_step --precision $p > $OUT/trace_$p.txt 2>&1
  echo "$p rc $?"; sed -n '/kernel trace/,$p' $OUT/trace_$p.txt | cut -c1-110 | head -14
done
for i in 1 2; do timeout 120 $S/bench_gpu_model_step --hf-config $OUT/hf_step 2>&1 | grep "^step" | tee -a $OUT/step.txt; done
python3 tools/bench_hf_step.py $OUT/hf_step 2>&1 | tail -1 | tee -a $OUT/step.txt
rm -rf $OUT/hf_step
