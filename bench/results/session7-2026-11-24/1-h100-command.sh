# call 1 (at 59180b7): the review mends of session 6's last commit, and the grouped GEMM baseline
export LD_LIBRARY_PATH=$PWD/build-cuda/stage-v/lib
S=build-cuda/stage-v
$S/test_gpu "[weight_cache],[gemm],[grouped_linear],[linear],[model]" > $OUT/tests.txt 2>&1; echo "tests rc $?"
tail -n 3 $OUT/tests.txt
$S/bench_gpu_grouped_gemm > $OUT/grouped.txt 2>&1; echo "bench rc $?"
cat $OUT/grouped.txt
