// trainer/scorer.cpp: the training composite and the reported measures.
#include "trainer/scorer.h"


#include "core/error.h"
#include "rewards/answer_extract.h"

namespace crucible::trainer {

Scorer::Scorer(const std::string& reward_spec, const std::string& task)
    : spec_(reward_spec), task_(task), train_(std::make_unique<rewards::CompositeReward>(reward_spec)) {
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
  for (const auto& part : train_->score_all(s).parts) {
    // Countdown correctness is the verifier's, not the text comparison's.
    const double v = part.name == "correctness" ? (out.correct ? 1.0 : 0.0) : part.r.score;
    out.reward += part.weight * v;
    out.components.emplace_back(part.name, v);
  }
  return out;
}

}  // namespace crucible::trainer
