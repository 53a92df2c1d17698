// trainer/policy_loss.h: the GRPO family as settings of one objective.
//
// reference/r1_recipe.md and DESIGN.md §10. For a token t of response i of a group:
//   ratio      r_t = exp(logp_new - logp_old)            (token level: GRPO, DAPO, Dr.GRPO)
//              s_i = exp(mean_t(logp_new - logp_old))    (sequence level: GSPO)
//   surrogate  l_t = -min(r A_i, clip(r, 1 - eps_low, 1 + eps_high) A_i)
//   KL (k3)    k_t = exp(ref - new) - (ref - new) - 1,   added with weight beta
//   loss       L   = Σ_t w_t (l_t + beta k_t)
// The per-token weights w_t encode the aggregation mode and are computed from
// *global* counts (all micro-batches of all ranks), so that summing the gradient of
// micro-batches on every rank and all-reducing gives exactly the gradient of the
// whole batch:
//   token_mean              w = 1 / (Σ_i |o_i|)                    (DAPO)
//   seq_mean_token_mean     w = 1 / (G_total |o_i|)                (GRPO as in DeepSeekMath)
//   seq_mean_token_sum      w = 1 / G_total
//   constant_normalized     w = 1 / (G_total * C)                  (Dr. GRPO, C = max tokens)
// Advantages: A_i = (R_i - mean_g R) / (std_g R + eps) with std normalization on
// (GRPO), or R_i - mean_g R without (Dr. GRPO); a group whose rewards are all equal
// has A = 0 (and DAPO's dynamic sampling drops it upstream).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace crucible::trainer {

enum class LossAggregation : std::uint8_t { TokenMean, SeqMeanTokenMean, SeqMeanTokenSum, ConstantNormalized };
enum class RatioLevel : std::uint8_t { Token, Sequence };

struct PolicyLossConfig {
  double clip_eps_low = 0.2;
  double clip_eps_high = 0.2;  // DAPO clip-higher: 0.28
  double kl_beta = 0.0;        // weight of k3 KL to the reference (0 = no reference needed)
  LossAggregation aggregation = LossAggregation::SeqMeanTokenMean;
  double constant_normalizer = 1024;  // C of constant_normalized (e.g. the max response tokens)
  RatioLevel ratio_level = RatioLevel::Token;
  void validate() const;
};

// Group-normalized advantages; rewards.size() must be a multiple of group_size.
std::vector<double> group_advantages(const std::vector<double>& rewards, std::int64_t group_size,
                                     bool std_normalize, double eps = 1e-6);

// Global normalization counts of one optimizer step (before micro-batching).
struct LossNormalizer {
  double total_tokens = 0;     // Σ_i |o_i| over every response of the step, all ranks
  double total_sequences = 0;  // G_total
};

// One response's tokens in a packed micro-batch: [begin, end) rows of the
// per-token arrays, its advantage.
struct ResponseSpan {
  std::int64_t begin = 0, end = 0;
  double advantage = 0;
};

struct PolicyLossStats {
  double loss = 0;            // Σ_t w_t (l_t + beta k_t) of this micro-batch
  double kl_sum = 0;          // Σ k_t (unweighted)
  double clipped_tokens = 0;  // tokens whose clipped branch was taken (zero gradient)
  double tokens = 0;
  double ratio_sum = 0;
};

// logp_new, logp_old, logp_ref: [T] FP32 (logp_ref may be undefined when beta = 0);
// writes dlogp [T] = dL/dlogp_new (zero outside the spans). Returns the stats.
PolicyLossStats policy_loss(const PolicyLossConfig& cfg, const LossNormalizer& norm,
                            const std::vector<ResponseSpan>& spans, const Tensor& logp_new,
                            const Tensor& logp_old, const Tensor& logp_ref, Tensor& dlogp);

}  // namespace crucible::trainer
