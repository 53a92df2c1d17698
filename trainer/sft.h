// trainer/sft.h: the supervised objective (cold-start SFT, SFT+RL's SFT term,
// distillation): mean negative log-likelihood of response tokens.
#pragma once

#include <functional>
#include <span>

#include "data/packing.h"
#include "model/transformer.h"

namespace crucible::trainer {

struct SftAccumulation {
  double loss_sum = 0;  // Σ -logp over response tokens (unweighted)
  double kd_sum = 0;    // Σ tau^2 KL(teacher || student) over response tokens (with a KdTerm)
  double tokens = 0;    // response tokens seen
  double all_tokens = 0;
  // Tokens routed to each expert of each MoE layer (for the aux-loss-free bias rule).
  std::vector<std::vector<std::int64_t>> expert_load;
};

// Adds `part` into `total` (expert loads of several forwards).
void add_expert_load(std::vector<std::vector<std::int64_t>>& total, const std::vector<std::vector<std::int64_t>>& part);

// Logit knowledge distillation from a frozen teacher over the same vocabulary (the
// distill stage's kd_weight): per response token the loss becomes
//   (1 - weight) * (-logp) + weight * tau^2 * KL(softmax(z_teacher / tau) || softmax(z_student / tau))
// (Hinton et al. 2015). The teacher runs forward only on the student's packed rows.
struct KdTerm {
  Transformer* teacher = nullptr;
  double weight = 0;       // in [0, 1]
  double temperature = 1;  // tau > 0
};

// Packs `examples` into rows of at most max_tokens and accumulates into the model's
// gradient arena the gradient of weight * Σ_response (-logp) / norm_tokens, where
// norm_tokens is the response-token count of the whole step (all micro-batches,
// all ranks) so that micro-batching is exact. MoE balance losses are weighted the
// same way: each packed row by its sequences over norm_sequences, the sequence count
// of the whole update (ForwardState::aux_weight). `last_backward`, when this holds the
// update's last backward (AdamW::last_backward_hook), goes to the last row's
// ForwardState::layer_grads_done. With `kd` (weight > 0), the
// per-token loss is KdTerm's mix instead, under the same normalization.
SftAccumulation sft_accumulate(Transformer& model, std::span<const data::TokenizedExample> examples,
                               double norm_tokens, double norm_sequences, std::int64_t max_tokens,
                               double weight = 1.0,
                               const KdTerm* kd = nullptr,
                               const std::function<void(std::int64_t)>& last_backward = {});

// Response-token count of examples (the normalizer's local part).
double response_tokens(std::span<const data::TokenizedExample> examples);

}  // namespace crucible::trainer
