// The GRPO family: advantages, clipping, k3 KL, aggregation exact across
// micro-batches, GSPO's sequence ratio; gradients by finite differences.
#include <cmath>
#include <random>

#include "tests/catch.h"
#include "trainer/policy_loss.h"

using namespace crucible;
using namespace crucible::trainer;

namespace {
Tensor vec(const std::vector<float>& v) {
  Tensor t(Shape{static_cast<std::int64_t>(v.size())}, DType::F32);
  std::copy(v.begin(), v.end(), t.data<float>());
  return t;
}
}  // namespace

TEST_CASE("group advantages: normalized, zero for equal groups, Dr.GRPO without std", "[grpo]") {
  const auto a = group_advantages({1, 0, 0, 1, 0.5, 0.5, 0.5, 0.5}, 4, true);
  // Group 1: mean 0.5, sample std sqrt(1/3).
  CHECK(a[0] == Approx(0.5 / (std::sqrt(1.0 / 3) + 1e-6)));
  CHECK(a[1] == Approx(-a[0]));
  for (int i = 4; i < 8; ++i) CHECK(a[i] == 0.0);  // all-equal group: no signal
  const auto b = group_advantages({1, 0, 0, 1}, 4, false);
  CHECK(b[0] == 0.5);
  CHECK(b[1] == -0.5);
  REQUIRE_THROWS(group_advantages({1, 2, 3}, 2, true));
}

TEST_CASE("policy loss: clipping zeroes the gradient on the clipped side only", "[grpo]") {
  PolicyLossConfig cfg;
  cfg.clip_eps_low = 0.2;
  cfg.clip_eps_high = 0.28;
  cfg.aggregation = LossAggregation::SeqMeanTokenSum;
  const LossNormalizer norm{4, 1};
  // ratios e^0.5 (above 1.28), e^-0.5 (below 0.8), 1, 1.1
  const Tensor old_lp = vec({-1, -1, -1, -1});
  const Tensor new_lp = vec({-0.5f, -1.5f, -1, static_cast<float>(-1 + std::log(1.1))});
  Tensor d(Shape{4}, DType::F32);
  // Positive advantage: the high ratio is clipped (no push further); the low one is not.
  PolicyLossStats s = policy_loss(cfg, norm, {{0, 4, 1.0}}, new_lp, old_lp, Tensor(), d);
  CHECK(d.data<float>()[0] == 0.0f);
  CHECK(d.data<float>()[1] == Approx(-std::exp(-0.5)));
  CHECK(d.data<float>()[2] == Approx(-1.0));
  CHECK(s.clipped_tokens == 1);
  CHECK(s.loss == Approx(-(1.28 + std::exp(-0.5) + 1 + 1.1)));
  // Negative advantage: now the low ratio is clipped, the high one is not.
  s = policy_loss(cfg, norm, {{0, 4, -1.0}}, new_lp, old_lp, Tensor(), d);
  CHECK(d.data<float>()[1] == 0.0f);
  CHECK(d.data<float>()[0] == Approx(std::exp(0.5)));
  CHECK(s.clipped_tokens == 1);
}

TEST_CASE("policy loss gradient matches finite differences, with k3 KL, for every mode", "[grpo]") {
  std::mt19937 gen(3);
  std::normal_distribution<float> nd(0.0f, 0.3f);
  const int T = 12;
  std::vector<float> lo(T), lr(T), ln(T);
  for (int t = 0; t < T; ++t) lo[t] = -1 + nd(gen), lr[t] = -1 + nd(gen), ln[t] = lo[t] + 0.05f * nd(gen);
  const std::vector<ResponseSpan> spans{{0, 5, 0.7}, {5, 7, -1.2}, {7, 12, 0.3}};
  for (auto agg : {LossAggregation::TokenMean, LossAggregation::SeqMeanTokenMean, LossAggregation::SeqMeanTokenSum,
                   LossAggregation::ConstantNormalized})
    for (auto level : {RatioLevel::Token, RatioLevel::Sequence}) {
      PolicyLossConfig cfg;
      cfg.aggregation = agg;
      cfg.ratio_level = level;
      cfg.kl_beta = 0.05;
      cfg.clip_eps_low = cfg.clip_eps_high = 10;  // far: the objective is smooth here
      const LossNormalizer norm{12, 3};
      Tensor d(Shape{T}, DType::F32);
      const Tensor old_t = vec(lo), ref_t = vec(lr);
      policy_loss(cfg, norm, spans, vec(ln), old_t, ref_t, d);
      for (int t = 0; t < T; ++t) {
        auto at = [&](double delta) {
          std::vector<float> x = ln;
          x[t] = static_cast<float>(x[t] + delta);
          Tensor dd(Shape{T}, DType::F32);
          return policy_loss(cfg, norm, spans, vec(x), old_t, ref_t, dd).loss;
        };
        const double fd = (at(1e-3) - at(-1e-3)) / 2e-3;
        INFO("agg " << int(agg) << " level " << int(level) << " t " << t);
        CHECK(d.data<float>()[t] == Approx(fd).epsilon(2e-3).margin(1e-6));
      }
    }
}

TEST_CASE("aggregation is exact across micro-batches: the sum of parts equals the whole", "[grpo]") {
  std::mt19937 gen(5);
  std::normal_distribution<float> nd(0.0f, 0.3f);
  const int T = 20;
  std::vector<float> lo(T), ln(T);
  for (int t = 0; t < T; ++t) lo[t] = -1 + nd(gen), ln[t] = lo[t] + nd(gen);
  const std::vector<ResponseSpan> all{{0, 3, 1}, {3, 11, -0.5}, {11, 12, 0.2}, {12, 20, 0.9}};
  const LossNormalizer norm{20, 4};  // global counts
  for (auto agg : {LossAggregation::TokenMean, LossAggregation::SeqMeanTokenMean, LossAggregation::SeqMeanTokenSum,
                   LossAggregation::ConstantNormalized}) {
    PolicyLossConfig cfg;
    cfg.aggregation = agg;
    Tensor d_all(Shape{T}, DType::F32);
    const double whole = policy_loss(cfg, norm, all, vec(ln), vec(lo), Tensor(), d_all).loss;
    // Two micro-batches (e.g. two ranks) holding two responses each.
    std::vector<float> lo1(lo.begin(), lo.begin() + 11), ln1(ln.begin(), ln.begin() + 11);
    std::vector<float> lo2(lo.begin() + 11, lo.end()), ln2(ln.begin() + 11, ln.end());
    Tensor d1(Shape{11}, DType::F32), d2(Shape{9}, DType::F32);
    const double p1 = policy_loss(cfg, norm, {{0, 3, 1}, {3, 11, -0.5}}, vec(ln1), vec(lo1), Tensor(), d1).loss;
    const double p2 = policy_loss(cfg, norm, {{0, 1, 0.2}, {1, 9, 0.9}}, vec(ln2), vec(lo2), Tensor(), d2).loss;
    CHECK(p1 + p2 == Approx(whole).epsilon(1e-12));
    for (int t = 0; t < 11; ++t) CHECK(d1.data<float>()[t] == d_all.data<float>()[t]);
    for (int t = 0; t < 9; ++t) CHECK(d2.data<float>()[t] == d_all.data<float>()[11 + t]);
  }
}

TEST_CASE("k3 KL is zero at the reference and positive elsewhere", "[grpo]") {
  PolicyLossConfig cfg;
  cfg.kl_beta = 1.0;
  Tensor d(Shape{3}, DType::F32);
  const Tensor same = vec({-1, -2, -3});
  PolicyLossStats s = policy_loss(cfg, {3, 1}, {{0, 3, 0.0}}, same, same, same, d);
  CHECK(s.kl_sum == 0.0);
  s = policy_loss(cfg, {3, 1}, {{0, 3, 0.0}}, same, same, vec({-1.5f, -2, -2.5f}), d);
  CHECK(s.kl_sum > 0);
}
