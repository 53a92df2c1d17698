// rewards/language.h: share of target-language words in the chain of thought.
//
// Reward_language = Num(Words_target) / Num(Words) over the think block
// (R1-Nature Eq. 7; reference/r1_recipe.md §3.3). The paper does not publish how
// words are found; crucible counts by script: a "word" is a run of Latin letters
// (2 or more: single letters are mostly math variables and are not counted) or a
// single Han character (Chinese is written without spaces); runs of other
// scripts (Cyrillic, Kana, Hangul, ...) are words of no target. LaTeX commands
// (\frac) and digits are not words. target "en": Latin words count; "zh": Han
// characters count. A chain of thought with no words scores 0 (nothing is paid
// for an empty or numbers-only block). Invalid UTF-8 bytes separate words.
#pragma once

#include <string>

#include "rewards/reward.h"

namespace crucible::rewards {

struct LanguageConfig {
  std::string target = "en";  // "en" or "zh"
  void validate() const;
};

LanguageConfig language_config_from_json(const json::Value& options);

struct WordCounts {
  std::int64_t target = 0;
  std::int64_t total = 0;
};
WordCounts count_words(std::string_view text, std::string_view target);

class LanguageConsistencyReward final : public Reward {
 public:
  explicit LanguageConsistencyReward(LanguageConfig c = {});
  std::string name() const override { return "language_consistency"; }
  RewardResult score(const Sample& sample) const override;

 private:
  LanguageConfig c_;
};

}  // namespace crucible::rewards
