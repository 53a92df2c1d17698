// bench/gpu/model_step.cpp: training-step throughput of a whole model on the GPU
// (forward log-probs + backward into the gradient arena), tokens/s, for the peer
// tools/bench_hf_step.py (transformers' DeepseekV3 in BF16 on the same config, batch
// shape and random tokens) to be compared with.
//
//   bench_gpu_model_step [--preset configs/models/h100-teacher.toml] [--seqs 8] [--seq 1024]
//                        [--iters 5] [--hf-config DIR]
// CRUCIBLE_PROFILE=1 adds a per-scope breakdown of one more step (core/profile.h).
// Run from the repository root (tools/device_run.sh does). Wall-clock time of whole
// steps (the model synchronizes with the host inside a step: MoE expert offsets), after
// one warm-up step, median over --iters; the device is synchronized around each step.
// --hf-config DIR writes DIR/config.json (transformers v4 keys) for the peer.
// Prints "step <key> <median ms> <tokens/s>" lines.
#include <cstdio>
#include <string>
#include <vector>

#include "bench/gpu/bench_model.h"
#include "core/profile.h"
#include "kernels/linear.h"
#include "model/transformer.h"

using namespace crucible;

int main(int argc, char** argv) {
  const std::int64_t seqs = bench::option(argc, argv, "--seqs", std::int64_t{8});
  const std::int64_t seq = bench::option(argc, argv, "--seq", std::int64_t{1024});
  const std::int64_t iters = bench::option(argc, argv, "--iters", std::int64_t{5});
  const std::string only = bench::option(argc, argv, "--precision", std::string("both"));  // bf16, fp8, both
  const ModelConfig base =
      bench::load_bench_model(bench::option(argc, argv, "--preset", std::string("configs/models/h100-teacher.toml")),
                              bench::option(argc, argv, "--hf-config", std::string()));
  ModelWeights init(base, Device::cpu(), false);
  init.init_random(1);
  const Batch batch = Batch::from_sequences(bench::random_sequences(seqs, seq, base.vocab_size, 7)).to(Device::cuda(0));
  Tensor dlogp(Shape{batch.tokens()}, DType::F32, Device::cpu(), "dlogp");
  for (float& v : dlogp.span<float>()) v = -1.0f / static_cast<float>(batch.tokens());
  const Tensor dlogp_gpu = dlogp.to(Device::cuda(0));

  std::printf("model step on the GPU: %s, %lld params, %lld x %lld tokens; median of %lld steps\n", base.name.c_str(),
              static_cast<long long>(model_sizes(base).params_total), static_cast<long long>(seqs),
              static_cast<long long>(seq), static_cast<long long>(iters));
  for (Precision prec : {Precision::Bf16, Precision::Fp8}) {
    const char* key = prec == Precision::Fp8 ? "fp8" : "bf16";
    if (only != "both" && only != key) continue;
    const auto weights = bench::gpu_weights(init, prec, true);
    Transformer model(*weights);
    auto step = [&] {
      const ops::WeightCacheScope fixed_weights;  // one per step, as trainer::sft_accumulate opens
      ForwardState st;
      model.forward_logprobs(batch, st);
      model.backward(dlogp_gpu, st);
    };
    const double med = bench::median_wall_ms(step, iters);
    std::printf("step crucible_%s %.1f %.0f\n", key, med, static_cast<double>(batch.tokens()) / (med / 1000.0));
    if (profile::enabled()) {  // one more step, each scope synchronized: where the time goes
      profile::reset();
      const double profiled = bench::wall_ms(step);
      std::printf("profile of one %s step (%.1f ms with the scopes' syncs):\n%s", key, profiled,
                  profile::report().c_str());
    }
  }
  return 0;
}
