// trainer/optimizer.h: AdamW over the flat parameter buffer, LR schedules, clipping.
//
// The parameter arena holds the FP32 masters; the moments are two arenas with the
// same layout in BF16 (DeepSeek-V3 §3.3.3) or FP32. One step: global gradient norm
// (Σ g^2 over the flat gradient buffer, in double), clip factor, then the AdamW
// update per tensor with its own weight decay (none for norms, biases and the
// router correction bias, which the aux-loss-free rule updates instead).
#pragma once

#include <string>

#include "core/arena.h"
#include "model/weights.h"

namespace crucible::trainer {

enum class Schedule : std::uint8_t { Constant, Linear, Cosine };

struct OptimizerConfig {
  double lr = 1e-3;
  double min_lr_ratio = 0.1;       // cosine/linear decay to lr * ratio
  std::int64_t warmup_steps = 0;
  Schedule schedule = Schedule::Cosine;
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
  double weight_decay = 0.1;
  double clip_norm = 1.0;          // 0 = no clipping
  bool bf16_moments = true;
  void validate() const;
};

// The learning rate at `step` (0-based) of `total` steps.
double lr_at(const OptimizerConfig& c, std::int64_t step, std::int64_t total);

struct StepStats {
  double grad_norm = 0;  // before clipping
  double lr = 0;
  bool clipped = false;
};

class AdamW {
 public:
  AdamW(ModelWeights& weights, const OptimizerConfig& config);

  // Applies one update from weights.grads() (already summed over micro-batches and
  // ranks and scaled as the loss wants). Does not zero the gradients.
  StepStats step(std::int64_t step_index, std::int64_t total_steps);
  Arena& m() { return m_; }
  Arena& v() { return v_; }
  std::int64_t updates() const { return updates_; }
  void set_updates(std::int64_t n) { updates_ = n; }

 private:
  ModelWeights& w_;
  OptimizerConfig c_;
  Arena m_, v_;
  std::int64_t updates_ = 0;  // AdamW bias-correction count
};

// The flat gradient buffer as FP32 elements (padding between tensors is zero), the
// one tensor a data-parallel step all-reduces.
Tensor flat_gradients(ModelWeights& weights);

// The aux-loss-free balancing rule (DeepSeek-V3 §2.1.2): after a step, each MoE
// layer's e_score_correction_bias moves by -gamma for overloaded experts and +gamma
// for underloaded ones (load vs the layer's mean load).
void update_router_bias(ModelWeights& weights, const std::vector<std::vector<std::int64_t>>& load, double gamma);

}  // namespace crucible::trainer

namespace crucible::dist {
class Communicator;
}

namespace crucible::trainer {

// Sums the step's expert loads over ranks and applies update_router_bias with the
// model's bias_update_speed (nothing for dense models or gamma = 0).
void balance_router(ModelWeights& weights, std::vector<std::vector<std::int64_t>> load, dist::Communicator& comm);

}  // namespace crucible::trainer
