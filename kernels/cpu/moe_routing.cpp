// kernels/cpu/moe_routing.cpp: CPU reference of DeepSeekMoE routing (V3 noaux_tc with
// sigmoid scores, V2 softmax greedy / group_limited_greedy), forward and backward.
//
// Invariant: selection is a pure function of the biased scores s + b with every tie
// broken towards the lower index (groups and experts), so it is deterministic and the
// same on every backend; the weights depend on the unbiased scores only. The backward
// holds the selection fixed (piecewise constant) and differentiates weights -> scores
// -> logits. topk_idx lists the chosen experts best first (by biased score).
// Reference: reference/deepseek_v3_fp8.md §3.1-3.2 (HF MoEGate, DeepSeek-V3 inference Gate).
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "core/error.h"
#include "kernels/moe_routing.h"

namespace crucible::ops {

namespace {

void check_f32(const Tensor& t, const char* what, const Shape& want) {
  CRUCIBLE_CHECK(t.defined() && t.device().is_cpu() && t.dtype() == DType::F32, what, " (", t.name(),
                 ") must be a defined CPU f32 tensor");
  CRUCIBLE_CHECK(t.shape() == want, what, " (", t.name(), ") has shape ", t.shape().str(), ", expected ",
                 want.str());
}

void check_params(const RoutingParams& p, std::int64_t E, const char* op) {
  CRUCIBLE_CHECK(p.top_k >= 1 && p.top_k <= E, op, ": top_k = ", p.top_k, " must lie in [1, E = ", E, "]");
  if (!p.group_limited) return;
  CRUCIBLE_CHECK(p.n_group >= 1 && E % p.n_group == 0, op, ": n_group = ", p.n_group,
                 " must divide the number of experts E = ", E);
  CRUCIBLE_CHECK(p.topk_group >= 1 && p.topk_group <= p.n_group, op, ": topk_group = ", p.topk_group,
                 " must lie in [1, n_group = ", p.n_group, "]");
  CRUCIBLE_CHECK(p.top_k <= p.topk_group * (E / p.n_group), op, ": top_k = ", p.top_k, " exceeds the ",
                 p.topk_group * (E / p.n_group), " experts of the ", p.topk_group, " kept groups");
}

// Output order of a ranking: higher value first, ties towards the lower index.
struct RanksBefore {
  const float* v;
  bool operator()(std::int32_t a, std::int32_t b) const { return v[a] > v[b] || (v[a] == v[b] && a < b); }
};

// Moves the k best of cand (by v, RanksBefore) to its front, best first.
void select_top(std::vector<std::int32_t>& cand, std::int64_t k, const float* v) {
  std::partial_sort(cand.begin(), cand.begin() + k, cand.end(), RanksBefore{v});
}

}  // namespace

void moe_route_forward(const Tensor& logits, const Tensor& bias, const RoutingParams& p, Tensor& scores,
                       Tensor& topk_idx, Tensor& topk_w) {
  CRUCIBLE_CHECK(logits.defined() && logits.rank() == 2, "moe_route_forward: logits (", logits.name(),
                 ") must be [T, E]");
  const std::int64_t T = logits.dim(0), E = logits.dim(1), K = p.top_k;
  check_f32(logits, "moe_route_forward logits", logits.shape());
  check_params(p, E, "moe_route_forward");
  if (bias.defined()) check_f32(bias, "moe_route_forward bias", Shape{E});
  check_f32(scores, "moe_route_forward scores", Shape{T, E});
  CRUCIBLE_CHECK(topk_idx.defined() && topk_idx.device().is_cpu() && topk_idx.dtype() == DType::I32 &&
                     topk_idx.shape() == (Shape{T, K}),
                 "moe_route_forward: topk_idx (", topk_idx.name(), ") must be a CPU i32 [", T, ", ", K, "] tensor");
  check_f32(topk_w, "moe_route_forward topk_w", Shape{T, K});

  const float* lg = logits.data<float>();
  const float* b = bias.defined() ? bias.data<float>() : nullptr;
  float* sc = scores.data<float>();
  std::int32_t* idx = topk_idx.data<std::int32_t>();
  float* wt = topk_w.data<float>();
  const std::int64_t n_group = p.group_limited ? p.n_group : 1, gsize = E / n_group;

  std::vector<float> sel(static_cast<std::size_t>(E));         // biased scores: selection only
  std::vector<float> gscore(static_cast<std::size_t>(n_group));
  std::vector<std::int32_t> groups(static_cast<std::size_t>(n_group)), cand, in_group;
  for (std::int64_t t = 0; t < T; ++t) {
    const float* l = lg + t * E;
    float* s = sc + t * E;
    if (p.sigmoid) {
      for (std::int64_t e = 0; e < E; ++e) s[e] = 1.0f / (1.0f + std::exp(-l[e]));
    } else {
      const float m = *std::max_element(l, l + E);
      double sum = 0;
      for (std::int64_t e = 0; e < E; ++e) {
        s[e] = std::exp(l[e] - m);
        sum += s[e];
      }
      const float inv = static_cast<float>(1.0 / sum);
      for (std::int64_t e = 0; e < E; ++e) s[e] *= inv;
    }
    for (std::int64_t e = 0; e < E; ++e) sel[e] = b ? s[e] + b[e] : s[e];

    // Group-limited: rank groups by the sum of their top-2 biased scores (sigmoid,
    // noaux_tc) or their max (softmax, group_limited_greedy); keep topk_group of them.
    cand.clear();
    if (p.group_limited && n_group > 1) {
      for (std::int64_t g = 0; g < n_group; ++g) {
        in_group.resize(static_cast<std::size_t>(gsize));
        std::iota(in_group.begin(), in_group.end(), static_cast<std::int32_t>(g * gsize));
        const std::int64_t n_top = p.sigmoid ? std::min<std::int64_t>(2, gsize) : 1;
        select_top(in_group, n_top, sel.data());
        float gs = 0;
        for (std::int64_t j = 0; j < n_top; ++j) gs += sel[in_group[j]];
        gscore[g] = gs;
      }
      std::iota(groups.begin(), groups.end(), 0);
      select_top(groups, p.topk_group, gscore.data());
      for (std::int64_t j = 0; j < p.topk_group; ++j)
        for (std::int64_t e = groups[j] * gsize; e < (groups[j] + 1) * gsize; ++e)
          cand.push_back(static_cast<std::int32_t>(e));
    } else {
      cand.resize(static_cast<std::size_t>(E));
      std::iota(cand.begin(), cand.end(), 0);
    }
    select_top(cand, K, sel.data());

    // Weights: unbiased scores at the chosen experts, optionally renormalized, scaled.
    float sum = 0;
    for (std::int64_t j = 0; j < K; ++j) {
      idx[t * K + j] = cand[j];
      wt[t * K + j] = s[cand[j]];
      sum += s[cand[j]];
    }
    const float norm = p.norm_topk_prob ? 1.0f / (sum + 1e-20f) : 1.0f;
    for (std::int64_t j = 0; j < K; ++j) wt[t * K + j] = wt[t * K + j] * norm * p.routed_scaling_factor;
  }
}

void moe_route_backward(const Tensor& dtopk_w, const Tensor& scores, const Tensor& topk_idx, const RoutingParams& p,
                        Tensor& dlogits) {
  CRUCIBLE_CHECK(scores.defined() && scores.rank() == 2, "moe_route_backward: scores (", scores.name(),
                 ") must be [T, E]");
  const std::int64_t T = scores.dim(0), E = scores.dim(1), K = p.top_k;
  check_f32(scores, "moe_route_backward scores", scores.shape());
  check_params(p, E, "moe_route_backward");
  check_f32(dtopk_w, "moe_route_backward dtopk_w", Shape{T, K});
  CRUCIBLE_CHECK(topk_idx.defined() && topk_idx.device().is_cpu() && topk_idx.dtype() == DType::I32 &&
                     topk_idx.shape() == (Shape{T, K}),
                 "moe_route_backward: topk_idx (", topk_idx.name(), ") must be a CPU i32 [", T, ", ", K, "] tensor");
  check_f32(dlogits, "moe_route_backward dlogits", Shape{T, E});

  const float* dw = dtopk_w.data<float>();
  const float* sc = scores.data<float>();
  const std::int32_t* idx = topk_idx.data<std::int32_t>();
  float* dl = dlogits.data<float>();
  const double rsf = p.routed_scaling_factor;
  std::vector<double> ds(static_cast<std::size_t>(E));  // dL/dscores of one row
  for (std::int64_t t = 0; t < T; ++t) {
    const float* s = sc + t * E;
    const float* g = dw + t * K;
    const std::int32_t* id = idx + t * K;
    std::fill(ds.begin(), ds.end(), 0.0);
    for (std::int64_t j = 0; j < K; ++j)
      CRUCIBLE_CHECK(id[j] >= 0 && id[j] < E, "moe_route_backward: topk_idx[", t, ", ", j, "] = ", id[j],
                     " is not an expert in [0, ", E, ")");
    if (p.norm_topk_prob) {
      // w_j = rsf u_j / S, S = Σ u + 1e-20:  du_i = rsf (g_i / S - Σ_j g_j u_j / S²)
      float sum = 0;  // the forward's denominator, in the forward's order
      for (std::int64_t j = 0; j < K; ++j) sum += s[id[j]];
      const double S = static_cast<double>(sum + 1e-20f);
      double dot = 0;
      for (std::int64_t j = 0; j < K; ++j) dot += static_cast<double>(g[j]) * s[id[j]];
      for (std::int64_t j = 0; j < K; ++j) ds[id[j]] += rsf * (g[j] / S - dot / (S * S));
    } else {
      for (std::int64_t j = 0; j < K; ++j) ds[id[j]] += rsf * g[j];
    }
    float* d = dl + t * E;
    if (p.sigmoid) {  // s' = s (1 - s)
      for (std::int64_t e = 0; e < E; ++e) d[e] = static_cast<float>(ds[e] * s[e] * (1.0 - s[e]));
    } else {  // softmax: dl_e = s_e (ds_e - Σ_m ds_m s_m)
      double dot = 0;
      for (std::int64_t e = 0; e < E; ++e) dot += ds[e] * s[e];
      for (std::int64_t e = 0; e < E; ++e) d[e] = static_cast<float>(s[e] * (ds[e] - dot));
    }
  }
}

}  // namespace crucible::ops
