# call 6: the BF16 grouped GEMM on wgmma (grouped_linear_bf16.cu), bf16_bands, weight_bf16_group
S=build-cuda/stage-v
export LD_LIBRARY_PATH=$PWD/$S/lib:${LD_LIBRARY_PATH:-}
( time $S/test_gpu "[grouped_linear],[weight_cache],[model]" ) > $OUT/tests.txt 2>&1; grep "passed\|failed\|real" $OUT/tests.txt | tail -4
grep -B3 -A10 "FAILED" $OUT/tests.txt | head -40
CRUCIBLE_PROFILE=1 $S/bench_gpu_model_step --hf-config $OUT/hf_step > $OUT/step.txt 2>&1
grep "^step\|experts" $OUT/step.txt
python3 tools/bench_hf_step.py $OUT/hf_step 2>&1 | tail -1 | tee $OUT/hf_step.txt
rm -rf $OUT/hf_step
$S/bench_gpu_grouped_gemm --teacher > $OUT/grouped.txt 2>&1; echo "bench rc $?"; cat $OUT/grouped.txt
