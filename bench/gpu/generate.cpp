// bench/gpu/generate.cpp: decode throughput of a whole model on the GPU: the rollout
// generator (KV cache: MLA latent or GQA; sampling on the device) on a batch of random
// prompts, new tokens/s, for the peer tools/bench_hf_generate.py (transformers'
// generate, BF16, KV cache, greedy, the same config, batch and prompt length).
//
//   bench_gpu_generate [--preset configs/models/h100-teacher.toml] [--seqs 32] [--prompt 128]
//                      [--new 128] [--iters 3] [--hf-config DIR] [--only bf16,fp8,bf16_f32cache]
// Run from the repository root. Greedy, no EOS: every sequence decodes exactly --new
// tokens, as the peer does with min_new_tokens. Wall-clock time of whole generate calls
// (prefill + decode) after one warm-up call, median over --iters.
// --hf-config DIR writes DIR/config.json (transformers v4 keys) for the peer.
// Prints "generate <key> <median ms> <new tokens/s>" lines: BF16 and FP8 weights with the
// generator's KV cache (BF16 for MLA), and BF16 weights over an FP32 cache (_f32cache).
#include <cstdio>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bench/gpu/bench_model.h"
#include "rollout/generator.h"

using namespace crucible;

int main(int argc, char** argv) {
  const std::int64_t seqs = bench::option(argc, argv, "--seqs", std::int64_t{32});
  const std::int64_t prompt = bench::option(argc, argv, "--prompt", std::int64_t{128});
  const std::int64_t fresh = bench::option(argc, argv, "--new", std::int64_t{128});
  const std::int64_t iters = bench::option(argc, argv, "--iters", std::int64_t{3});
  const std::string only = bench::option(argc, argv, "--only", std::string("bf16,fp8,bf16_f32cache"));
  const ModelConfig base =
      bench::load_bench_model(bench::option(argc, argv, "--preset", std::string("configs/models/h100-teacher.toml")),
                              bench::option(argc, argv, "--hf-config", std::string()));
  ModelWeights init(base, Device::cpu(), false);
  init.init_random(1);
  const auto prompts = bench::random_sequences(seqs, prompt, base.vocab_size, 7);
  rollout::SamplingParams sp;
  sp.temperature = 0;  // greedy
  sp.max_tokens = fresh;

  std::printf("generate on the GPU: %s, %lld sequences, %lld prompt + %lld new tokens; median of %lld calls\n",
              base.name.c_str(), static_cast<long long>(seqs), static_cast<long long>(prompt),
              static_cast<long long>(fresh), static_cast<long long>(iters));
  int runs = 0;
  for (const auto& [prec, f32_cache] : {std::pair{Precision::Bf16, false}, std::pair{Precision::Fp8, false},
                                        std::pair{Precision::Bf16, true}}) {
    const std::string key = std::string(prec == Precision::Fp8 ? "fp8" : "bf16") + (f32_cache ? "_f32cache" : "");
    if (("," + only + ",").find("," + key + ",") == std::string::npos) continue;
    // The generator's own cache (BF16 for MLA on the GPU), and an FP32 one for the ratio.
    if (f32_cache && !base.is_mla()) continue;
    ++runs;
    const auto weights = bench::gpu_weights(init, prec, false);
    Transformer model(*weights);
    rollout::Generator generator(model, seqs, prompt + fresh,
                                 f32_cache ? std::optional<DType>(DType::F32) : std::nullopt);
    bool short_sequence = false;
    const double med = bench::median_wall_ms(
        [&] {
          for (const auto& o : generator.generate(prompts, sp))
            short_sequence |= static_cast<std::int64_t>(o.tokens.size()) != fresh;
        },
        iters);
    if (short_sequence) std::printf("error: a sequence stopped before %lld tokens\n", static_cast<long long>(fresh));
    std::printf("generate crucible_%s %.1f %.0f\n", key.c_str(), med,
                static_cast<double>(seqs * fresh) / (med / 1000.0));
  }
  if (runs == 0) {
    std::fprintf(stderr, "bench_gpu_generate: --only %s names no run of this model (bf16, fp8, bf16_f32cache)\n",
                 only.c_str());
    return 1;
  }
  return 0;
}
