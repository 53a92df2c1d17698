S=build-cuda/stage-h1
export LD_LIBRARY_PATH=$PWD/$S/lib:${LD_LIBRARY_PATH:-}
( time $S/test_gpu "[logprob_head],[model]" ) > $OUT/tests.txt 2>&1; grep "^model \|passed\|failed\|real" $OUT/tests.txt
CRUCIBLE_PROFILE=1 $S/bench_gpu_model_step --hf-config $OUT/hf_step > $OUT/step.txt 2>&1
grep "^step\|head\|experts" $OUT/step.txt
python3 tools/bench_hf_step.py $OUT/hf_step 2>&1 | tail -1 | tee $OUT/hf_step.txt
rm -rf $OUT/hf_step
