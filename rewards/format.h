// rewards/format.h: one well-formed think block, then a non-empty answer.
//
// Score 1 when the completion is "<think> reasoning </think> answer" with exactly
// one opening and one closing tag, non-empty reasoning and a non-empty answer;
// else 0 with the first rule that failed as the reason. Chat templates of the
// R1-distill family pre-fill "<think>\n" in the prompt, so the generated text
// starts inside the block: with prefilled_think (default) a completion without
// the opening tag is read as if it had it (open-r1 README; rl_frameworks.md §4.11).
// Reference: reference/r1_recipe.md §3.2 (format reward).
#pragma once

#include <string>

#include "rewards/reward.h"

namespace crucible::rewards {

struct FormatConfig {
  bool prefilled_think = true;  // the prompt ends with "<think>": the completion may omit it
  void validate() const {}
};

FormatConfig format_config_from_json(const json::Value& options);

class FormatReward final : public Reward {
 public:
  explicit FormatReward(FormatConfig c = {}) : c_(c) { c_.validate(); }
  std::string name() const override { return "format"; }
  RewardResult score(const Sample& sample) const override;

 private:
  FormatConfig c_;
};

}  // namespace crucible::rewards
