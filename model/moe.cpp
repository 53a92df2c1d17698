// model/moe.cpp: DeepSeekMoE forward/backward: route, permute the (token, slot) pairs
// by expert, run each expert on its band of rows, weighted combine; and the mirror
// image. Runs on the device of its input; only the expert offsets (and, with a
// balance loss, the scores) are read on the host.
#include "model/moe.h"

#include <optional>

#include "core/profile.h"
#include "kernels/elementwise.h"
#include "kernels/grouped_linear.h"
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

namespace {

// The routed experts' weights and gradients, projection by projection, for the grouped ops.
struct ExpertWeights {
  std::vector<Tensor> gate, up, down, gate_g, up_g, down_g;
};

ExpertWeights expert_weights(const MoeParams& p) {
  ExpertWeights e;
  for (const MlpParams& m : p.experts) {
    e.gate.push_back(m.gate.w);
    e.up.push_back(m.up.w);
    e.down.push_back(m.down.w);
    e.gate_g.push_back(m.gate.g);
    e.up_g.push_back(m.up.g);
    e.down_g.push_back(m.down.g);
  }
  return e;
}

}  // namespace

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
// Returns L; when dscores is defined, adds weight * dL/ds into it.
double balance_loss(const ModelConfig& c, const Tensor& scores, const Tensor& topk_idx,
                    const Tensor& cu_seqlens, Tensor* dscores, double weight = 1) {
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
        const double g = weight * alpha / n_seq / T;
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
  const Device dev = x.device();
  s.x = x;
  std::optional<profile::Scope> part;
  part.emplace("moe.fwd.router");
  Tensor logits = activation(dev, T, E, "moe.logits");
  ops::linear_forward(x, p.gate.w, Tensor(), logits, ops::GemmPrecision::Fp32);  // router in FP32
  s.scores = activation(dev, T, E, "moe.scores");
  s.topk_idx = Tensor::empty(Shape{T, k}, DType::I32, dev, "moe.topk_idx");
  s.topk_w = activation(dev, T, k, "moe.topk_w");
  ops::moe_route_forward(logits, p.bias.w, routing_params(c), s.scores, s.topk_idx, s.topk_w);

  // Permutation: the (token, slot) pairs expert by expert, in token order
  // (deterministic). Only the E + 1 offsets come to the host: they size the experts.
  part.reset();
  part.emplace("moe.fwd.plan");
  Tensor offsets = Tensor::empty(Shape{E + 1}, DType::I32, dev, "moe.offsets");
  s.rows = Tensor::empty(Shape{T * k}, DType::I32, dev, "moe.rows");
  s.position = Tensor::empty(Shape{T, k}, DType::I32, dev, "moe.position");
  ops::moe_permute_plan(s.topk_idx, offsets, s.rows, s.position);
  const Tensor off = on_host(offsets);
  s.offsets.assign(off.data<std::int32_t>(), off.data<std::int32_t>() + E + 1);
  s.load.assign(E, 0);
  for (std::int64_t e = 0; e < E; ++e) s.load[e] = s.offsets[e + 1] - s.offsets[e];

  part.reset();
  part.emplace("moe.fwd.shared");
  if (c.n_shared_experts > 0) mlp_forward(p.shared, x, prec, y, s.shared);
  else ops::fill(y, 0.0f);
  part.reset();
  part.emplace("moe.fwd.experts");

  // The routed experts: each a SwiGLU MLP on its contiguous band of the permuted rows,
  // as one grouped GEMM per projection over all experts (kernels/grouped_linear.h;
  // exactly the per-expert linear ops).
  const std::int64_t N = T * k, I = c.moe_intermediate_size;
  const ExpertWeights ew = expert_weights(p);
  s.x_perm = activation(dev, N, H, "moe.x_perm");
  ops::gather_rows(x, s.rows, s.x_perm);
  s.gate = activation(dev, N, I, "moe.gate");
  s.up = activation(dev, N, I, "moe.up");
  s.act = activation(dev, N, I, "moe.act");
  s.expert_out = activation(dev, N, H, "moe.expert_out");
  ops::grouped_linear_pair_forward(s.x_perm, ew.gate, ew.up, s.offsets, s.gate, s.up, prec);
  ops::swiglu_forward(s.gate, s.up, s.act);
  ops::grouped_linear_forward(s.act, ew.down, s.offsets, s.expert_out, prec);
  part.reset();
  part.emplace("moe.fwd.combine");
  ops::moe_unpermute_combine(s.expert_out, s.position, s.topk_w, y);
  part.reset();
  s.balance_loss = c.aux_loss_alpha > 0 && cu_seqlens.defined()
                      ? balance_loss(c, on_host(s.scores), on_host(s.topk_idx), on_host(cu_seqlens), nullptr)
                      : 0.0;
}

void moe_backward(const ModelConfig& c, MoeParams& p, const Tensor& dy, const Tensor& cu_seqlens,
                  const MoeSaved& s, Tensor& dx, double aux_weight) {
  const std::int64_t T = dy.dim(0), H = c.hidden_size, E = c.n_routed_experts, k = c.num_experts_per_tok;
  const auto prec = linear_precision(c);
  const Device dev = dy.device();
  std::optional<profile::Scope> part;
  part.emplace("moe.bwd.shared");
  if (c.n_shared_experts > 0) mlp_backward(p.shared, dy, s.shared, prec, dx);
  else ops::fill(dx, 0.0f);
  part.reset();
  part.emplace("moe.bwd.experts");

  // Combine: d(expert_out) = w * dy_t, dw = <dy_t, expert_out row>.
  Tensor dexpert_out = activation(dev, T * k, H, "moe.expert_dout");
  Tensor dtopk_w = activation(dev, T, k, "moe.dtopk_w");
  ops::moe_unpermute_combine_backward(dy, s.expert_out, s.position, s.topk_w, dexpert_out, dtopk_w);
  const std::int64_t N = T * k, I = c.moe_intermediate_size;
  ExpertWeights ew = expert_weights(p);
  Tensor dact = activation(dev, N, I, "moe.dact");
  ops::grouped_linear_backward(dexpert_out, s.act, ew.down, s.offsets, dact, ew.down_g, prec);
  Tensor dgate = activation(dev, N, I, "moe.dgate"), dup = activation(dev, N, I, "moe.dup");
  ops::swiglu_backward(dact, s.gate, s.up, dgate, dup);
  Tensor dx_perm = activation(dev, N, H, "moe.expert_dx");
  ops::grouped_linear_pair_backward(dgate, dup, s.x_perm, ew.gate, ew.up, s.offsets, dx_perm, ew.gate_g, ew.up_g,
                                    prec);
  ops::scatter_add_rows(dx_perm, s.rows, Tensor(), dx);  // ascending permuted row = ascending expert

  part.reset();
  part.emplace("moe.bwd.router");
  Tensor dlogits = activation(dev, T, E, "moe.dlogits");
  ops::moe_route_backward(dtopk_w, s.scores, s.topk_idx, routing_params(c), dlogits);
  if (c.aux_loss_alpha > 0) {
    // The balance loss reaches the logits through the scores: ds -> dlogits. It reads
    // T x E scores: computed on the host.
    const Tensor scores = on_host(s.scores);
    Tensor dscores(Shape{T, E}, DType::F32, Device::cpu(), "moe.dscores_aux");
    balance_loss(c, scores, on_host(s.topk_idx), on_host(cu_seqlens), &dscores, aux_weight);
    Tensor daux(Shape{T, E}, DType::F32, Device::cpu(), "moe.dlogits_aux");
    const float* sc = scores.data<float>();
    const float* ds = dscores.data<float>();
    float* dl = daux.data<float>();
    if (c.scoring_func == ScoringFunc::Sigmoid) {
      for (std::int64_t i = 0; i < T * E; ++i) dl[i] = ds[i] * sc[i] * (1 - sc[i]);
    } else {
      for (std::int64_t t = 0; t < T; ++t) {
        double dot = 0;
        for (std::int64_t e = 0; e < E; ++e) dot += static_cast<double>(ds[t * E + e]) * sc[t * E + e];
        for (std::int64_t e = 0; e < E; ++e)
          dl[t * E + e] = static_cast<float>(sc[t * E + e] * (ds[t * E + e] - dot));
      }
    }
    ops::axpy(1.0f, on_device(daux, dev), dlogits);
  }
  Tensor dx_router = activation(dev, T, H, "moe.dx_router");
  Tensor none;
  ops::linear_backward(dlogits, s.x, p.gate.w, dx_router, p.gate.g, none, ops::GemmPrecision::Fp32);
  ops::axpy(1.0f, dx_router, dx);
}

}  // namespace crucible
