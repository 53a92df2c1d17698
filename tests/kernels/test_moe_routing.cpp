// DeepSeekMoE routing (kernels/moe_routing.h): a hand-computed V3-style example where
// the bias changes the selection but not the weights, V2-Lite softmax greedy routing,
// random cases against a naive float64 router, ties, finite-difference gradients with
// the selection held fixed, and bad parameters.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "kernels/moe_routing.h"
#include "tests/catch.h"

using namespace crucible;
using Catch::Contains;

namespace {

struct Routed {
  Tensor scores, idx, w;
};

Routed route(const Tensor& logits, const Tensor& bias, const ops::RoutingParams& p) {
  const std::int64_t T = logits.dim(0), E = logits.dim(1);
  Routed r{Tensor(Shape{T, E}, DType::F32, Device::cpu(), "scores"),
           Tensor(Shape{T, p.top_k}, DType::I32, Device::cpu(), "topk_idx"),
           Tensor(Shape{T, p.top_k}, DType::F32, Device::cpu(), "topk_w")};
  ops::moe_route_forward(logits, bias, p, r.scores, r.idx, r.w);
  return r;
}

Tensor make_logits(std::int64_t T, std::int64_t E, const std::vector<float>& v) {
  Tensor t(Shape{T, E}, DType::F32, Device::cpu(), "logits");
  std::copy(v.begin(), v.end(), t.data<float>());
  return t;
}

// Naive float64 router, written the way the HF MoEGate reads: masked groups are -inf,
// then a stable sort (ties keep the lower index first).
struct RefRoute {
  std::vector<std::int32_t> idx;
  std::vector<double> w;
};

RefRoute reference_route(const float* logits, const float* bias, std::int64_t E, const ops::RoutingParams& p) {
  std::vector<double> s(E), sel(E);
  if (p.sigmoid) {
    for (std::int64_t e = 0; e < E; ++e) s[e] = 1.0 / (1.0 + std::exp(-static_cast<double>(logits[e])));
  } else {
    double m = *std::max_element(logits, logits + E), sum = 0;
    for (std::int64_t e = 0; e < E; ++e) sum += std::exp(logits[e] - m);
    for (std::int64_t e = 0; e < E; ++e) s[e] = std::exp(logits[e] - m) / sum;
  }
  for (std::int64_t e = 0; e < E; ++e) sel[e] = s[e] + (bias ? bias[e] : 0.0);
  std::vector<double> masked = sel;
  if (p.group_limited) {
    const std::int64_t gsize = E / p.n_group;
    std::vector<double> gscore(p.n_group);
    for (std::int64_t g = 0; g < p.n_group; ++g) {
      std::vector<double> v(sel.begin() + g * gsize, sel.begin() + (g + 1) * gsize);
      std::sort(v.rbegin(), v.rend());
      gscore[g] = p.sigmoid ? v[0] + (gsize > 1 ? v[1] : 0.0) : v[0];
    }
    std::vector<std::int64_t> order(p.n_group);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return gscore[a] > gscore[b]; });
    for (std::int64_t j = p.topk_group; j < p.n_group; ++j)
      for (std::int64_t e = order[j] * gsize; e < (order[j] + 1) * gsize; ++e) masked[e] = -INFINITY;
  }
  std::vector<std::int32_t> order(E);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return masked[a] > masked[b]; });
  RefRoute r;
  double sum = 0;
  for (std::int64_t j = 0; j < p.top_k; ++j) {
    r.idx.push_back(order[j]);
    r.w.push_back(s[order[j]]);
    sum += s[order[j]];
  }
  for (double& w : r.w) w = w / (p.norm_topk_prob ? sum + 1e-20 : 1.0) * p.routed_scaling_factor;
  return r;
}

ops::RoutingParams v3_style(std::int64_t top_k, std::int64_t n_group, std::int64_t topk_group) {
  ops::RoutingParams p;
  p.top_k = top_k;
  p.n_group = n_group;
  p.topk_group = topk_group;
  p.sigmoid = true;
  p.group_limited = true;
  p.norm_topk_prob = true;
  p.routed_scaling_factor = 2.5f;
  return p;
}

ops::RoutingParams v2_lite_style(std::int64_t top_k) {
  ops::RoutingParams p;
  p.top_k = top_k;
  p.sigmoid = false;
  p.group_limited = false;
  p.norm_topk_prob = false;
  p.routed_scaling_factor = 1.0f;
  return p;
}

}  // namespace

TEST_CASE("routing: hand-computed sigmoid + bias + groups example", "[kernels][moe_routing]") {
  // E = 8 in 4 groups of 2, keep 2 groups, top-2, scaling 2.5. Scores by construction:
  //   s = [.9 .1 | .6 .5 | .3 .2 | .8 .7]
  // No bias: group scores (sum of the top 2) 1.0, 1.1, 0.5, 1.5 -> groups 3, 1 ->
  //   candidates {2, 3, 6, 7} -> experts 6, 7 (expert 0, the best score, is in a dropped
  //   group); weights 2.5 * (.8, .7) / 1.5.
  // Bias +1.2 on expert 4: biased s4 = 1.5, group 2 scores 1.7 -> groups 2, 3 -> experts
  //   4 (1.5), 6 (0.8); weights from the unbiased scores: 2.5 * (.3, .8) / 1.1.
  const std::vector<double> s = {0.9, 0.1, 0.6, 0.5, 0.3, 0.2, 0.8, 0.7};
  std::vector<float> lg;
  for (double x : s) lg.push_back(static_cast<float>(std::log(x / (1 - x))));
  const Tensor logits = make_logits(1, 8, lg);
  const ops::RoutingParams p = v3_style(2, 4, 2);

  const Routed a = route(logits, Tensor(), p);
  for (int e = 0; e < 8; ++e) CHECK(a.scores.data<float>()[e] == Approx(s[e]).epsilon(1e-6));
  CHECK(a.idx.data<std::int32_t>()[0] == 6);
  CHECK(a.idx.data<std::int32_t>()[1] == 7);
  CHECK(a.w.data<float>()[0] == Approx(2.5 * 0.8 / 1.5).epsilon(1e-6));
  CHECK(a.w.data<float>()[1] == Approx(2.5 * 0.7 / 1.5).epsilon(1e-6));

  Tensor bias(Shape{8}, DType::F32, Device::cpu(), "bias");
  bias.data<float>()[4] = 1.2f;
  const Routed b = route(logits, bias, p);
  CHECK(b.idx.data<std::int32_t>()[0] == 4);
  CHECK(b.idx.data<std::int32_t>()[1] == 6);
  CHECK(b.w.data<float>()[0] == Approx(2.5 * 0.3 / 1.1).epsilon(1e-6));
  CHECK(b.w.data<float>()[1] == Approx(2.5 * 0.8 / 1.1).epsilon(1e-6));
  for (int e = 0; e < 8; ++e) CHECK(b.scores.data<float>()[e] == a.scores.data<float>()[e]);  // bias: selection only

  // Without the group limit the plain top-2 is experts 0 and 6.
  ops::RoutingParams flat = p;
  flat.group_limited = false;
  const Routed c = route(logits, Tensor(), flat);
  CHECK(c.idx.data<std::int32_t>()[0] == 0);
  CHECK(c.idx.data<std::int32_t>()[1] == 6);
  CHECK(c.w.data<float>()[0] == Approx(2.5 * 0.9 / 1.7).epsilon(1e-6));
}

TEST_CASE("routing: V2-Lite softmax greedy top-k, no renormalization", "[kernels][moe_routing]") {
  const std::int64_t T = 5, E = 16;
  std::vector<float> lg(T * E);
  std::mt19937_64 gen(3);
  std::normal_distribution<float> nd(0.0f, 1.5f);
  for (float& x : lg) x = nd(gen);
  const Tensor logits = make_logits(T, E, lg);
  const ops::RoutingParams p = v2_lite_style(6);
  const Routed r = route(logits, Tensor(), p);
  for (std::int64_t t = 0; t < T; ++t) {
    double m = -INFINITY, z = 0;
    for (std::int64_t e = 0; e < E; ++e) m = std::max(m, static_cast<double>(lg[t * E + e]));
    for (std::int64_t e = 0; e < E; ++e) z += std::exp(lg[t * E + e] - m);
    std::vector<std::int32_t> order(E);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return lg[t * E + a] > lg[t * E + b]; });
    double wsum = 0;
    for (std::int64_t j = 0; j < 6; ++j) {
      INFO("row " << t << " rank " << j);
      CHECK(r.idx.data<std::int32_t>()[t * 6 + j] == order[j]);
      CHECK(r.w.data<float>()[t * 6 + j] == Approx(std::exp(lg[t * E + order[j]] - m) / z).epsilon(1e-6));
      wsum += r.w.data<float>()[t * 6 + j];
    }
    CHECK(wsum < 0.999);  // the softmax mass of the chosen experts, not renormalized to 1
  }
}

TEST_CASE("routing matches a naive float64 router on random inputs", "[kernels][moe_routing]") {
  const std::int64_t T = 32, E = 16;
  std::vector<float> lg(T * E);
  std::mt19937_64 gen(5);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (float& x : lg) x = nd(gen);
  const Tensor logits = make_logits(T, E, lg);
  Tensor bias(Shape{E}, DType::F32, Device::cpu(), "bias");
  for (float& x : bias.span<float>()) x = 0.1f * nd(gen);

  ops::RoutingParams softmax_groups = v3_style(3, 4, 2);  // V2 group_limited_greedy, renormalized
  softmax_groups.sigmoid = false;
  ops::RoutingParams sigmoid_flat = v3_style(4, 1, 1);
  sigmoid_flat.group_limited = false;
  sigmoid_flat.norm_topk_prob = false;
  const std::pair<ops::RoutingParams, bool> cases[] = {
      {v3_style(4, 4, 2), true}, {v3_style(4, 4, 2), false}, {v3_style(6, 8, 3), true},
      {softmax_groups, false},   {sigmoid_flat, true},       {v2_lite_style(6), false}};
  for (const auto& [p, with_bias] : cases) {
    const Tensor b = with_bias ? bias : Tensor();
    const Routed r = route(logits, b, p);
    for (std::int64_t t = 0; t < T; ++t) {
      const RefRoute ref = reference_route(lg.data() + t * E, with_bias ? bias.data<float>() : nullptr, E, p);
      INFO("sigmoid " << p.sigmoid << " groups " << p.group_limited << " n_group " << p.n_group << " top_k "
                      << p.top_k << " bias " << with_bias << " row " << t);
      for (std::int64_t j = 0; j < p.top_k; ++j) {
        CHECK(r.idx.data<std::int32_t>()[t * p.top_k + j] == ref.idx[j]);
        // FP32 sigmoid/softmax (~4u) and a length-k normalization: 1e-6 relative.
        CHECK(r.w.data<float>()[t * p.top_k + j] == Approx(ref.w[j]).epsilon(1e-6));
      }
    }
  }
}

TEST_CASE("routing breaks ties towards the lower index", "[kernels][moe_routing]") {
  const Tensor logits = make_logits(1, 8, std::vector<float>(8, 0.0f));  // all scores 0.5
  const Routed g = route(logits, Tensor(), v3_style(3, 4, 2));  // groups 0, 1 -> experts 0, 1, 2
  CHECK(g.idx.data<std::int32_t>()[0] == 0);
  CHECK(g.idx.data<std::int32_t>()[1] == 1);
  CHECK(g.idx.data<std::int32_t>()[2] == 2);
  CHECK(g.w.data<float>()[0] == Approx(2.5 / 3).epsilon(1e-6));
  // Groups 1 and 3 tie above the rest: both kept, then experts 2, 3 of group 1 tie with 6, 7.
  const Tensor l2 = make_logits(1, 8, {-1, -1, 1, 1, -1, -1, 1, 1});
  const Routed h = route(l2, Tensor(), v3_style(3, 4, 2));
  CHECK(h.idx.data<std::int32_t>()[0] == 2);
  CHECK(h.idx.data<std::int32_t>()[1] == 3);
  CHECK(h.idx.data<std::int32_t>()[2] == 6);
}

TEST_CASE("routing backward matches finite differences with the selection fixed", "[kernels][moe_routing]") {
  // Each row's logits are a random permutation of a grid with gaps >= 0.3, so a step of
  // h = 1e-3 (score change <= 2.5e-4) cannot flip the top-k; the test asserts it does not.
  // L = Σ r ⊙ topk_w in double; every logit is checked against central differences of the
  // float64 router (1e-4 relative + 1e-7) and of the FP32 kernel (1e-2 relative + the FP32
  // noise of the row's loss: each weight carries (k + 6) u relative rounding (score ~4u,
  // normalization k u, scale), so noise = (k + 6) u Σ_j |r_j w_j| / h).
  const std::int64_t T = 4, E = 16;
  std::mt19937_64 gen(7);
  std::vector<float> lg;
  for (std::int64_t t = 0; t < T; ++t) {
    std::vector<float> row(E);
    for (std::int64_t i = 0; i < E; ++i) row[i] = -2.0f + 0.3f * i + 0.02f * i * i;
    std::shuffle(row.begin(), row.end(), gen);
    lg.insert(lg.end(), row.begin(), row.end());
  }
  Tensor logits = make_logits(T, E, lg);
  Tensor bias(Shape{E}, DType::F32, Device::cpu(), "bias");
  for (std::int64_t e = 0; e < E; ++e) bias.data<float>()[e] = 0.013f * static_cast<float>((e * 7) % E);

  ops::RoutingParams softmax_norm = v3_style(3, 4, 2);
  softmax_norm.sigmoid = false;
  ops::RoutingParams sigmoid_plain = v3_style(4, 4, 2);
  sigmoid_plain.norm_topk_prob = false;
  sigmoid_plain.routed_scaling_factor = 1.5f;
  const std::pair<ops::RoutingParams, bool> cases[] = {
      {v3_style(4, 4, 2), true}, {sigmoid_plain, false}, {v2_lite_style(6), false}, {softmax_norm, false}};
  for (const auto& [p, with_bias] : cases) {
    const Tensor b = with_bias ? bias : Tensor();
    std::vector<float> rw(T * p.top_k);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (float& x : rw) x = nd(gen);
    const Routed base = route(logits, b, p);
    Tensor dw(Shape{T, p.top_k}, DType::F32), dlogits(Shape{T, E}, DType::F32);
    std::copy(rw.begin(), rw.end(), dw.data<float>());
    for (float& x : dlogits.span<float>()) x = 7.0f;  // dlogits is written
    ops::moe_route_backward(dw, base.scores, base.idx, p, dlogits);

    auto loss32 = [&] {
      const Routed r = route(logits, b, p);
      for (std::int64_t i = 0; i < r.idx.numel(); ++i)
        REQUIRE(r.idx.data<std::int32_t>()[i] == base.idx.data<std::int32_t>()[i]);
      double s = 0;
      for (std::int64_t i = 0; i < r.w.numel(); ++i) s += static_cast<double>(r.w.data<float>()[i]) * rw[i];
      return s;
    };
    auto loss64 = [&] {
      double s = 0;
      for (std::int64_t t = 0; t < T; ++t) {
        const RefRoute r = reference_route(logits.data<float>() + t * E, with_bias ? bias.data<float>() : nullptr, E, p);
        for (std::int64_t j = 0; j < p.top_k; ++j) s += r.w[j] * rw[t * p.top_k + j];
      }
      return s;
    };
    auto central = [&](std::int64_t i, const auto& loss) {
      float* xs = logits.data<float>();
      const float orig = xs[i];
      xs[i] = orig + 1e-3f;
      const double x_up = xs[i], up = loss();
      xs[i] = orig - 1e-3f;
      const double x_down = xs[i], down = loss();
      xs[i] = orig;
      return (up - down) / (x_up - x_down);
    };
    for (std::int64_t i = 0; i < T * E; ++i) {
      const std::int64_t t = i / E;
      double noise = 0;
      for (std::int64_t j = 0; j < p.top_k; ++j)
        noise += std::abs(rw[t * p.top_k + j] * base.w.data<float>()[t * p.top_k + j]);
      noise *= static_cast<double>(p.top_k + 6) * 0x1p-24 / 1e-3;
      const double an = dlogits.data<float>()[i], fd64 = central(i, loss64), fd32 = central(i, loss32);
      INFO("sigmoid " << p.sigmoid << " norm " << p.norm_topk_prob << " logit " << i << ": analytic " << an
                      << " fd64 " << fd64 << " fd32 " << fd32);
      CHECK(std::abs(fd64 - an) <= 1e-4 * std::max(std::abs(fd64), std::abs(an)) + 1e-7);
      CHECK(std::abs(fd32 - an) <= 1e-2 * std::max(std::abs(fd32), std::abs(an)) + noise);
    }
  }
}

TEST_CASE("routing rejects impossible parameters", "[kernels][moe_routing]") {
  const Tensor logits = make_logits(1, 8, std::vector<float>(8, 0.0f));
  Tensor scores(Shape{1, 8}, DType::F32), idx(Shape{1, 5}, DType::I32), w(Shape{1, 5}, DType::F32);
  CHECK_THROWS_WITH(ops::moe_route_forward(logits, Tensor(), v3_style(5, 4, 2), scores, idx, w),
                    Contains("top_k = 5 exceeds the 4 experts of the 2 kept groups"));
  Tensor idx2(Shape{1, 2}, DType::I32), w2(Shape{1, 2}, DType::F32);
  CHECK_THROWS_WITH(ops::moe_route_forward(logits, Tensor(), v3_style(2, 3, 2), scores, idx2, w2),
                    Contains("n_group = 3 must divide the number of experts E = 8"));
}
