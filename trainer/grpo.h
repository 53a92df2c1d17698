// trainer/grpo.h: one GRPO step (and the RL half of SFT+RL).
//
// Per step: G samples for each of the step's prompts (prompts sharded over ranks in
// whole groups), rewards, group advantages (std-normalized or not), optional DAPO
// dynamic sampling (drop all-equal groups), the old-policy log-probs recomputed by
// the trainer (their gap to the sampler's is logged), the reference log-probs when
// beta > 0, then ppo_epochs x mini_batches clipped-surrogate updates whose loss
// normalizer is computed over the whole mini-batch on all ranks.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "dist/communicator.h"
#include "rollout/generator.h"
#include "trainer/optimizer.h"
#include "trainer/policy_loss.h"
#include "trainer/scorer.h"

namespace crucible::trainer {

struct GrpoConfig {
  std::int64_t steps = 10;
  std::int64_t prompts_per_step = 8;   // global
  std::int64_t group_size = 8;
  double temperature = 1.0;
  double top_p = 1.0;
  std::int64_t top_k = 0;
  std::int64_t max_new_tokens = 128;
  bool std_normalize = true;           // false: Dr. GRPO
  bool dynamic_sampling = false;       // DAPO: drop groups whose rewards are all equal
  std::int64_t ppo_epochs = 1;
  std::int64_t mini_batches = 1;
  std::int64_t ref_refresh_steps = 0;  // 0: the reference stays the stage's initial policy
  std::int64_t max_tokens_per_forward = 4096;
  std::string rewards = "correctness=1,format=0.5";
  PolicyLossConfig loss;
  void validate() const;
};

struct GrpoMetrics {
  double reward = 0, accuracy = 0, format_rate = 0, response_length = 0;
  double kl = 0, clip_fraction = 0, entropy = 0, sampler_gap = 0, grad_norm = 0, lr = 0;
  double groups = 0, groups_kept = 0, tokens = 0, seconds = 0;
  std::vector<std::pair<std::string, double>> components;  // mean of each reward component
};

// An optional SFT term for sft_rl: its examples (this rank's share) and weight.
struct SftTerm {
  const std::vector<data::TokenizedExample>* examples = nullptr;
  double weight = 0;
  double global_tokens = 0;     // response tokens of the step over all ranks
  double global_sequences = 0;  // examples of the step over all ranks
};

// One GRPO step. `opt` is data parallel over `comm` (its step sums the ranks'
// gradients, replicated or ZeRO-1; checked when world > 1).
GrpoMetrics grpo_step(Transformer& policy, Transformer* reference, AdamW& opt, const TaskEnv& env,
                      const Scorer& scorer, const GrpoConfig& c, std::int64_t step, std::int64_t first_prompt,
                      std::uint64_t seed, dist::Communicator& comm, const SftTerm& sft = {});

}  // namespace crucible::trainer
