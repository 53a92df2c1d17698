// trainer/optimizer.h: AdamW over the flat parameter buffer, LR schedules, clipping.
//
// The parameter arena holds the FP32 masters; the moments are two arenas with the
// same layout in BF16 (DeepSeek-V3 §3.3.3) or FP32. One step: global gradient norm
// (Σ g^2 over the flat gradient buffer, in double), clip factor, then the AdamW
// update per tensor with its own weight decay (none for norms, biases and the
// router correction bias, which the aux-loss-free rule updates instead).
//
// Data parallel (DESIGN.md §6): given a Communicator, step() first sums the ranks'
// gradients. Unsharded, that is an all_reduce of the flat gradient buffer and every
// rank holds all moments and updates every parameter. With ZeRO-1 (trainer/zero.h)
// it is a reduce_scatter: each rank holds m and v for its block of the flat buffer
// only (about 1/world of the moment memory), clips with the global norm (per-entry
// Σ g^2 all-reduced), updates its block of the FP32 masters and all_gathers the
// parameters. Both give every rank the same weights.
//
// Determinism (ReductionMode::Deterministic): every reduced gradient element, and so
// every AdamW update, has the same bits sharded or not (both fold ranks in rank
// order; the update is elementwise). The one difference is the global norm: Σ g^2 of
// a tensor that straddles two ranks' blocks (at most world - 1 of them) is summed in
// two parts, so grad_norm may differ in its last bits. Without clipping (clip_norm 0
// or a norm below it) ZeRO-1 and the unsharded optimizer give bit-identical weights
// and moments; with clipping they do too unless the float clip factor rounds the
// other way (a relative 1e-16 change of the norm; tests/trainer/test_zero.cpp).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "core/arena.h"
#include "model/weights.h"

namespace crucible::dist {
class Communicator;
class FlatShards;
}  // namespace crucible::dist

namespace crucible::trainer {

class GradOverlap;
class ZeroShard;

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

// How the optimizer step is spread over the ranks of a job.
struct DataParallel {
  dist::Communicator* comm = nullptr;  // null: one process, gradients used as they are
  int zero_stage = 0;                  // 0: replicated state; 1: ZeRO-1 (when world > 1)
  // Unsharded, with world > 1: sum each layer's gradients during the update's last
  // backward (trainer/grad_overlap.h) instead of the whole buffer in step().
  bool overlap_reduce = true;
  void validate() const;
};

class AdamW {
 public:
  // With dp.zero_stage = 1 and a world > 1 the weights' flat buffers are padded to
  // the ZeRO-1 blocks (ModelWeights::reserve_flat: views taken before are stale).
  AdamW(ModelWeights& weights, const OptimizerConfig& config, DataParallel dp = {});
  ~AdamW();
  AdamW(AdamW&&) noexcept;

  // Applies one update from weights.grads() (summed over micro-batches and scaled as
  // the loss wants). With a communicator it first sums the gradients over the ranks
  // (collective: every rank calls step); without one they must already be summed.
  // Does not zero the gradients; under ZeRO-1 only this rank's block of them is the
  // reduced gradient afterwards.
  StepStats step(std::int64_t step_index, std::int64_t total_steps);
  // For ForwardState::layer_grads_done of the update's last backward on this rank:
  // starts the ranks' gradient sum of each layer as backward finishes it, so step()
  // has only the rest to sum. Empty when the gradients are summed in step() alone
  // (one rank, ZeRO-1, or dp.overlap_reduce off). Optional: step() is correct either way.
  std::function<void(std::int64_t)> last_backward_hook();
  // The layers whose gradients last_backward_hook sums during backward (0: none).
  std::int64_t overlap_buckets() const;

  bool sharded() const { return zero_ != nullptr; }
  // ZeRO-1 blocks (null when unsharded).
  const dist::FlatShards* shards() const;
  // This rank's moments: the parameter layout in the moments' dtype, or under ZeRO-1
  // one entry "shard" of [shard_elems] (flat parameter elements of this rank's block).
  Arena& m() { return m_; }
  Arena& v() { return v_; }
  // Bytes of optimizer state this rank holds (m + v), and what one rank would hold
  // unsharded.
  std::size_t state_bytes() const { return m_.bytes() + v_.bytes(); }
  std::size_t full_state_bytes() const;
  std::int64_t updates() const { return updates_; }
  void set_updates(std::int64_t n) { updates_ = n; }
  const DataParallel& data_parallel() const { return dp_; }

  // Full-layout moments for a checkpoint, complete on `root`: m() and v() when
  // unsharded; under ZeRO-1 gathered from every rank (collective), empty on non-roots.
  // (Loading goes the other way: checkpoints::load_train_state with a MomentShard.)
  std::pair<Arena, Arena> full_moments(int root = 0);

 private:
  ModelWeights& w_;
  OptimizerConfig c_;
  DataParallel dp_;
  std::unique_ptr<ZeroShard> zero_;
  std::unique_ptr<GradOverlap> overlap_;
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
