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
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <cuda_runtime.h>

#include "checkpoints/hf_config.h"
#include "core/profile.h"
#include "launch/model_config_fields.h"
#include "model/transformer.h"

using namespace crucible;

namespace {

double step_ms(Transformer& model, const Batch& batch, const Tensor& dlogp) {
  cudaDeviceSynchronize();
  const auto t0 = std::chrono::steady_clock::now();
  ForwardState st;
  model.forward_logprobs(batch, st);
  model.backward(dlogp, st);
  cudaDeviceSynchronize();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  std::string preset = "configs/models/h100-teacher.toml", hf_dir;
  std::int64_t seqs = 8, seq = 1024, iters = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--preset")) preset = argv[i + 1];
    if (!std::strcmp(argv[i], "--seqs")) seqs = std::atoll(argv[i + 1]);
    if (!std::strcmp(argv[i], "--seq")) seq = std::atoll(argv[i + 1]);
    if (!std::strcmp(argv[i], "--iters")) iters = std::atoll(argv[i + 1]);
    if (!std::strcmp(argv[i], "--hf-config")) hf_dir = argv[i + 1];
  }
  const ModelConfig base = launch::load_model_config(preset);
  if (!hf_dir.empty()) {
    std::filesystem::create_directories(hf_dir);
    std::ofstream(hf_dir + "/config.json") << json::dump(checkpoints::model_config_to_hf(base), 2);
  }
  ModelWeights init(base, Device::cpu(), false);
  init.init_random(1);
  std::mt19937 gen(7);
  std::vector<std::vector<std::int32_t>> tokens(static_cast<std::size_t>(seqs));
  for (auto& s : tokens)
    for (std::int64_t i = 0; i < seq; ++i) s.push_back(static_cast<std::int32_t>(gen() % base.vocab_size));
  const Batch batch = Batch::from_sequences(tokens).to(Device::cuda(0));
  Tensor dlogp(Shape{batch.tokens()}, DType::F32, Device::cpu(), "dlogp");
  for (float& v : dlogp.span<float>()) v = -1.0f / static_cast<float>(batch.tokens());
  const Tensor dlogp_gpu = dlogp.to(Device::cuda(0));

  std::printf("model step on the GPU: %s, %lld params, %lld x %lld tokens; median of %lld steps\n", base.name.c_str(),
              static_cast<long long>(model_sizes(base).params_total), static_cast<long long>(seqs),
              static_cast<long long>(seq), static_cast<long long>(iters));
  for (Precision prec : {Precision::Bf16, Precision::Fp8}) {
    ModelConfig c = base;
    c.precision = prec;
    auto w = init.copy_to(Device::cuda(0), true);
    ModelWeights weights(c, Device::cuda(0), true);
    weights.params().flat().copy_from(w->params().flat());
    w.reset();
    Transformer model(weights);
    step_ms(model, batch, dlogp_gpu);  // warm-up (cuBLASLt plans, pool memory)
    std::vector<double> ms;
    for (std::int64_t i = 0; i < iters; ++i) ms.push_back(step_ms(model, batch, dlogp_gpu));
    std::sort(ms.begin(), ms.end());
    const double med = ms[ms.size() / 2];
    std::printf("step crucible_%s %.1f %.0f\n", prec == Precision::Fp8 ? "fp8" : "bf16", med,
                static_cast<double>(batch.tokens()) / (med / 1000.0));
    if (profile::enabled()) {  // one more step, each scope synchronized: where the time goes
      profile::reset();
      const double profiled = step_ms(model, batch, dlogp_gpu);
      std::printf("profile of one %s step (%.1f ms with the scopes' syncs):\n%s", prec == Precision::Fp8 ? "fp8" : "bf16",
                  profiled, profile::report().c_str());
    }
  }
  return 0;
}
