# call 3: activations not zeroed (Tensor::empty), the 8-wide BF16 cast, the 4-tile FP8
# activation quantizer, the head's single-read log-sum-exp and 4-wide logits gradient.
# Tests under CRUCIBLE_POISON_EMPTY=1 (unwritten activations read as NaN); the per-kernel
# table of the step again; the step against transformers.
S=build-cuda/stage-v
export LD_LIBRARY_PATH=$PWD/$S/lib:${LD_LIBRARY_PATH:-}
( time CRUCIBLE_POISON_EMPTY=1 $S/test_gpu "[cast],[fp8],[logprob_head],[model],[linear],[gemm]" ) > $OUT/tests.txt 2>&1; grep "passed\|failed\|real" $OUT/tests.txt | tail -4
grep -B3 -A12 "FAILED" $OUT/tests.txt | head -40
$S/bench_gpu_fp8_quantize 2>&1 | head -12 | tee $OUT/quant.txt
for p in fp8 bf16; do
  CRUCIBLE_TRACE_DIV=5 CRUCIBLE_TRACE_TOP=30 LD_PRELOAD=$PWD/$S/lib/libcrucible_kernel_trace.so \
    timeout 120 $S/bench_gpu_model_step --precision $p > $OUT/trace_$p.txt 2>&1
  echo "$p rc $?"; sed -n '/kernel trace/,$p' $OUT/trace_$p.txt | cut -c1-110 | head -22
done
timeout 120 $S/bench_gpu_model_step --hf-config $OUT/hf_step 2>&1 | grep "^step" | tee $OUT/step.txt
python3 tools/bench_hf_step.py $OUT/hf_step 2>&1 | tail -1 | tee -a $OUT/step.txt
rm -rf $OUT/hf_step
