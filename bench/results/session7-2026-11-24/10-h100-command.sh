# call 10: after the review mends (block_max in the block quantizers, wgmma operand macros, dgrad_lists)
S=build-cuda/stage-v
export LD_LIBRARY_PATH=$PWD/$S/lib:${LD_LIBRARY_PATH:-}
( time $S/test_gpu "[fp8],[weight_cache],[grouped_linear]" ) > $OUT/tests.txt 2>&1; grep "passed\|failed\|real" $OUT/tests.txt | tail -4
grep -B3 -A10 "FAILED" $OUT/tests.txt | head -30
