// rewards/correctness.h: is the completion's final answer equal to the reference?
//
// The answer is taken after "</think>" (answer_extract.h), normalized
// (math_normalize.h), parsed (math_expr.h) and compared (math_compare.h). Score 1
// when equal, else 0. A reference that does not parse is a data error (score 0,
// data_error, reason "reference answer 'x' is not parseable"), never a 1.
// Reference: reference/r1_recipe.md §3.2 (accuracy reward, answer in a box), §8.
#pragma once

#include <string>

#include "rewards/reward.h"

namespace crucible::rewards {

struct CorrectnessConfig {
  double rel_tol = 1e-6;       // irrational values: |a-b| <= max(rel_tol * max(|a|,|b|), abs_tol)
  double abs_tol = 1e-9;
  int decimal_places = 6;      // a decimal answer agrees when equal after rounding to this many places
  int symbolic_time_ms = 50;   // wall-clock bound on one comparison (a step bound comes first)
  bool require_think_close = true;  // no "</think>": no answer section, score 0
  void validate() const;
};

CorrectnessConfig correctness_config_from_json(const json::Value& options);

class CorrectnessReward final : public Reward {
 public:
  explicit CorrectnessReward(CorrectnessConfig c = {});
  std::string name() const override { return "correctness"; }
  RewardResult score(const Sample& sample) const override;
  bool needs_answer() const override { return true; }
  const CorrectnessConfig& config() const { return c_; }

 private:
  CorrectnessConfig c_;
};

}  // namespace crucible::rewards
