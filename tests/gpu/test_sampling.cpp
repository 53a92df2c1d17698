// GPU vs CPU twin: next-token sampling (kernels/sampling.h) on fresh random logits, at
// small odd shapes (V = 1, 7, 2048, 2049 around the block scan's 2048-candidate chunk,
// 4099) and at DeepSeek-V3's vocabulary V = 129280 with n = 1, 7, 128 rows, and 130
// rows (two sort groups of <= 2^24 logits), for greedy / temperature / top-k / top-p.
//
// Two logit regimes: general (uniform in [-a, a), a = 4 or 30: flat and peaked rows)
// and ties (multiples of 1/2 in [-8, 8]: thousands of equal logits per row, so a sort
// that is not stable, or breaks ties towards the higher id, changes the tokens).
// Uniforms: random 53-bit doubles, with u = 0 and u = 1 - 2^-53 forced on two rows.
//
// Tokens. Greedy: equal everywhere. Sampled: both sides pick, in the same candidate
// order c_0, c_1, ..., the first candidate whose prefix sum of p exceeds u S_kept; they
// differ only in rounding: the FP64 exp (<= 1 ulp each: 2^-52 relative), the order of
// the K-term prefix sums (<= K 2^-53 of the sum of terms, Higham §4.2) and, on the CPU,
// the walk u S - p_0 - ... (<= K 2^-53 (u S + prefix)). Each side is thus within
// E = 4 (K + 4) 2^-53 S of the exact prefix, target and top-p threshold, S = the K
// candidates' mass (the test recomputes p and the prefixes in long double). A token
// mismatch is accepted only where the rounding can explain it: the top-p threshold lies
// within E of a prefix (the kept counts may differ), or the exact target lies within E
// of every boundary between the two picks. For random u this happens with probability
// ~2 K E / S (< 2e-5 per row at V = 129280); the count is printed.
// Log-probs: against the CPU's FP64 log_softmax_at of the GPU's token (the CPU twin's own
// value where the tokens agree): both evaluate l - max - log(sum) with sums of V terms in
// different orders (<= (V + 2) 2^-53 relative each, so 2 (V + 2) 2^-53 on the log) and
// round to FP32 once (u |lp| each): tol = 4 (V + 2) 2^-53 + 2 u |lp|.
// Determinism: a second GPU run gives the same tokens and log-prob bits.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <numeric>
#include <string>
#include <vector>

#include "core/device_memory.h"
#include "kernels/sampling.h"
#include "tests/catch.h"
#include "tests/gpu/gpu_compare.h"

using namespace crucible;
using namespace crucible::gpu_test;

namespace {

const Device kGpu = Device::cuda(0);
constexpr double kUd = 0x1p-53;  // FP64 unit roundoff

struct SamplingCase {
  const char* name;
  std::int64_t n, V;
  bool all_options;  // every option set, or the few of kLargeOptions (CPU time at V = 129280)
};

constexpr std::int64_t kV3Vocab = 129280;  // DeepSeek-V3
const SamplingCase kCases[] = {
    {"1 x 1", 1, 1, true},          {"3 x 7", 3, 7, true},        {"5 x 2048", 5, 2048, true},
    {"4 x 2049", 4, 2049, true},    {"6 x 4099", 6, 4099, true},  {"1 x V3", 1, kV3Vocab, true},
    {"7 x V3", 7, kV3Vocab, true},  {"128 x V3", 128, kV3Vocab, false},
    {"130 x V3 (two sort groups)", 130, kV3Vocab, false},
};

const ops::SamplingOptions kOptions[] = {
    {0.0, 1.0, 0},   {1.0, 1.0, 0},   {0.7, 1.0, 0},    {1.0, 0.9, 0},  {0.6, 0.95, 0},
    {1.0, 1.0, 1},   {1.0, 1.0, 50},  {1.3, 0.95, 1000}, {1.0, 1e-9, 0}, {0.05, 1.0, 0},
};
const ops::SamplingOptions kLargeOptions[] = {{0.0, 1.0, 0}, {1.0, 1.0, 0}, {0.6, 0.95, 50}};

Tensor make_logits(std::int64_t n, std::int64_t V, int regime, std::uint64_t seed) {
  if (regime < 2) return uniform_tensor(Shape{n, V}, seed, "logits", regime == 0 ? -4.0f : -30.0f,
                                        regime == 0 ? 4.0f : 30.0f);
  Tensor t(Shape{n, V}, DType::F32, Device::cpu(), "logits");
  SplitMix rng{seed};
  for (float& v : t.span<float>()) v = static_cast<float>(rng.below(33) - 16) / 2.0f;
  return t;
}

Tensor make_uniforms(std::int64_t n, std::uint64_t seed) {
  Tensor u(Shape{n}, DType::F64, Device::cpu(), "u");
  SplitMix rng{seed};
  for (double& v : u.span<double>()) v = static_cast<double>(rng.next() >> 11) * kUd;
  if (n > 1) u.data<double>()[0] = 0.0;
  if (n > 2) u.data<double>()[n - 1] = 1.0 - kUd;
  return u;
}

double log_softmax_at(const float* l, std::int64_t V, std::int32_t token) {  // the CPU twin's
  double mx = l[0];
  for (std::int64_t i = 1; i < V; ++i) mx = std::max(mx, static_cast<double>(l[i]));
  double sum = 0;
  for (std::int64_t i = 0; i < V; ++i) sum += std::exp(l[i] - mx);
  return l[token] - mx - std::log(sum);
}

// Whether rounding explains CPU token `a` vs GPU token `b` in one row (file comment).
bool rounding_explains(const float* l, std::int64_t V, const ops::SamplingOptions& o, double u, std::int32_t a,
                       std::int32_t b) {
  std::vector<std::int32_t> order(static_cast<std::size_t>(V));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::int32_t x, std::int32_t y) { return l[x] > l[y]; });
  const std::int64_t K = o.top_k > 0 ? std::min(o.top_k, V) : V;
  std::vector<long double> pre(static_cast<std::size_t>(K));
  long double acc = 0;
  for (std::int64_t i = 0; i < K; ++i)
    pre[i] = acc += std::exp((static_cast<long double>(l[order[i]]) - l[order[0]]) / o.temperature);
  const long double S = pre[K - 1], E = 4.0L * (K + 4) * kUd * S;
  std::int64_t m = K;
  if (o.top_p < 1) {
    const long double thr = static_cast<long double>(o.top_p) * S;
    for (std::int64_t j = 0; j < K; ++j)
      if (std::fabs(pre[j] - thr) <= E) return true;  // the kept counts may differ
    while (m > 1 && pre[m - 2] >= thr) --m;
  }
  const long double target = static_cast<long double>(u) * pre[m - 1];
  const auto pos = [&](std::int32_t t) { return std::find(order.begin(), order.end(), t) - order.begin(); };
  const std::int64_t lo = std::min(pos(a), pos(b)), hi = std::max(pos(a), pos(b));
  if (hi >= m) return false;
  return pre[lo] >= target - E && pre[hi - 1] <= target + E;
}

}  // namespace

TEST_CASE("sampling: CUDA tokens and log-probs match the CPU twin", "[gpu][sampling]") {
  REQUIRE(cuda_device_count() > 0);
  std::uint64_t seed = 9100;
  std::int64_t rows_total = 0, mismatches_total = 0;
  for (const SamplingCase& c : kCases) {
    const std::int64_t n = c.n, V = c.V;
    std::vector<ops::SamplingOptions> options(std::begin(kLargeOptions), std::end(kLargeOptions));
    if (c.all_options) options.assign(std::begin(kOptions), std::end(kOptions));
    for (int regime = 0; regime < 3; ++regime) {
      const Tensor logits = make_logits(n, V, regime, seed++);
      const Tensor logits_g = logits.to(kGpu);
      const char* regime_name = regime == 0 ? "flat" : regime == 1 ? "peaked" : "ties";
      for (const ops::SamplingOptions& o : options) {
        char buf[160];
        std::snprintf(buf, sizeof buf, "%s, %s logits, temperature %g top_p %g top_k %lld", c.name, regime_name,
                      o.temperature, o.top_p, static_cast<long long>(o.top_k));
        const std::string name = buf;
        INFO(name);
        const Tensor u = make_uniforms(n, seed++);
        Tensor tok(Shape{n}, DType::I32, Device::cpu(), "tokens"), lp(Shape{n}, DType::F32, Device::cpu(), "lp");
        ops::sample_tokens(logits, u, o, tok, lp);
        const Tensor u_g = u.to(kGpu);
        Tensor tok_g(Shape{n}, DType::I32, kGpu, "tokens"), lp_g = nan_tensor(Shape{n}, "lp").to(kGpu);
        ops::sample_tokens(logits_g, u_g, o, tok_g, lp_g);
        const Tensor tok_h = on_host(tok_g);

        // Tokens: equal, or a mismatch that the rounding explains (never for greedy).
        Tensor want_lp(Shape{n}, DType::F32, Device::cpu(), "lp of the GPU's tokens");
        std::int64_t mismatches = 0, unexplained = 0, first_bad = -1;
        for (std::int64_t i = 0; i < n; ++i) {
          const float* row = logits.data<float>() + i * V;
          const std::int32_t a = tok.data<std::int32_t>()[i], b = tok_h.data<std::int32_t>()[i];
          REQUIRE((b >= 0 && b < V));
          want_lp.data<float>()[i] = a == b ? lp.data<float>()[i] : static_cast<float>(log_softmax_at(row, V, b));
          if (a == b) continue;
          ++mismatches;
          if (o.temperature == 0 || !rounding_explains(row, V, o, u.data<double>()[i], a, b))
            if (unexplained++ == 0) first_bad = i;
        }
        INFO(mismatches << " token mismatches, " << unexplained << " unexplained; first at row " << first_bad
                        << (first_bad >= 0 ? ": cpu " + std::to_string(tok.data<std::int32_t>()[first_bad]) +
                                                 " gpu " + std::to_string(tok_h.data<std::int32_t>()[first_bad])
                                           : std::string()));
        REQUIRE(unexplained == 0);
        rows_total += n;
        mismatches_total += mismatches;

        const float* wl = want_lp.data<float>();
        require_close(name + " logprobs", want_lp, lp_g,
                      [&](std::int64_t i) { return 4.0 * (V + 2) * kUd + 2 * kU * std::fabs(wl[i]); });

        // Determinism.
        Tensor tok2(Shape{n}, DType::I32, kGpu, "tokens2"), lp2 = nan_tensor(Shape{n}, "lp2").to(kGpu);
        ops::sample_tokens(logits_g, u_g, o, tok2, lp2);
        const Tensor tok2_h = on_host(tok2);
        REQUIRE(std::equal(tok_h.span<std::int32_t>().begin(), tok_h.span<std::int32_t>().end(),
                           tok2_h.span<std::int32_t>().begin()));
        require_same_bits(name + " logprobs, second run", on_host(lp_g), lp2);
      }
    }
    std::printf("  %-28s ok\n", c.name);
  }
  std::printf("sampling: %lld rows, %lld sampled tokens differ from the CPU within rounding of a boundary\n",
              static_cast<long long>(rows_total), static_cast<long long>(mismatches_total));
}
