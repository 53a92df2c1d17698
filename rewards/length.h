// rewards/length.h: DAPO soft overlong punishment.
//
//   R_length(L) = 0                                if L <= max_tokens - cache
//               = ((max_tokens - cache) - L) / cache  if max_tokens - cache < L <= max_tokens
//               = -1                               if L > max_tokens
// with L the completion length in tokens (Sample::completion_tokens), added to the
// correctness reward by the composite. DAPO uses L_max = 20480, L_cache = 4096.
// An unknown length (completion_tokens < 0) is a data error, not a silent 0.
// Reference: DAPO arXiv:2503.14476 Eq. 13 (reference/r1_recipe.md §6.1).
#pragma once

#include <cstdint>
#include <string>

#include "rewards/reward.h"

namespace crucible::rewards {

struct LengthConfig {
  std::int64_t max_tokens = 20480;  // L_max
  std::int64_t cache = 4096;        // L_cache: the soft zone before L_max (0: a hard step at L_max)
  void validate() const;
};

LengthConfig length_config_from_json(const json::Value& options);

// The DAPO formula itself (for tests and callers that have a length only).
double dapo_length_penalty(std::int64_t length, const LengthConfig& c);

class LengthReward final : public Reward {
 public:
  explicit LengthReward(LengthConfig c = {});
  std::string name() const override { return "length"; }
  RewardResult score(const Sample& sample) const override;
  bool needs_tokens() const override { return true; }

 private:
  LengthConfig c_;
};

}  // namespace crucible::rewards
