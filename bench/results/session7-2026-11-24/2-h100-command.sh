# call 2: the grouped FP8 GEMM on wgmma (kernels/cuda/grouped_linear_fp8.cu, sm90_wgmma.cuh)
S=build-cuda/stage-v
export LD_LIBRARY_PATH=$PWD/$S/lib:${LD_LIBRARY_PATH:-}
( time $S/test_gpu "[grouped_linear]" ) > $OUT/tests.txt 2>&1; grep "passed\|failed\|real" $OUT/tests.txt | tail -5
grep -i "fp8" $OUT/tests.txt | sort -t'>' -k2 | tail -3
$S/bench_gpu_grouped_gemm > $OUT/grouped.txt 2>&1; echo "bench rc $?"; cat $OUT/grouped.txt
CRUCIBLE_PROFILE=1 $S/bench_gpu_model_step --hf-config $OUT/hf_step > $OUT/step.txt 2>&1
grep "^step\|head\|experts" $OUT/step.txt
python3 tools/bench_hf_step.py $OUT/hf_step 2>&1 | tail -1 | tee $OUT/hf_step.txt
rm -rf $OUT/hf_step
