# call 11: experiment: the BF16 grouped GEMM at 2 CTAs per SM (3 stages) against 1 (5 stages),
# chosen by CRUCIBLE_EXP_BF16_TWO in a temporary build
S=build-cuda/stage-v
export LD_LIBRARY_PATH=$PWD/$S/lib:${LD_LIBRARY_PATH:-}
timeout 100 $S/bench_gpu_grouped_gemm --teacher 2>&1 | sed -n '/BF16/,$p' | tee $OUT/grouped_one.txt
CRUCIBLE_EXP_BF16_TWO=1 timeout 100 $S/bench_gpu_grouped_gemm --teacher 2>&1 | sed -n '/BF16/,$p' | tee $OUT/grouped_two.txt
for i in 1 2; do
  timeout 60 $S/bench_gpu_model_step --precision bf16 2>&1 | grep "^step" | sed 's/^/one /' | tee -a $OUT/step.txt
  CRUCIBLE_EXP_BF16_TWO=1 timeout 60 $S/bench_gpu_model_step --precision bf16 2>&1 | grep "^step" | sed 's/^/two /' | tee -a $OUT/step.txt
done
CRUCIBLE_EXP_BF16_TWO=1 timeout 200 $S/test_gpu "[grouped_linear]" > $OUT/tests.txt 2>&1; echo "tests (two) rc $?"; tail -2 $OUT/tests.txt
