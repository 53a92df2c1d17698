// rewards/answer_extract.h: where the final answer sits in a completion.
//
// A completion reads "<think> reasoning </think> answer section". The answer is
// taken from the answer section only (text after the last "</think>"), so that a
// \boxed{} written while thinking is never graded: first the last balanced
// \boxed{...} (or \fbox{...}), else the last stated answer ("The final answer is
// ...", "Answer: ...", "答案是 ..."). There is deliberately no "last number in the
// text" fallback: it pays format-less answers (reference/r1_recipe.md §8.1, §8.3).
// All functions are linear in the input (brace matching is one pass) and never
// throw on any bytes.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace crucible::rewards {

inline constexpr std::string_view kThinkOpen = "<think>";
inline constexpr std::string_view kThinkClose = "</think>";

struct CompletionParts {
  std::string_view think;   // between the first "<think>" (or the start) and the last "</think>"
  std::string_view answer;  // after the last "</think>"; the whole text when there is none
  bool has_close = false;   // a "</think>" was found
};

CompletionParts split_completion(std::string_view completion);

// The content of the last \boxed{...} (or \fbox{...}) whose braces balance, or
// nullopt. Escaped braces (\{ \}) do not count as grouping braces.
std::optional<std::string_view> last_boxed(std::string_view text);

// The answer stated after the last marker ("final answer is", "answer:", "answer
// is", "答案是", ...), cleaned: math delimiters removed, trailing prose and
// punctuation dropped. nullopt when there is no marker or nothing after it.
std::optional<std::string> stated_answer(std::string_view text);

struct ExtractedAnswer {
  std::string text;          // the raw answer (LaTeX), not yet normalized
  std::string_view method;   // "boxed" or "stated"
};

// last_boxed(), else stated_answer(), over `section`.
std::optional<ExtractedAnswer> extract_answer(std::string_view section);

}  // namespace crucible::rewards
