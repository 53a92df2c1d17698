# nvidia-h100-x1: the two MLA kernels at the teacher's shapes; generate with each cache, one process each
S=build-cuda/stage-v; export LD_LIBRARY_PATH=$PWD/$S/lib
$S/bench_gpu_decode_attention 2>&1 | grep "mla\|copy" | tee $OUT/decode.txt
for v in bf16 bf16_f32cache bf16 bf16_f32cache; do $S/bench_gpu_generate --only $v 2>&1 | grep "^generate crucible"; done | tee $OUT/gen.txt
