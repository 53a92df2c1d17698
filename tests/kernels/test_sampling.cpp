// Next-token sampling (kernels/sampling.h) on the CPU: bit for bit the generator's
// original host sampler (its sample / log_softmax_at, copied below as the reference, with
// the uniform drawn from the sequence's Rng exactly as the generator drew it), on random
// logits with and without ties, V not a power of two, for greedy / temperature / top-k /
// top-p and their combinations; the contract at chosen uniforms; the argument checks.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "core/rng.h"
#include "kernels/sampling.h"
#include "tests/catch.h"

using namespace crucible;
using Catch::Contains;

namespace {

// --- The generator's host sampler before ops::sample_tokens (rollout/generator.cpp). ---

std::int32_t ref_sample(const float* logits, std::int64_t V, const ops::SamplingOptions& p, Rng& rng) {
  if (p.temperature == 0) return static_cast<std::int32_t>(std::max_element(logits, logits + V) - logits);
  std::vector<std::int32_t> order(static_cast<std::size_t>(V));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::int32_t a, std::int32_t b) { return logits[a] > logits[b]; });
  std::int64_t n = V;
  if (p.top_k > 0) n = std::min(n, p.top_k);
  const double mx = logits[order[0]];
  std::vector<double> prob(static_cast<std::size_t>(n));
  double sum = 0;
  for (std::int64_t i = 0; i < n; ++i) sum += (prob[i] = std::exp((logits[order[i]] - mx) / p.temperature));
  if (p.top_p < 1) {
    double acc = 0;
    std::int64_t keep = 0;
    while (keep < n && acc < p.top_p * sum) acc += prob[keep++];
    n = std::max<std::int64_t>(keep, 1);
    sum = acc;
  }
  double u = rng.uniform_double() * sum;
  for (std::int64_t i = 0; i < n; ++i) {
    u -= prob[i];
    if (u < 0) return order[i];
  }
  return order[n - 1];
}

double ref_log_softmax_at(const float* logits, std::int64_t V, std::int32_t token) {
  double mx = logits[0];
  for (std::int64_t i = 1; i < V; ++i) mx = std::max(mx, static_cast<double>(logits[i]));
  double sum = 0;
  for (std::int64_t i = 0; i < V; ++i) sum += std::exp(logits[i] - mx);
  return logits[token] - mx - std::log(sum);
}

// --- Inputs. ---

// Normal logits of std `scale`; with `ties`, rounded to multiples of 1/2 (many equal values).
Tensor random_logits(std::int64_t n, std::int64_t V, std::uint64_t seed, float scale, bool ties) {
  Tensor t(Shape{n, V}, DType::F32, Device::cpu(), "logits");
  std::mt19937_64 gen(seed);
  std::normal_distribution<float> nd(0.0f, scale);
  for (float& v : t.span<float>()) v = ties ? std::round(2 * nd(gen)) / 2 : nd(gen);
  return t;
}

struct Result {
  Tensor tokens, logprobs;
};

Result run_op(const Tensor& logits, const Tensor& u, const ops::SamplingOptions& opts) {
  const std::int64_t n = logits.dim(0);
  Result r{Tensor(Shape{n}, DType::I32, Device::cpu(), "tokens"), Tensor(Shape{n}, DType::F32, Device::cpu(), "lp")};
  ops::sample_tokens(logits, u, opts, r.tokens, r.logprobs);
  return r;
}

std::string describe(const ops::SamplingOptions& o) {
  return "temperature " + std::to_string(o.temperature) + " top_p " + std::to_string(o.top_p) + " top_k " +
         std::to_string(o.top_k);
}

}  // namespace

TEST_CASE("sample_tokens on the CPU is the generator's former host sampler, bit for bit", "[kernels][sampling]") {
  const ops::SamplingOptions configs[] = {
      {0.0, 1.0, 0},    {1.0, 1.0, 0},   {0.7, 1.0, 0},    {1.3, 1.0, 1},   {1.0, 1.0, 5},
      {1.0, 1.0, 5000}, {1.0, 0.9, 0},   {0.5, 0.3, 0},    {0.6, 0.95, 50}, {1.0, 1e-9, 0},
      {2.0, 0.99, 3},   {0.0, 0.5, 7},   {1e-3, 1.0, 0},
  };
  struct Shape2 {
    std::int64_t n, V;
  };
  const Shape2 shapes[] = {{3, 1}, {5, 2}, {9, 7}, {8, 100}, {6, 1000}, {4, 4099}, {2, 129280}};
  std::uint64_t seed = 100;
  std::int64_t checked = 0, distinct_tokens = 0;
  for (const Shape2& s : shapes) {
    for (const bool ties : {false, true}) {
      for (const float scale : {1.0f, 4.0f}) {
        const Tensor logits = random_logits(s.n, s.V, seed++, scale, ties);
        for (const ops::SamplingOptions& o : configs) {
          for (std::uint64_t draw = 0; draw < 3; ++draw) {
            INFO("n " << s.n << " V " << s.V << (ties ? " (ties)" : "") << " scale " << scale << " " << describe(o)
                      << " draw " << draw);
            // The generator's streams: one Rng per sequence, one uniform per sampled token.
            Tensor u(Shape{s.n}, DType::F64, Device::cpu(), "u");
            std::vector<std::int32_t> want(s.n);
            std::vector<float> want_lp(s.n);
            for (std::int64_t i = 0; i < s.n; ++i) {
              Rng a(seed, 1000 * draw + i), b(seed, 1000 * draw + i);
              const float* row = logits.data<float>() + i * s.V;
              want[i] = ref_sample(row, s.V, o, a);
              want_lp[i] = static_cast<float>(ref_log_softmax_at(row, s.V, want[i]));
              u.data<double>()[i] = o.temperature == 0 ? 0.0 : b.uniform_double();
              REQUIRE(a.position() == b.position());  // the same consumption of the stream
            }
            const Result r = run_op(logits, u, o);
            std::vector<std::int32_t> seen;
            for (std::int64_t i = 0; i < s.n; ++i) {
              REQUIRE(r.tokens.data<std::int32_t>()[i] == want[i]);
              const float lp = r.logprobs.data<float>()[i];
              REQUIRE(std::memcmp(&lp, &want_lp[i], sizeof(float)) == 0);
              seen.push_back(want[i]);
              ++checked;
            }
            std::sort(seen.begin(), seen.end());
            distinct_tokens += std::unique(seen.begin(), seen.end()) - seen.begin();
          }
        }
      }
    }
  }
  std::printf("sample_tokens CPU vs the former host sampler: %lld rows equal (tokens and log-prob bits), "
              "%lld distinct tokens per (case, draw) summed\n",
              static_cast<long long>(checked), static_cast<long long>(distinct_tokens));
}

TEST_CASE("sample_tokens: greedy, top-k, top-p and the draw at chosen uniforms", "[kernels][sampling]") {
  // Probabilities 0.1, 0.2, 0.3, 0.4 for ids 3, 0, 2, 1 (sorted: 1, 2, 0, 3); id 4 ties id 1.
  const float l[] = {std::log(0.2f), std::log(0.4f), std::log(0.3f), std::log(0.1f), std::log(0.4f)};
  Tensor logits(Shape{1, 5}, DType::F32, Device::cpu(), "logits");
  std::copy(l, l + 5, logits.data<float>());
  Tensor u(Shape{1}, DType::F64, Device::cpu(), "u");
  auto draw = [&](double uniform, const ops::SamplingOptions& o) {
    u.data<double>()[0] = uniform;
    return run_op(logits, u, o).tokens.data<std::int32_t>()[0];
  };
  // Candidates in order: 1, 4 (tie, higher id after), 2, 0, 3 with masses .4 .4 .3 .2 .1 (sum 1.4).
  CHECK(draw(0.5, {0.0, 1.0, 0}) == 1);            // greedy: the lower id of the tie
  CHECK(draw(0.0, {1.0, 1.0, 0}) == 1);            // u = 0: the first candidate
  CHECK(draw(0.999999, {1.0, 1.0, 0}) == 3);       // u -> 1: the last candidate
  CHECK(draw(0.5, {1.0, 1.0, 0}) == 4);            // 0.7 of 1.4 falls in (0.4, 0.8]
  CHECK(draw(0.999999, {1.0, 1.0, 2}) == 4);       // top-k 2 keeps ids 1 and 4
  CHECK(draw(0.999999, {1.0, 1.0, 1}) == 1);       // top-k 1: the argmax whatever u
  CHECK(draw(0.999999, {1.0, 0.5, 0}) == 4);       // top-p .5: .4 + .4 >= .7 keeps two
  CHECK(draw(0.999999, {1.0, 0.2, 0}) == 1);       // top-p .2: the first alone reaches .28
  CHECK(draw(0.999999, {1.0, 0.75, 0}) == 2);      // .8 < 1.05 <= 1.1: keeps three
  // The log-prob is untempered and over the whole row, whatever the options.
  u.data<double>()[0] = 0.999999;
  const Result r = run_op(logits, u, {0.3, 0.9, 2});
  double sum = 0;
  for (float v : l) sum += std::exp(static_cast<double>(v));
  CHECK(r.logprobs.data<float>()[0] ==
        Approx(static_cast<double>(l[r.tokens.data<std::int32_t>()[0]]) - std::log(sum)).epsilon(1e-6));
}

TEST_CASE("sample_tokens refuses bad options, dtypes and shapes", "[kernels][sampling]") {
  const Tensor logits = random_logits(2, 10, 1, 1.0f, false);
  Tensor u(Shape{2}, DType::F64), tokens(Shape{2}, DType::I32), lp(Shape{2}, DType::F32);
  REQUIRE_THROWS_WITH(ops::sample_tokens(logits, u, {-1.0, 1.0, 0}, tokens, lp), Contains("temperature"));
  REQUIRE_THROWS_WITH(ops::sample_tokens(logits, u, {1.0, 0.0, 0}, tokens, lp), Contains("top_p"));
  REQUIRE_THROWS_WITH(ops::sample_tokens(logits, u, {1.0, 1.5, 0}, tokens, lp), Contains("top_p"));
  REQUIRE_THROWS_WITH(ops::sample_tokens(logits, u, {1.0, 1.0, -2}, tokens, lp), Contains("top_k"));
  Tensor u32(Shape{2}, DType::F32);
  REQUIRE_THROWS_WITH(ops::sample_tokens(logits, u32, {}, tokens, lp), Contains("f64"));
  Tensor short_tokens(Shape{1}, DType::I32);
  REQUIRE_THROWS_WITH(ops::sample_tokens(logits, u, {}, short_tokens, lp), Contains("tokens"));
  const Tensor flat = random_logits(1, 10, 2, 1.0f, false).reshape(Shape{10});
  REQUIRE_THROWS_WITH(ops::sample_tokens(flat, u, {}, tokens, lp), Contains("[n, V > 0]"));
}
