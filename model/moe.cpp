// model/moe.cpp: DeepSeekMoE forward/backward: route, permute by expert, run each
// expert on its tokens, weighted combine; and the mirror image.
#include "model/moe.h"

#include "kernels/moe_routing.h"
#include "kernels/tensor_ops.h"

namespace crucible {

MoeParams moe_params(const ModelWeights& w, std::int64_t layer) {
  const ModelConfig& c = w.config();
  const std::string m = "model.layers." + std::to_string(layer) + ".mlp.";
  MoeParams p;
  p.gate = param(w, m + "gate.weight");
  if (c.topk_method == TopkMethod::NoauxTc) p.bias = param(w, m + "gate.e_score_correction_bias");
  for (std::int64_t e = 0; e < c.n_routed_experts; ++e)
    p.experts.push_back(mlp_params(w, m + "experts." + std::to_string(e) + "."));
  if (c.n_shared_experts > 0) p.shared = mlp_params(w, m + "shared_experts.");
  return p;
}

namespace {

ops::RoutingParams routing_params(const ModelConfig& c) {
  ops::RoutingParams r;
  r.top_k = c.num_experts_per_tok;
  r.n_group = c.n_group;
  r.topk_group = c.topk_group;
  r.sigmoid = c.scoring_func == ScoringFunc::Sigmoid;
  r.group_limited = c.topk_method != TopkMethod::Greedy;
  r.norm_topk_prob = c.norm_topk_prob;
  r.routed_scaling_factor = static_cast<float>(c.routed_scaling_factor);
  return r;
}

// Sequence-wise balance loss (V3 eqs. 17-20) and its gradient w.r.t. the scores:
//   L = alpha / n_seq * Σ_seq Σ_i f_i P_i,  f_i = E / (k T) Σ_t 1[i chosen at t],
//   P_i = 1/T Σ_t s_it / Σ_j s_jt.
// Returns L; when dscores is defined, adds dL/ds into it.
double balance_loss(const ModelConfig& c, const Tensor& scores, const Tensor& topk_idx,
                    const Tensor& cu_seqlens, Tensor* dscores) {
  const double alpha = c.aux_loss_alpha;
  if (alpha == 0) return 0;
  const std::int64_t E = scores.dim(1), k = topk_idx.dim(1);
  const std::int64_t n_seq = cu_seqlens.numel() - 1;
  const float* s = scores.data<float>();
  const std::int32_t* idx = topk_idx.data<std::int32_t>();
  const std::int32_t* cu = cu_seqlens.data<std::int32_t>();
  double loss = 0;
  std::vector<double> f(E);
  for (std::int64_t b = 0; b < n_seq; ++b) {
    const std::int64_t t0 = cu[b], t1 = cu[b + 1], T = t1 - t0;
    if (T == 0) continue;
    std::fill(f.begin(), f.end(), 0.0);
    for (std::int64_t t = t0; t < t1; ++t)
      for (std::int64_t j = 0; j < k; ++j) f[idx[t * k + j]] += static_cast<double>(E) / (k * T);
    for (std::int64_t t = t0; t < t1; ++t) {
      double sum = 0;
      for (std::int64_t e = 0; e < E; ++e) sum += s[t * E + e];
      double dot = 0;  // Σ_i f_i s_it / sum
      for (std::int64_t e = 0; e < E; ++e) dot += f[e] * s[t * E + e] / sum;
      loss += alpha / n_seq * dot / T;
      if (dscores) {
        // d(s_i / sum)/ds_m = (δ_im - s_i / sum) / sum
        float* ds = dscores->data<float>() + t * E;
        const double g = alpha / n_seq / T;
        for (std::int64_t m = 0; m < E; ++m) ds[m] += static_cast<float>(g * (f[m] - dot) / sum);
      }
    }
  }
  return loss;
}

}  // namespace

void moe_forward(const ModelConfig& c, const MoeParams& p, const Tensor& x, const Tensor& cu_seqlens,
                 Tensor& y, MoeSaved& s) {
  const std::int64_t T = x.dim(0), H = c.hidden_size, E = c.n_routed_experts, k = c.num_experts_per_tok;
  const auto prec = linear_precision(c);
  s.x = x;
  Tensor logits = activation(T, E, "moe.logits");
  ops::linear_forward(x, p.gate.w, Tensor(), logits, ops::GemmPrecision::Fp32);  // router in FP32
  s.scores = activation(T, E, "moe.scores");
  s.topk_idx = Tensor(Shape{T, k}, DType::I32, Device::cpu(), "moe.topk_idx");
  s.topk_w = activation(T, k, "moe.topk_w");
  ops::moe_route_forward(logits, p.bias.w, routing_params(c), s.scores, s.topk_idx, s.topk_w);

  // Permutation: token rows per expert, in token order (deterministic).
  std::vector<std::vector<std::int32_t>> rows(E), slots(E);
  const std::int32_t* idx = s.topk_idx.data<std::int32_t>();
  for (std::int64_t t = 0; t < T; ++t)
    for (std::int64_t j = 0; j < k; ++j) {
      rows[idx[t * k + j]].push_back(static_cast<std::int32_t>(t));
      slots[idx[t * k + j]].push_back(static_cast<std::int32_t>(j));
    }

  if (c.n_shared_experts > 0) mlp_forward(p.shared, x, prec, y, s.shared);
  else ops::fill(y, 0.0f);

  s.rows.assign(E, Tensor());
  s.slots.assign(E, Tensor());
  s.expert.assign(E, MlpSaved());
  s.expert_out.assign(E, Tensor());
  s.load.assign(E, 0);
  const float* w = s.topk_w.data<float>();
  for (std::int64_t e = 0; e < E; ++e) {
    const std::int64_t n = static_cast<std::int64_t>(rows[e].size());
    s.load[e] = n;
    if (n == 0) continue;
    s.rows[e] = Tensor(Shape{n}, DType::I32, Device::cpu(), "moe.rows");
    s.slots[e] = Tensor(Shape{n}, DType::I32, Device::cpu(), "moe.slots");
    std::copy(rows[e].begin(), rows[e].end(), s.rows[e].data<std::int32_t>());
    std::copy(slots[e].begin(), slots[e].end(), s.slots[e].data<std::int32_t>());
    Tensor xe = activation(n, H, "moe.expert_in");
    ops::gather_rows(x, s.rows[e], xe);
    s.expert_out[e] = activation(n, H, "moe.expert_out");
    mlp_forward(p.experts[e], xe, prec, s.expert_out[e], s.expert[e]);
    Tensor scale(Shape{n}, DType::F32);
    for (std::int64_t i = 0; i < n; ++i) scale.data<float>()[i] = w[rows[e][i] * k + slots[e][i]];
    ops::scatter_add_rows(s.expert_out[e], s.rows[e], scale, y);
  }
  s.balance_loss = balance_loss(c, s.scores, s.topk_idx, cu_seqlens, nullptr);
}

void moe_backward(const ModelConfig& c, MoeParams& p, const Tensor& dy, const Tensor& cu_seqlens,
                  const MoeSaved& s, Tensor& dx) {
  const std::int64_t T = dy.dim(0), H = c.hidden_size, E = c.n_routed_experts, k = c.num_experts_per_tok;
  const auto prec = linear_precision(c);
  if (c.n_shared_experts > 0) mlp_backward(p.shared, dy, s.shared, prec, dx);
  else ops::fill(dx, 0.0f);

  Tensor dtopk_w = activation(T, k, "moe.dtopk_w");
  const float* w = s.topk_w.data<float>();
  for (std::int64_t e = 0; e < E; ++e) {
    const std::int64_t n = s.load[e];
    if (n == 0) continue;
    const std::int32_t* rows = s.rows[e].data<std::int32_t>();
    const std::int32_t* slots = s.slots[e].data<std::int32_t>();
    Tensor dye = activation(n, H, "moe.expert_dout");
    ops::gather_rows(dy, s.rows[e], dye);
    // dw = <dy_t, expert_out_row>; d(expert_out) = w * dy_t.
    const float* out = s.expert_out[e].data<float>();
    float* d = dye.data<float>();
    for (std::int64_t i = 0; i < n; ++i) {
      double dot = 0;
      for (std::int64_t h = 0; h < H; ++h) dot += static_cast<double>(d[i * H + h]) * out[i * H + h];
      dtopk_w.data<float>()[rows[i] * k + slots[i]] = static_cast<float>(dot);
      const float wi = w[rows[i] * k + slots[i]];
      for (std::int64_t h = 0; h < H; ++h) d[i * H + h] *= wi;
    }
    Tensor dxe = activation(n, H, "moe.expert_dx");
    mlp_backward(p.experts[e], dye, s.expert[e], prec, dxe);
    ops::scatter_add_rows(dxe, s.rows[e], Tensor(), dx);
  }

  Tensor dlogits = activation(T, E, "moe.dlogits");
  ops::moe_route_backward(dtopk_w, s.scores, s.topk_idx, routing_params(c), dlogits);
  if (c.aux_loss_alpha > 0) {
    // The balance loss reaches the logits through the scores: ds -> dlogits.
    Tensor dscores = activation(T, E, "moe.dscores_aux");
    balance_loss(c, s.scores, s.topk_idx, cu_seqlens, &dscores);
    const float* sc = s.scores.data<float>();
    const float* ds = dscores.data<float>();
    float* dl = dlogits.data<float>();
    if (c.scoring_func == ScoringFunc::Sigmoid) {
      for (std::int64_t i = 0; i < T * E; ++i) dl[i] += ds[i] * sc[i] * (1 - sc[i]);
    } else {
      for (std::int64_t t = 0; t < T; ++t) {
        double dot = 0;
        for (std::int64_t e = 0; e < E; ++e) dot += static_cast<double>(ds[t * E + e]) * sc[t * E + e];
        for (std::int64_t e = 0; e < E; ++e)
          dl[t * E + e] += static_cast<float>(sc[t * E + e] * (ds[t * E + e] - dot));
      }
    }
  }
  Tensor dx_router = activation(T, H, "moe.dx_router");
  Tensor none;
  ops::linear_backward(dlogits, s.x, p.gate.w, dx_router, p.gate.g, none, ops::GemmPrecision::Fp32);
  ops::axpy(1.0f, dx_router, dx);
}

}  // namespace crucible
