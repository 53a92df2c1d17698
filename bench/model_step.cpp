// bench/model_step.cpp: CPU forward+backward throughput (tokens/s) of the demo-size
// teacher and students, in fp32, bf16 and fp8 (emulated) precision.
//
//   bench_model_step [--tokens 512] [--seq 128] [--iters 3]
// The figure is a CPU measurement of the reference backend (two cores in CI); it is
// meaningful relative to other rows of the same run, not as a GPU target.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>

#include "launch/model_config_fields.h"
#include "model/transformer.h"

using namespace crucible;

int main(int argc, char** argv) {
  std::int64_t tokens = 512, seq = 128, iters = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--tokens")) tokens = std::atoll(argv[i + 1]);
    if (!std::strcmp(argv[i], "--seq")) seq = std::atoll(argv[i + 1]);
    if (!std::strcmp(argv[i], "--iters")) iters = std::atoll(argv[i + 1]);
  }
  std::printf("%-20s %-6s %12s %14s %14s\n", "model", "prec", "params", "fwd tok/s", "fwd+bwd tok/s");
  for (const char* preset : {"tiny-deepseek-v3", "tiny-qwen2", "tiny-llama"}) {
    for (Precision prec : {Precision::Fp32, Precision::Bf16, Precision::Fp8}) {
      ModelConfig c = launch::load_model_config(std::string(CRUCIBLE_SOURCE_DIR) + "/configs/models/" + preset + ".toml");
      c.precision = prec;
      ModelWeights w(c, Device::cpu());
      w.init_random(1);
      Transformer model(w);
      std::mt19937 gen(1);
      std::vector<std::vector<std::int32_t>> seqs(static_cast<std::size_t>(tokens / seq));
      for (auto& s : seqs)
        for (std::int64_t i = 0; i < seq; ++i) s.push_back(static_cast<std::int32_t>(gen() % c.vocab_size));
      const Batch batch = Batch::from_sequences(seqs);
      Tensor dlogp(Shape{batch.tokens()}, DType::F32);
      for (float& v : dlogp.span<float>()) v = -1.0f / static_cast<float>(batch.tokens());
      using clock = std::chrono::steady_clock;
      double fwd = 0, both = 0;
      for (std::int64_t it = 0; it <= iters; ++it) {  // iteration 0 warms up
        ForwardState st;
        const auto t0 = clock::now();
        model.forward_logprobs(batch, st);
        const auto t1 = clock::now();
        model.backward(dlogp, st);
        const auto t2 = clock::now();
        if (it == 0) continue;
        fwd += std::chrono::duration<double>(t1 - t0).count();
        both += std::chrono::duration<double>(t2 - t0).count();
      }
      const char* pname = prec == Precision::Fp32 ? "fp32" : prec == Precision::Bf16 ? "bf16" : "fp8";
      std::printf("%-20s %-6s %12lld %14.0f %14.0f\n", preset, pname,
                  static_cast<long long>(model_sizes(c).params_total), batch.tokens() * iters / fwd,
                  batch.tokens() * iters / both);
    }
  }
  return 0;
}
