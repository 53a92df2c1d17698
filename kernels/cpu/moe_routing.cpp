// kernels/cpu/moe_routing.cpp: CPU reference of DeepSeekMoE routing (V3 noaux_tc with
// sigmoid scores, V2 softmax greedy / group_limited_greedy), forward and backward, and of
// the expert counts, the permutation plan and the weighted combine.
//
// Invariant: selection is a pure function of the biased scores s + b with every tie
// broken towards the lower index (groups and experts), so it is deterministic and the
// same on every backend; the weights depend on the unbiased scores only. The backward
// holds the selection fixed (piecewise constant) and differentiates weights -> scores
// -> logits. topk_idx lists the chosen experts best first (by biased score).
// Shapes, dtypes and parameters are checked by kernels/moe_routing.cpp.
// Reference: reference/deepseek_v3_fp8.md §3.1-3.2 (HF MoEGate, DeepSeek-V3 inference Gate).
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "core/error.h"
#include "kernels/cpu/moe_routing_cpu.h"

namespace crucible::cpu {

using ops::RoutingParams;

namespace {

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
  const std::int64_t T = logits.dim(0), E = logits.dim(1), K = p.top_k;
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
  const std::int64_t T = scores.dim(0), E = scores.dim(1), K = p.top_k;
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

namespace {

// Checks every expert index of topk_idx [T, k] against [0, E).
void check_experts(const Tensor& topk_idx, std::int64_t E, const char* op) {
  const std::int32_t* idx = topk_idx.data<std::int32_t>();
  const std::int64_t k = topk_idx.dim(1);
  for (std::int64_t i = 0; i < topk_idx.numel(); ++i)
    CRUCIBLE_CHECK(idx[i] >= 0 && idx[i] < E, op, ": topk_idx[", i / k, ", ", i % k, "] = ", idx[i],
                   " is not an expert in [0, ", E, ")");
}

}  // namespace

void moe_expert_counts(const Tensor& topk_idx, Tensor& counts) {
  const std::int64_t E = counts.numel();
  check_experts(topk_idx, E, "moe_expert_counts");
  const std::int32_t* idx = topk_idx.data<std::int32_t>();
  std::int32_t* c = counts.data<std::int32_t>();
  std::fill(c, c + E, 0);
  for (std::int64_t i = 0; i < topk_idx.numel(); ++i) ++c[idx[i]];
}

void moe_permute_plan(const Tensor& topk_idx, Tensor& offsets, Tensor& rows, Tensor& position) {
  const std::int64_t E = offsets.numel() - 1, k = topk_idx.dim(1), N = topk_idx.numel();
  check_experts(topk_idx, E, "moe_permute_plan");
  const std::int32_t* idx = topk_idx.data<std::int32_t>();
  std::int32_t* off = offsets.data<std::int32_t>();
  std::int32_t* rw = rows.data<std::int32_t>();
  std::int32_t* pos = position.data<std::int32_t>();
  // Counting sort over the flat (token, slot) index: stable, so ascending token within
  // an expert (and slot order for an expert a token chose twice).
  std::fill(off, off + E + 1, 0);
  for (std::int64_t i = 0; i < N; ++i) ++off[idx[i] + 1];
  for (std::int64_t e = 0; e < E; ++e) off[e + 1] += off[e];
  std::vector<std::int32_t> cursor(off, off + E);
  for (std::int64_t i = 0; i < N; ++i) {
    const std::int32_t r = cursor[idx[i]]++;
    rw[r] = static_cast<std::int32_t>(i / k);
    pos[i] = r;
  }
}

void moe_unpermute_combine(const Tensor& expert_out, const Tensor& position, const Tensor& topk_w, Tensor& y) {
  const std::int64_t T = y.dim(0), H = y.dim(1), k = position.dim(1), N = expert_out.dim(0);
  const float* out = expert_out.data<float>();
  const std::int32_t* pos = position.data<std::int32_t>();
  const float* w = topk_w.data<float>();
  float* yp = y.data<float>();
  std::vector<std::int32_t> order(static_cast<std::size_t>(k));
  for (std::int64_t t = 0; t < T; ++t) {
    const std::int32_t* pt = pos + t * k;
    for (std::int64_t j = 0; j < k; ++j)
      CRUCIBLE_CHECK(pt[j] >= 0 && pt[j] < N, "moe_unpermute_combine: position[", t, ", ", j, "] = ", pt[j],
                     " is not a permuted row in [0, ", N, ")");
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](std::int32_t a, std::int32_t b) {
      return pt[a] < pt[b] || (pt[a] == pt[b] && a < b);
    });
    float* yr = yp + t * H;
    for (const std::int32_t j : order) {
      const float a = w[t * k + j];
      const float* o = out + static_cast<std::int64_t>(pt[j]) * H;
      for (std::int64_t h = 0; h < H; ++h) yr[h] += a * o[h];
    }
  }
}

void moe_unpermute_combine_backward(const Tensor& dy, const Tensor& expert_out, const Tensor& position,
                                    const Tensor& topk_w, Tensor& dexpert_out, Tensor& dtopk_w) {
  const std::int64_t T = dy.dim(0), H = dy.dim(1), k = position.dim(1), N = expert_out.dim(0);
  const float* g = dy.data<float>();
  const float* out = expert_out.data<float>();
  const std::int32_t* pos = position.data<std::int32_t>();
  const float* w = topk_w.data<float>();
  float* dout = dexpert_out.data<float>();
  float* dw = dtopk_w.data<float>();
  for (std::int64_t t = 0; t < T; ++t)
    for (std::int64_t j = 0; j < k; ++j) {
      const std::int32_t r = pos[t * k + j];
      CRUCIBLE_CHECK(r >= 0 && r < N, "moe_unpermute_combine_backward: position[", t, ", ", j, "] = ", r,
                     " is not a permuted row in [0, ", N, ")");
      const float* gr = g + t * H;
      const float* o = out + static_cast<std::int64_t>(r) * H;
      float* d = dout + static_cast<std::int64_t>(r) * H;
      const float a = w[t * k + j];
      double dot = 0;
      for (std::int64_t h = 0; h < H; ++h) {
        dot += static_cast<double>(gr[h]) * o[h];
        d[h] = a * gr[h];
      }
      dw[t * k + j] = static_cast<float>(dot);
    }
}

}  // namespace crucible::cpu
