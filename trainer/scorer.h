// trainer/scorer.h: the rewards a stage trains on, and the measures it reports.
//
// Training uses the composite of the run's reward spec ("correctness=1,format=0.5").
// Reports always measure correctness and format on their own, whatever the
// training reward (a reward ablation must not change what "accuracy" means).
// Countdown answers are expressions: their correctness is checked against the
// problem's numbers and target (data::verify_countdown), not by text.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "rewards/composite.h"
#include "trainer/task_env.h"

namespace crucible::trainer {

struct Score {
  double reward = 0;   // the training composite
  bool correct = false;
  bool formatted = false;
  std::vector<std::pair<std::string, double>> components;  // name -> score
};

class Scorer {
 public:
  Scorer(const std::string& reward_spec, const std::string& task);
  // completion: the full completion text (think prefill restored).
  Score score(const PromptItem& prompt, const std::string& completion, std::int64_t completion_tokens) const;
  const std::string& spec() const { return spec_; }

 private:
  std::string spec_, task_;
  std::unique_ptr<rewards::CompositeReward> train_;
  std::unique_ptr<rewards::Reward> correctness_, format_;
};

}  // namespace crucible::trainer
