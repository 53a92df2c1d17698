// rewards/composite.h: a weighted sum of rewards that reports every component.
//
// Built from a spec "correctness=1,format=0.5" (names from the registry, finite
// weights, each name once) and per-reward options {"correctness": {...}}. The
// total is sum(weight * score); every part keeps its own score and reason so that
// reward ablations are logged component by component (DESIGN.md §5). The sample
// is a data error when any part is.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "rewards/reward.h"

namespace crucible::rewards {

struct RewardWeight {
  std::string name;
  double weight = 1;
};

// Parses "name=weight,name=weight" (spaces allowed; "name" alone means weight 1).
// Throws crucible::Error naming the bad item.
std::vector<RewardWeight> parse_reward_spec(std::string_view spec);

struct CompositeResult {
  double total = 0;
  bool data_error = false;
  struct Part {
    std::string name;
    double weight = 0;
    RewardResult r;
  };
  std::vector<Part> parts;
};

class CompositeReward final : public Reward {
 public:
  // options: a JSON object keyed by reward name (or null); keys for rewards not in
  // the spec are an error.
  explicit CompositeReward(std::string_view spec, const json::Value& options = json::Value::object());

  CompositeResult score_all(const Sample& sample) const;

  std::string name() const override { return "composite"; }
  // total as the score; reasons joined "name=score (reason); ..."
  RewardResult score(const Sample& sample) const override;
  bool needs_answer() const override;
  bool needs_tokens() const override;

  const std::vector<RewardWeight>& weights() const { return weights_; }
  std::string spec() const;  // canonical "correctness=1,format=0.5"

 private:
  std::vector<RewardWeight> weights_;
  std::vector<std::unique_ptr<Reward>> rewards_;
};

}  // namespace crucible::rewards
