// KV-cache decoding against full recomputation, and the generator's contract.
#include <cmath>
#include <random>

#include "launch/model_config_fields.h"
#include "rollout/generator.h"
#include "tests/catch.h"
#include "tests/rollout/kv_decode_checks.h"
#include "tests/worst.h"

using namespace crucible;
using namespace crucible::rollout;

namespace {

ModelConfig tiny(const std::string& preset) {
  ModelConfig c = launch::load_model_config(std::string(CRUCIBLE_SOURCE_DIR) + "/configs/models/" + preset + ".toml");
  c.initializer_range = 0.1;
  return c;
}

std::vector<std::int32_t> random_tokens(std::size_t n, std::int64_t vocab, unsigned seed) {
  std::mt19937 gen(seed);
  std::vector<std::int32_t> t(n);
  for (auto& x : t) x = static_cast<std::int32_t>(gen() % vocab);
  return t;
}

}  // namespace

TEST_CASE("KV-cache decoding gives the log-probs of a full recompute (MLA latent and GQA caches)", "[rollout]") {
  for (const char* preset : {"tiny-deepseek-v3", "tiny-qwen2", "tiny-llama"}) {
    for (Precision prec : {Precision::Fp32, Precision::Fp8}) {
      ModelConfig c = tiny(preset);
      // Under fp8, absorbed MLA multiplies by the FP32 kv_b master where training
      // quantizes c_kv and kv_b (as DeepSeek's BF16 absorbed decode does); the
      // gap then reroutes MoE tokens, so only the GQA cache is compared in fp8.
      if (prec == Precision::Fp8 && c.is_mla()) continue;
      c.precision = prec;
      ModelWeights w(c, Device::cpu(), false);
      w.init_random(5);
      Transformer model(w);
      const auto seq_a = random_tokens(12, c.vocab_size, 1), seq_b = random_tokens(9, c.vocab_size, 2);
      ForwardState st;
      const Tensor full = model.forward_logprobs(Batch::from_sequences({seq_a, seq_b}), st);

      // Prefill 4 tokens of a and 2 of b, then decode one token per step.
      const std::vector<float> got = testing::decode_logprobs(model, DType::F32, seq_a, seq_b);
      INFO(preset << (prec == Precision::Fp8 ? " fp8" : " fp32"));
      REQUIRE(got.size() == 15);
      double worst = 0;
      for (std::size_t i = 0; i < got.size(); ++i)
        worst = testing::worst_of(worst, double(std::abs(got[i] - full.data<float>()[i < 8 ? 3 + i : 13 + (i - 8)])));
      // FP32 both ways; the absorbed MLA form reorders sums, hence not bit-equal.
      // Under fp8 the GQA paths run the same per-row-quantized GEMMs (1x128 tiles
      // do not mix tokens).
      CHECK(worst < 2e-5);
      if (std::string(preset) == "tiny-deepseek-v3") CHECK(KvCache(c, 2, 16).bytes() == 2 * 16 * 4 * (64 + 16) * 4);
    }
  }
}

TEST_CASE("generator: seeds reproduce, batch composition does not matter, log-probs match the trainer", "[rollout]") {
  ModelConfig c = tiny("tiny-deepseek-v3");
  ModelWeights w(c, Device::cpu(), false);
  w.init_random(9);
  Transformer model(w);
  const std::vector<std::vector<std::int32_t>> prompts{{3, 5, 7}, {11, 13}, {17, 19, 23, 29}};
  SamplingParams sp;
  sp.max_tokens = 10;
  sp.temperature = 1.0;
  sp.top_p = 0.9;
  sp.top_k = 50;
  sp.seed = 42;
  Generator gen(model, 3, 32);
  const auto a = gen.generate(prompts, sp);
  const auto b = gen.generate(prompts, sp);
  Generator one(model, 1, 32);  // the same prompts one at a time
  const auto c1 = one.generate(prompts, sp);
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    REQUIRE(a[i].tokens == b[i].tokens);
    REQUIRE(a[i].tokens == c1[i].tokens);
    REQUIRE(a[i].tokens.size() == 10);
    REQUIRE(a[i].finish == FinishReason::Length);
  }
  // Explicit streams: the prompts in another order, each with the stream it had above
  // (a rank's share of groups batched together), give the same tokens (and log-probs up
  // to the last bits: the GEMMs see another batch).
  {
    SamplingParams ss = sp;
    ss.streams = {2, 0, 1};
    const std::vector<std::vector<std::int32_t>> shuffled{prompts[2], prompts[0], prompts[1]};
    const auto e = gen.generate(shuffled, ss);
    for (std::size_t i = 0; i < prompts.size(); ++i) {
      REQUIRE(e[i].tokens == a[ss.streams[i]].tokens);
      for (std::size_t t = 0; t < e[i].logprobs.size(); ++t)  // GEMM rows of another batch: last bits
        REQUIRE(std::abs(e[i].logprobs[t] - a[ss.streams[i]].logprobs[t]) < 1e-5f);
    }
    ss.streams = {0, 1};
    REQUIRE_THROWS_WITH(gen.generate(prompts, ss), Catch::Contains("2 streams for 3 prompts"));
  }
  sp.seed = 43;
  const auto d = gen.generate(prompts, sp);
  bool any_diff = false;
  for (std::size_t i = 0; i < prompts.size(); ++i) any_diff |= d[i].tokens != a[i].tokens;
  REQUIRE(any_diff);

  // Sampler log-probs equal the trainer's recomputation (fp32): the mismatch metric is 0.
  std::vector<std::vector<std::int32_t>> full;
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    full.push_back(prompts[i]);
    full.back().insert(full.back().end(), a[i].tokens.begin(), a[i].tokens.end());
  }
  const Batch batch = Batch::from_sequences(full);
  ForwardState st;
  const Tensor lp = model.forward_logprobs(batch, st);
  double worst = 0;
  for (std::size_t i = 0, base = 0; i < prompts.size(); base += full[i].size(), ++i)
    for (std::size_t j = 0; j < a[i].tokens.size(); ++j)
      worst = testing::worst_of(worst, double(std::abs(a[i].logprobs[j] - lp.data<float>()[base + prompts[i].size() - 1 + j])));
  CHECK(worst < 2e-5);
}

TEST_CASE("generator: greedy, EOS and stop sequences end sequences independently", "[rollout]") {
  ModelConfig c = tiny("tiny-llama");
  ModelWeights w(c, Device::cpu(), false);
  w.init_random(3);
  Transformer model(w);
  Generator gen(model, 2, 40);
  SamplingParams greedy;
  greedy.temperature = 0;
  greedy.max_tokens = 12;
  const auto g = gen.generate({{1, 2, 3}, {4, 5}}, greedy);
  SamplingParams k1 = greedy;
  k1.temperature = 1.0;
  k1.top_k = 1;  // top-1 sampling is greedy
  const auto g1 = gen.generate({{1, 2, 3}, {4, 5}}, k1);
  REQUIRE(g[0].tokens == g1[0].tokens);
  REQUIRE(g[1].tokens == g1[1].tokens);

  // EOS: the greedy token at step 3 of sequence 0 becomes an EOS id.
  SamplingParams eos = greedy;
  eos.eos_ids = {g[0].tokens[3]};
  const auto e = gen.generate({{1, 2, 3}, {4, 5}}, eos);
  const auto first_eos = std::find(g[0].tokens.begin(), g[0].tokens.end(), g[0].tokens[3]) - g[0].tokens.begin();
  REQUIRE(e[0].finish == FinishReason::Eos);
  REQUIRE(static_cast<std::int64_t>(e[0].tokens.size()) == first_eos + 1);
  // Stop sequence made of two greedy tokens of sequence 1.
  SamplingParams stop = greedy;
  stop.stop_sequences = {{g[1].tokens[5], g[1].tokens[6]}};
  const auto s = gen.generate({{1, 2, 3}, {4, 5}}, stop);
  REQUIRE(s[1].finish == FinishReason::Stop);
  REQUIRE(s[1].tokens.size() <= 7);
  REQUIRE(std::equal(s[1].tokens.begin(), s[1].tokens.end(), g[1].tokens.begin()));

  SamplingParams bad = greedy;
  bad.top_p = 0;
  REQUIRE_THROWS_WITH(gen.generate({{1}}, bad), Catch::Contains("top_p"));
  REQUIRE_THROWS_WITH(gen.generate({{1, 100000}}, greedy), Catch::Contains("outside the vocabulary"));
}

TEST_CASE("generator: the model's KV cache dtype (run.kv_cache) is the cache it keeps", "[rollout]") {
  ModelConfig c = tiny("tiny-deepseek-v3");
  ModelWeights w(c, Device::cpu(), false);
  w.init_random(5);
  Transformer model(w);
  CHECK(default_cache_dtype(model) == DType::F32);  // the CPU's default
  CHECK(Generator(model, 2, 16).cache().ckv[0].dtype() == DType::F32);
  model.set_kv_cache_dtype(DType::BF16);
  CHECK(default_cache_dtype(model) == DType::BF16);
  CHECK(Generator(model, 2, 16).cache().ckv[0].dtype() == DType::BF16);
  CHECK_THROWS_WITH(model.set_kv_cache_dtype(DType::F16), Catch::Contains("f32 or bf16"));

  // Decoding over a BF16 latent cache: the CPU reads the rounded values exactly, so the
  // log-probs move by the rounding (2^-9 relative per cached value): within 2^-5 of the
  // full forward here, where a miswired cache is off by O(1). FP32: < 2e-5 (above).
  const auto seq_a = random_tokens(12, c.vocab_size, 1), seq_b = random_tokens(9, c.vocab_size, 2);
  ForwardState st;
  const Tensor full = model.forward_logprobs(Batch::from_sequences({seq_a, seq_b}), st);
  const std::vector<float> got = testing::decode_logprobs(model, DType::BF16, seq_a, seq_b);
  REQUIRE(got.size() == 15);
  double worst = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double ref = full.data<float>()[i < 8 ? 3 + i : 13 + (i - 8)];
    worst = testing::worst_of(worst, std::fabs(got[i] - ref) / (1 + std::fabs(ref)));
  }
  INFO("worst relative log-prob change over a BF16 cache " << worst);
  CHECK(worst > 0);  // the rounding shows: the cache really is BF16
  CHECK(worst <= 0x1p-5);
}
