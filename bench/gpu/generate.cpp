// bench/gpu/generate.cpp: decode throughput of a whole model on the GPU: the rollout
// generator (KV cache: MLA latent or GQA; sampling on the device) on a batch of random
// prompts, new tokens/s, for the peer tools/bench_hf_generate.py (transformers'
// generate, BF16, KV cache, greedy, the same config, batch and prompt length).
//
//   bench_gpu_generate [--preset configs/models/h100-teacher.toml] [--seqs 32] [--prompt 128]
//                      [--new 128] [--iters 3] [--hf-config DIR]
// Run from the repository root. Greedy, no EOS: every sequence decodes exactly --new
// tokens, as the peer does with min_new_tokens. Wall-clock time of whole generate calls
// (prefill + decode) after one warm-up call, median over --iters.
// --hf-config DIR writes DIR/config.json (transformers v4 keys) for the peer.
// Prints "generate <key> <median ms> <new tokens/s>" lines.
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
#include "launch/model_config_fields.h"
#include "rollout/generator.h"

using namespace crucible;

int main(int argc, char** argv) {
  std::string preset = "configs/models/h100-teacher.toml", hf_dir;
  std::int64_t seqs = 32, prompt = 128, fresh = 128, iters = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--preset")) preset = argv[i + 1];
    if (!std::strcmp(argv[i], "--seqs")) seqs = std::atoll(argv[i + 1]);
    if (!std::strcmp(argv[i], "--prompt")) prompt = std::atoll(argv[i + 1]);
    if (!std::strcmp(argv[i], "--new")) fresh = std::atoll(argv[i + 1]);
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
  std::vector<std::vector<std::int32_t>> prompts(static_cast<std::size_t>(seqs));
  for (auto& s : prompts)
    for (std::int64_t i = 0; i < prompt; ++i) s.push_back(static_cast<std::int32_t>(gen() % base.vocab_size));
  rollout::SamplingParams sp;
  sp.temperature = 0;  // greedy
  sp.max_tokens = fresh;

  std::printf("generate on the GPU: %s, %lld sequences, %lld prompt + %lld new tokens; median of %lld calls\n",
              base.name.c_str(), static_cast<long long>(seqs), static_cast<long long>(prompt),
              static_cast<long long>(fresh), static_cast<long long>(iters));
  for (Precision prec : {Precision::Bf16, Precision::Fp8}) {
    ModelConfig c = base;
    c.precision = prec;
    ModelWeights weights(c, Device::cuda(0), false);
    weights.params().flat().copy_from(init.copy_to(Device::cuda(0), false)->params().flat());
    Transformer model(weights);
    rollout::Generator generator(model, seqs, prompt + fresh);
    auto call_ms = [&] {
      cudaDeviceSynchronize();
      const auto t0 = std::chrono::steady_clock::now();
      const auto out = generator.generate(prompts, sp);
      cudaDeviceSynchronize();
      const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      for (const auto& o : out)
        if (static_cast<std::int64_t>(o.tokens.size()) != fresh) std::printf("error: a sequence stopped early\n");
      return ms;
    };
    call_ms();  // warm-up (cuBLASLt algorithms, pool memory)
    std::vector<double> ms;
    for (std::int64_t i = 0; i < iters; ++i) ms.push_back(call_ms());
    std::sort(ms.begin(), ms.end());
    const double med = ms[ms.size() / 2];
    std::printf("generate crucible_%s %.1f %.0f\n", prec == Precision::Fp8 ? "fp8" : "bf16", med,
                static_cast<double>(seqs * fresh) / (med / 1000.0));
  }
  return 0;
}
