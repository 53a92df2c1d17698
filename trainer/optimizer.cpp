// trainer/optimizer.cpp: AdamW with per-tensor decay (replicated or ZeRO-1 sharded
// state), schedules, router bias rule.
#include "trainer/optimizer.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "dist/communicator.h"
#include "kernels/adamw.h"
#include "kernels/linear.h"
#include "trainer/grad_overlap.h"
#include "trainer/zero.h"

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

void DataParallel::validate() const {
  CRUCIBLE_USER_CHECK(zero_stage == 0 || zero_stage == 1, "run.zero must be 0 (off) or 1 (ZeRO-1 optimizer-state "
                      "sharding), got ", zero_stage);
}

AdamW::AdamW(ModelWeights& weights, const OptimizerConfig& config, DataParallel dp)
    : w_(weights), c_(config), dp_(dp) {
  c_.validate();
  dp_.validate();
  CRUCIBLE_CHECK(w_.has_grads(), "AdamW needs a gradient arena");
  const DType mdt = c_.bf16_moments ? DType::BF16 : DType::F32;
  const Device dev = w_.params().view(0).device();
  if (dp_.comm && dp_.zero_stage == 1 && dp_.comm->world() > 1) {
    zero_ = std::make_unique<ZeroShard>(w_, *dp_.comm);
    Layout shard;
    shard.add("shard", Shape{zero_->shard_elems()}, mdt);
    m_ = Arena(shard, dev, "adam.m");
    v_ = Arena(shard, dev, "adam.v");
  } else {
    if (dp_.comm && dp_.comm->world() > 1 && dp_.overlap_reduce) overlap_ = std::make_unique<GradOverlap>(w_, *dp_.comm);
    const Layout moments = w_.layout().with_dtype(mdt);
    m_ = Arena(moments, dev, "adam.m");
    v_ = Arena(moments, dev, "adam.v");
  }
  m_.zero();
  v_.zero();
}

AdamW::~AdamW() = default;
AdamW::AdamW(AdamW&&) noexcept = default;

std::function<void(std::int64_t)> AdamW::last_backward_hook() {
  return overlap_ ? overlap_->hook() : std::function<void(std::int64_t)>();
}

std::int64_t AdamW::overlap_buckets() const { return overlap_ ? overlap_->buckets() : 0; }

const dist::FlatShards* AdamW::shards() const { return zero_ ? &zero_->shards() : nullptr; }

std::size_t AdamW::full_state_bytes() const {
  return 2 * w_.layout().with_dtype(c_.bf16_moments ? DType::BF16 : DType::F32).total_bytes();
}

StepStats AdamW::step(std::int64_t step_index, std::int64_t total_steps) {
  CRUCIBLE_CHECK(!ops::weight_cache_active(),
                 "AdamW::step inside an ops::WeightCacheScope: the GEMMs would keep using the old weights' "
                 "cached copies (close the scope before the update)");
  // 1. Sum the ranks' gradients (into this rank's block under ZeRO-1).
  if (zero_) {
    zero_->reduce_scatter_grads();
  } else if (overlap_) {
    overlap_->finish();  // what the last backward's hook has not summed yet
  } else if (dp_.comm && dp_.comm->world() > 1) {
    Tensor grads = flat_gradients(w_);
    dp_.comm->all_reduce(grads, dist::ReduceOp::Sum, Stream::default_for(grads.device()));
  }
  // 2. The global norm: Σ g^2 per entry, summed in layout order on every rank.
  const auto& entries = w_.layout().entries();
  std::vector<double> entry_sq;
  if (zero_) {
    entry_sq = zero_->entry_sum_squares();
  } else {
    for (const auto& e : entries) entry_sq.push_back(ops::sum_squares(w_.grad(e.name)));
  }
  StepStats st;
  double sq = 0;
  for (const double x : entry_sq) sq += x;
  st.grad_norm = std::sqrt(sq);
  st.lr = lr_at(c_, step_index, total_steps);
  float scale = 1.0f;
  if (c_.clip_norm > 0 && st.grad_norm > c_.clip_norm) {
    scale = static_cast<float>(c_.clip_norm / (st.grad_norm + 1e-6));
    st.clipped = true;
  }
  ++updates_;
  auto settings = [&](const std::string& name) {
    ops::AdamWStep s;
    s.lr = static_cast<float>(st.lr);
    s.beta1 = static_cast<float>(c_.beta1);
    s.beta2 = static_cast<float>(c_.beta2);
    s.eps = static_cast<float>(c_.eps);
    s.weight_decay = no_decay(name) ? 0.0f : static_cast<float>(c_.weight_decay);
    s.grad_scale = scale;
    s.step = updates_;
    return s;
  };
  // 3. The update: elementwise, so a piece of a tensor updates exactly as the whole.
  if (!zero_) {
    for (const auto& e : entries) {
      if (e.name.ends_with("e_score_correction_bias")) continue;  // not a gradient-trained tensor
      Tensor p = w_.param(e.name), m = m_.view(e.name), v = v_.view(e.name);
      ops::adamw_update(p, w_.grad(e.name), m, v, settings(e.name));
    }
    return st;
  }
  const Tensor params = zero_->flat_params(), grads = zero_->flat_grads();
  const Tensor m_all = m_.view(0), v_all = v_.view(0);
  for (const ZeroShard::Piece& piece : zero_->pieces()) {
    const std::string& name = entries[piece.entry].name;
    if (name.ends_with("e_score_correction_bias")) continue;
    Tensor p = params.slice(piece.flat_begin, piece.flat_begin + piece.n);
    Tensor m = m_all.slice(piece.shard_offset, piece.shard_offset + piece.n);
    Tensor v = v_all.slice(piece.shard_offset, piece.shard_offset + piece.n);
    ops::adamw_update(p, grads.slice(piece.flat_begin, piece.flat_begin + piece.n), m, v, settings(name));
  }
  // 4. Every rank's updated block to every rank (the router bias, which no rank
  // updates here, is the same on all ranks and stays so).
  zero_->all_gather_params();
  return st;
}

std::pair<Arena, Arena> AdamW::full_moments(int root) {
  if (!zero_) return {m_, v_};
  const Layout layout = w_.layout().with_dtype(m_.view(0).dtype());
  Arena m = zero_->gather_to_root(m_.view(0), layout, root, "adam.m");
  Arena v = zero_->gather_to_root(v_.view(0), layout, root, "adam.v");
  return {std::move(m), std::move(v)};
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
    Tensor b = on_host(param);  // E floats, updated on the host
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
