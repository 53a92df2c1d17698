# nvidia-h100-x1: the Hopper (wgmma) MLA decode kernel for BF16 caches
S=build-cuda/stage-v; export LD_LIBRARY_PATH=$PWD/$S/lib
CRUCIBLE_POISON_EMPTY=1 $S/test_gpu "[decode]" 2>&1 | tail -25 > $OUT/tests.txt; tail -4 $OUT/tests.txt
$S/bench_gpu_decode_attention 2>&1 | tee $OUT/decode.txt
