// bench/gpu/dp_step.cpp: data-parallel training step of a whole model over the GPUs
// of a job (one rank per GPU, NCCL), with the gradient sum after backward and
// overlapped with it (trainer/grad_overlap.h), for the peer tools/bench_hf_ddp.py
// (transformers' DeepseekV3 in BF16 under PyTorch DistributedDataParallel, the same
// config, per-rank batch shape and world) to be compared with.
//
//   mpirun -np N bench_gpu_dp_step [--preset configs/models/h100-teacher.toml] [--seqs 8]
//                                  [--seq 1024] [--iters 5] [--precision bf16|fp8] [--native 0|1]
//                                  [--hf-config DIR]
// Each rank steps on its own random batch (weak scaling: the job's tokens per step are
// N x seqs x seq). Modes, each the median wall-clock ms of whole steps (devices
// synchronized around each step, after one warm-up step):
//   compute  forward + backward, no gradient sum (the ceiling of the job);
//   after    forward + backward, then one all_reduce of the flat FP32 gradient buffer;
//   overlap  forward + backward with each layer's gradients summed as backward leaves
//            the layer, then the rest (what `crucible run` does with run.overlap_reduce).
//   reduce   the all_reduce of the flat buffer alone; bus bandwidth 2 (N-1)/N x bytes / time.
// Deterministic (rank-ordered) reductions unless --native 1. Rank 0 prints
// "dp <mode> world=<N> <ms> <job tokens/s>" lines. One process (no mpirun) runs world 1,
// still through NCCL: its sum is the identity, at the cost of the deterministic path.
#include <cstdio>
#include <functional>
#include <string>

#include "bench/gpu/bench_model.h"
#include "dist/communicator.h"
#include "dist/cuda/nccl_communicator.h"
#include "dist/mpi_env.h"
#include "kernels/linear.h"
#include "model/transformer.h"
#include "trainer/grad_overlap.h"
#include "trainer/optimizer.h"

using namespace crucible;

int main(int argc, char** argv) {
  dist::MpiEnv env(&argc, &argv);
  const std::int64_t seqs = bench::option(argc, argv, "--seqs", std::int64_t{8});
  const std::int64_t seq = bench::option(argc, argv, "--seq", std::int64_t{1024});
  const std::int64_t iters = bench::option(argc, argv, "--iters", std::int64_t{5});
  const std::string prec_name = bench::option(argc, argv, "--precision", std::string("bf16"));
  const bool native = bench::option(argc, argv, "--native", std::int64_t{0}) != 0;
  const Device dev = dist::rank_device(env, Device::cuda(0));
  dist::CommunicatorConfig cc;
  cc.reduction = native ? dist::ReductionMode::Native : dist::ReductionMode::Deterministic;
  // NCCL also on one rank (make_communicator would pick SelfCommunicator there): world
  // 1 still runs the deterministic path (scratch row, fold kernel) on its stream.
  const auto comm = std::make_unique<dist::NcclCommunicator>(env, dev, cc);
  const int rank = comm->rank(), world = comm->world();
  const bool root = rank == 0;
  const ModelConfig base = bench::load_bench_model(
      bench::option(argc, argv, "--preset", std::string("configs/models/h100-teacher.toml")),
      root ? bench::option(argc, argv, "--hf-config", std::string()) : std::string());
  const Precision prec = prec_name == "fp8" ? Precision::Fp8 : Precision::Bf16;

  ModelWeights init(base, Device::cpu(), false);
  init.init_random(1);
  const auto weights = bench::gpu_weights(init, prec, true, dev);
  Transformer model(*weights);
  const Batch batch =
      Batch::from_sequences(bench::random_sequences(seqs, seq, base.vocab_size, 7 + static_cast<std::uint32_t>(rank)))
          .to(dev);
  Tensor dlogp(Shape{batch.tokens()}, DType::F32, Device::cpu(), "dlogp");
  for (float& v : dlogp.span<float>()) v = -1.0f / static_cast<float>(batch.tokens() * world);
  const Tensor dlogp_dev = dlogp.to(dev);
  Tensor grads = trainer::flat_gradients(*weights);
  trainer::GradOverlap overlap(*weights, *comm);

  auto backward_step = [&](const std::function<void(std::int64_t)>& hook) {
    const ops::WeightCacheScope fixed_weights;
    ForwardState st;
    st.layer_grads_done = hook;
    model.forward_logprobs(batch, st);
    model.backward(dlogp_dev, st);
  };
  auto timed = [&](auto&& step) {
    comm->barrier();
    return bench::median_wall_ms(step, iters);
  };
  const double compute = timed([&] { backward_step({}); });
  const Stream default_stream = Stream::default_for(dev);
  const double after = timed([&] {
    backward_step({});
    comm->all_reduce(grads, dist::ReduceOp::Sum, default_stream);
  });
  const double overlapped = timed([&] {
    backward_step(overlap.hook());
    overlap.finish();
  });
  const double reduce = timed([&] { comm->all_reduce(grads, dist::ReduceOp::Sum, default_stream); });

  if (root) {
    const double job_tokens = static_cast<double>(batch.tokens()) * world;
    const double bytes = static_cast<double>(grads.numel()) * 4;
    std::printf("dp step on %d GPU(s) (%s reduction, %lld layer buckets): %s, %lld params, %s, per rank %lld x %lld "
                "tokens; median of %lld steps\n",
                world, native ? "native NCCL" : "deterministic", static_cast<long long>(overlap.buckets()),
                base.name.c_str(), static_cast<long long>(model_sizes(base).params_total), prec_name.c_str(),
                static_cast<long long>(seqs), static_cast<long long>(seq), static_cast<long long>(iters));
    std::printf("dp compute world=%d %.1f %.0f\n", world, compute, job_tokens / (compute / 1000));
    std::printf("dp after world=%d %.1f %.0f\n", world, after, job_tokens / (after / 1000));
    std::printf("dp overlap world=%d %.1f %.0f\n", world, overlapped, job_tokens / (overlapped / 1000));
    std::printf("dp reduce world=%d %.2f ms, %.0f MB, bus %.1f GB/s\n", world, reduce, bytes / 1e6,
                world > 1 ? 2.0 * (world - 1) / world * bytes / (reduce / 1000) / 1e9 : 0.0);
    std::printf("  the overlap hides %.0f%% of the sum's time (after - overlap) / (after - compute)\n",
                after > compute ? 100.0 * (after - overlapped) / (after - compute) : 0.0);
  }
  return 0;
}
