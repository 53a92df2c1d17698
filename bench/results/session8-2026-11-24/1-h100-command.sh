# call 1: f97af5d's review mends (host-side) on the GPU; a per-kernel table of one training
# step (bench/gpu/trace, CUPTI) for crucible FP8 and BF16 and for transformers
S=build-cuda/stage-v
export LD_LIBRARY_PATH=$PWD/$S/lib:${LD_LIBRARY_PATH:-}
( time $S/test_gpu "[grouped_linear],[weight_cache],[model],[kd_head]" ) > $OUT/tests.txt 2>&1; grep "passed\|failed\|real" $OUT/tests.txt | tail -4
grep -B3 -A10 "FAILED" $OUT/tests.txt | head -30
# 1 warm-up + 5 timed steps: DIV=6 gives per-step rows
for p in fp8 bf16; do
  CRUCIBLE_TRACE_DIV=6 CRUCIBLE_TRACE_TOP=45 LD_PRELOAD=$PWD/$S/lib/libcrucible_kernel_trace.so \
    timeout 120 $S/bench_gpu_model_step --precision $p --hf-config $OUT/hf_step > $OUT/trace_$p.txt 2>&1
  echo "$p rc $?"; grep "^step" $OUT/trace_$p.txt; sed -n '/kernel trace/,$p' $OUT/trace_$p.txt | head -30
done
CRUCIBLE_TRACE_DIV=6 CRUCIBLE_TRACE_TOP=45 LD_PRELOAD=$PWD/$S/lib/libcrucible_kernel_trace.so \
  timeout 200 python3 tools/bench_hf_step.py $OUT/hf_step > $OUT/trace_hf.txt 2>&1
echo "hf rc $?"; grep "^step" $OUT/trace_hf.txt; sed -n '/kernel trace/,$p' $OUT/trace_hf.txt | head -30
rm -rf $OUT/hf_step
