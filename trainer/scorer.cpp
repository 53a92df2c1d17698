// trainer/scorer.cpp: the training composite and the reported measures.
#include "trainer/scorer.h"

#include <charconv>
#include <sstream>

#include "core/error.h"
#include "rewards/answer_extract.h"

namespace crucible::trainer {

Scorer::Scorer(const std::string& reward_spec, const std::string& task) : spec_(reward_spec), task_(task) {
  // "name=weight,name=weight"; a bare name has weight 1.
  std::stringstream ss(reward_spec);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    const auto eq = item.find('=');
    const std::string name = item.substr(0, eq);
    double weight = 1.0;
    if (eq != std::string::npos) {
      const std::string w = item.substr(eq + 1);
      const auto [p, ec] = std::from_chars(w.data(), w.data() + w.size(), weight);
      CRUCIBLE_USER_CHECK(ec == std::errc() && p == w.data() + w.size(), "reward spec '", reward_spec,
                          "': weight of ", name, " is not a number: '", w, "'");
    }
    train_.emplace_back(rewards::make_reward(name), weight);
  }
  CRUCIBLE_USER_CHECK(!train_.empty(), "reward spec '", reward_spec, "' names no reward");
  correctness_ = rewards::make_reward("correctness");
  format_ = rewards::make_reward("format");
}

Score Scorer::score(const PromptItem& prompt, const std::string& completion, std::int64_t completion_tokens) const {
  rewards::Sample s;
  s.prompt = prompt.question;
  s.completion = completion;
  s.answer = prompt.answer;
  s.metadata = &prompt.meta;
  s.completion_tokens = completion_tokens;
  Score out;
  const rewards::RewardResult correct = correctness_->score(s);
  out.correct = correct.score >= 1.0;
  // Countdown answers are expressions: correct when the verifier accepts them.
  if (task_ == "countdown") {
    const json::Value* nums = prompt.meta.find("numbers");
    const json::Value* target = prompt.meta.find("target");
    if (nums && target) {
      std::vector<std::int64_t> numbers;
      for (const auto& n : nums->as_array()) numbers.push_back(n.as_int64());
      const auto parts = rewards::split_completion(completion);
      const auto answer = rewards::extract_answer(parts.answer);
      out.correct = parts.has_close && answer &&
                    data::verify_countdown(answer->text, numbers, target->as_int64()).ok;
    }
  }
  out.formatted = format_->score(s).score >= 1.0;
  for (const auto& [reward, weight] : train_) {
    double v = reward->score(s).score;
    if (reward->name() == "correctness") v = out.correct ? 1.0 : 0.0;
    out.reward += weight * v;
    out.components.emplace_back(reward->name(), v);
  }
  return out;
}

}  // namespace crucible::trainer
