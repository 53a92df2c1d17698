S=build-cuda/stage-h1
export LD_LIBRARY_PATH=$PWD/$S/lib:${LD_LIBRARY_PATH:-}
nvidia-smi --query-gpu=name --format=csv,noheader
( time $S/test_gpu "[tensor_ops],[weight_cache],[grouped_linear],[linear],[fp8],[kd_head],[logprob_head],[attention],[model],[grad_overlap]" ) > $OUT/tests.txt 2>&1; tail -6 $OUT/tests.txt
CRUCIBLE_PROFILE=1 $S/bench_gpu_model_step --hf-config $OUT/hf_step 2>&1 | tee $OUT/step.txt | grep -v "^ *[a-z.+]* *[0-9.]* *[0-9]* *[0-9.]*$"
grep "moe\.\|head\|headcopy" $OUT/step.txt
python3 tools/bench_hf_step.py $OUT/hf_step 2>&1 | tail -2 | tee $OUT/hf_step.txt
$S/bench_gpu_grouped_gemm --teacher 2>&1 | tail -12 > $OUT/grouped.txt; tail -12 $OUT/grouped.txt
$S/bench_gpu_decode_attention 2>&1 | tail -15 > $OUT/decode.txt; tail -15 $OUT/decode.txt
rm -rf $OUT/hf_step
