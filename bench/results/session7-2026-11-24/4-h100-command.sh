# call 4: each grouped op quantizes all its experts' weights in one launch (weight_fp8_group)
S=build-cuda/stage-v
export LD_LIBRARY_PATH=$PWD/$S/lib:${LD_LIBRARY_PATH:-}
( time $S/test_gpu "[weight_cache],[grouped_linear]" ) > $OUT/tests.txt 2>&1; grep "passed\|failed\|real" $OUT/tests.txt | tail -4
grep -B2 -A8 "FAILED" $OUT/tests.txt | head -40
CRUCIBLE_PROFILE=1 $S/bench_gpu_model_step --hf-config $OUT/hf_step > $OUT/step.txt 2>&1
grep "^step\|head\|experts" $OUT/step.txt
python3 tools/bench_hf_step.py $OUT/hf_step 2>&1 | tail -1 | tee $OUT/hf_step.txt
rm -rf $OUT/hf_step
