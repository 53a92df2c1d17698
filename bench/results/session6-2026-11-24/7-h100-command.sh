S=build-cuda/stage-h1
export LD_LIBRARY_PATH=$PWD/$S/lib:${LD_LIBRARY_PATH:-}
( time $S/test_gpu "[model]" ) > $OUT/tests.txt 2>&1; grep "^model \|passed\|failed\|real\|routing" $OUT/tests.txt
