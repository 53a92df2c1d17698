# nvidia-h200-x2, at c36a955 + bench_gpu_dp_step's weights on the rank's GPU (bench/gpu/bench_model.h)
S=build-cuda/stage-dp; export LD_LIBRARY_PATH=$PWD/$S/lib
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
for prec in bf16 fp8; do mpirun -np 2 --bind-to none -x LD_LIBRARY_PATH -x NCCL_NVLS_ENABLE $S/bench_gpu_dp_step --precision $prec --hf-config /tmp/hf_dp | sed "s/^dp \([a-z]*\) /dp crucible_${prec}_\1 /"; done
torchrun --nproc_per_node 2 tools/bench_hf_ddp.py /tmp/hf_dp 2>&1 | grep "^dp\|^hf"
CRUCIBLE_POISON_EMPTY=1 $S/test_gpu "[linear],[grouped_linear]" 2>&1 | tail -3
