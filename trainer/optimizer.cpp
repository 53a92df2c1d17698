// trainer/optimizer.cpp: AdamW with per-tensor decay, schedules, router bias rule.
#include "trainer/optimizer.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "dist/communicator.h"
#include "kernels/adamw.h"

namespace crucible::trainer {

void OptimizerConfig::validate() const {
  CRUCIBLE_USER_CHECK(lr > 0, "optimizer lr must be > 0, got ", lr);
  CRUCIBLE_USER_CHECK(min_lr_ratio >= 0 && min_lr_ratio <= 1, "optimizer min_lr_ratio must be in [0, 1]");
  CRUCIBLE_USER_CHECK(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1, "optimizer betas must be in [0, 1)");
  CRUCIBLE_USER_CHECK(eps > 0, "optimizer eps must be > 0");
  CRUCIBLE_USER_CHECK(weight_decay >= 0, "optimizer weight_decay must be >= 0");
  CRUCIBLE_USER_CHECK(clip_norm >= 0, "optimizer clip_norm must be >= 0");
  CRUCIBLE_USER_CHECK(warmup_steps >= 0, "optimizer warmup_steps must be >= 0");
}

double lr_at(const OptimizerConfig& c, std::int64_t step, std::int64_t total) {
  if (c.warmup_steps > 0 && step < c.warmup_steps)
    return c.lr * static_cast<double>(step + 1) / static_cast<double>(c.warmup_steps);
  const double span = static_cast<double>(std::max<std::int64_t>(1, total - c.warmup_steps));
  const double progress = std::clamp(static_cast<double>(step - c.warmup_steps) / span, 0.0, 1.0);
  const double floor = c.lr * c.min_lr_ratio;
  switch (c.schedule) {
    case Schedule::Constant: return c.lr;
    case Schedule::Linear: return floor + (c.lr - floor) * (1 - progress);
    case Schedule::Cosine: return floor + (c.lr - floor) * 0.5 * (1 + std::cos(3.14159265358979323846 * progress));
  }
  return c.lr;
}

namespace {
bool no_decay(const std::string& name) {
  return name.ends_with("norm.weight") || name.ends_with("layernorm.weight") || name.ends_with(".bias") ||
         name.ends_with("e_score_correction_bias");
}
}  // namespace

AdamW::AdamW(ModelWeights& weights, const OptimizerConfig& config)
    : w_(weights), c_(config) {
  c_.validate();
  CRUCIBLE_CHECK(w_.has_grads(), "AdamW needs a gradient arena");
  const Layout moments = w_.layout().with_dtype(c_.bf16_moments ? DType::BF16 : DType::F32);
  m_ = Arena(moments, w_.params().view(0).device(), "adam.m");
  v_ = Arena(moments, w_.params().view(0).device(), "adam.v");
}

StepStats AdamW::step(std::int64_t step_index, std::int64_t total_steps) {
  StepStats st;
  double sq = 0;
  for (const auto& e : w_.layout().entries()) sq += ops::sum_squares(w_.grad(e.name));
  st.grad_norm = std::sqrt(sq);
  st.lr = lr_at(c_, step_index, total_steps);
  float scale = 1.0f;
  if (c_.clip_norm > 0 && st.grad_norm > c_.clip_norm) {
    scale = static_cast<float>(c_.clip_norm / (st.grad_norm + 1e-6));
    st.clipped = true;
  }
  ++updates_;
  for (const auto& e : w_.layout().entries()) {
    if (e.name.ends_with("e_score_correction_bias")) continue;  // not a gradient-trained tensor
    Tensor p = w_.param(e.name), m = m_.view(e.name), v = v_.view(e.name);
    ops::AdamWStep s;
    s.lr = static_cast<float>(st.lr);
    s.beta1 = static_cast<float>(c_.beta1);
    s.beta2 = static_cast<float>(c_.beta2);
    s.eps = static_cast<float>(c_.eps);
    s.weight_decay = no_decay(e.name) ? 0.0f : static_cast<float>(c_.weight_decay);
    s.grad_scale = scale;
    s.step = updates_;
    ops::adamw_update(p, w_.grad(e.name), m, v, s);
  }
  return st;
}

Tensor flat_gradients(ModelWeights& weights) {
  Arena& g = weights.grads();
  return g.flat().view_as(DType::F32, Shape{static_cast<std::int64_t>(g.bytes() / sizeof(float))});
}

void update_router_bias(ModelWeights& weights, const std::vector<std::vector<std::int64_t>>& load, double gamma) {
  if (gamma == 0) return;
  const ModelConfig& c = weights.config();
  std::size_t k = 0;
  for (std::int64_t l = 0; l < c.num_hidden_layers; ++l) {
    if (!c.is_moe_layer(l)) continue;
    CRUCIBLE_CHECK(k < load.size(), "expert load missing for layer ", l);
    const std::string name = "model.layers." + std::to_string(l) + ".mlp.gate.e_score_correction_bias";
    if (!weights.has(name)) {
      ++k;
      continue;
    }
    Tensor param = weights.param(name);
    Tensor b = param.device().is_cpu() ? param : param.to(Device::cpu());  // E floats, updated on the host
    const auto& counts = load[k++];
    double mean = 0;
    for (auto n : counts) mean += static_cast<double>(n);
    mean /= static_cast<double>(counts.size());
    for (std::size_t e = 0; e < counts.size(); ++e) {
      const double n = static_cast<double>(counts[e]);
      b.data<float>()[e] += static_cast<float>(n > mean ? -gamma : n < mean ? gamma : 0.0);
    }
    if (!param.device().is_cpu()) param.copy_from(b);
  }
}

void balance_router(ModelWeights& weights, std::vector<std::vector<std::int64_t>> load, dist::Communicator& comm) {
  const ModelConfig& c = weights.config();
  if (c.bias_update_speed == 0 || c.n_routed_experts == 0) return;
  // Every rank reduces the same shape, also a rank that saw no tokens this step.
  std::vector<std::vector<std::int64_t>> total;
  for (std::int64_t l = 0; l < c.num_hidden_layers; ++l)
    if (c.is_moe_layer(l)) total.emplace_back(static_cast<std::size_t>(c.n_routed_experts), 0);
  for (std::size_t l = 0; l < load.size() && l < total.size(); ++l)
    for (std::size_t e = 0; e < load[l].size() && e < total[l].size(); ++e) total[l][e] += load[l][e];
  for (auto& layer : total) comm.all_reduce_i64(std::span<std::int64_t>(layer), dist::ReduceOp::Sum);
  update_router_bias(weights, total, c.bias_update_speed);
}

}  // namespace crucible::trainer
