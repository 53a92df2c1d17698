# nvidia-h100-x1: the generator's BF16 latent cache (MLA on CUDA) and the decode tests
S=build-cuda/stage-v; export LD_LIBRARY_PATH=$PWD/$S/lib
CRUCIBLE_POISON_EMPTY=1 $S/test_gpu "[decode]" -s 2>&1 | grep -E "kv decode|passed|failed|FAILED|with expansion" -A3 | tail -30 > $OUT/tests.txt; cat $OUT/tests.txt | tail -8
$S/bench_gpu_generate --hf-config /tmp/hfg 2>&1 | tee $OUT/gen.txt
python3 tools/bench_hf_generate.py /tmp/hfg 2>&1 | grep "^generate" | tee $OUT/hf_gen.txt
