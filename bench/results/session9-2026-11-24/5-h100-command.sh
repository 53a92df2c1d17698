# nvidia-h100-x1: generate kernel by kernel, BF16 cache (wgmma decode) vs FP32 cache (mma.sync)
S=build-cuda/stage-v; export LD_LIBRARY_PATH=$PWD/$S/lib
for v in bf16 bf16_f32cache; do CRUCIBLE_TRACE_DIV=3 CRUCIBLE_TRACE_TOP=12 LD_PRELOAD=$PWD/$S/lib/libcrucible_kernel_trace.so $S/bench_gpu_generate --only $v 2>&1 | tee $OUT/trace_$v.txt; done
