# call 2: the per-kernel table again, counting only the 5 timed steps (capture ranges),
# kernel names in anonymous namespaces kept
S=build-cuda/stage-v
export LD_LIBRARY_PATH=$PWD/$S/lib:${LD_LIBRARY_PATH:-}
for p in fp8 bf16; do
  CRUCIBLE_TRACE_DIV=5 CRUCIBLE_TRACE_TOP=70 LD_PRELOAD=$PWD/$S/lib/libcrucible_kernel_trace.so \
    timeout 120 $S/bench_gpu_model_step --precision $p --hf-config $OUT/hf_step > $OUT/trace_$p.txt 2>&1
  echo "$p rc $?"; grep "^step" $OUT/trace_$p.txt; sed -n '/kernel trace/,$p' $OUT/trace_$p.txt | cut -c1-150 | head -45
done
CRUCIBLE_TRACE_DIV=5 CRUCIBLE_TRACE_TOP=70 LD_PRELOAD=$PWD/$S/lib/libcrucible_kernel_trace.so \
  timeout 200 python3 tools/bench_hf_step.py $OUT/hf_step > $OUT/trace_hf.txt 2>&1
echo "hf rc $?"; grep "^step" $OUT/trace_hf.txt; sed -n '/kernel trace/,$p' $OUT/trace_hf.txt | head -3
rm -rf $OUT/hf_step
