// rewards/format.cpp: the think-block format reward (see format.h).
//
// Invariant: score 1 exactly when (with the prefilled "<think>" restored if
// configured) the text is ws* "<think>" R "</think>" A with R and A non-blank and
// no other think tag anywhere. Linear in the input; never throws.
// Reference: reference/r1_recipe.md §3.2; open-r1 format pitfalls (rl_frameworks.md §4.11).
#include "rewards/format.h"

#include "rewards/answer_extract.h"

namespace crucible::rewards {

FormatConfig format_config_from_json(const json::Value& options) {
  FormatConfig c;
  OptionReader r("format", options);
  r.read("prefilled_think", &c.prefilled_think);
  r.finish();
  c.validate();
  return c;
}

namespace {

bool blank(std::string_view s) {
  for (char c : s)
    if (!(c == ' ' || c == '\t' || c == '\n' || c == '\r')) return false;
  return true;
}

std::size_t count(std::string_view s, std::string_view what) {
  std::size_t n = 0;
  for (std::size_t at = s.find(what); at != std::string_view::npos; at = s.find(what, at + what.size())) ++n;
  return n;
}

}  // namespace

RewardResult FormatReward::score(const Sample& s) const {
  std::string_view text = s.completion;
  std::size_t lead = 0;
  while (lead < text.size() && (text[lead] == ' ' || text[lead] == '\t' || text[lead] == '\n' || text[lead] == '\r'))
    ++lead;
  const bool opens = text.substr(lead, kThinkOpen.size()) == kThinkOpen;
  if (!opens && !c_.prefilled_think) return {0.0, "the completion does not start with <think>"};
  std::string_view body = opens ? text.substr(lead + kThinkOpen.size()) : text;
  if (std::size_t n = count(body, kThinkOpen); n > 0)
    return {0.0, std::to_string(n + 1) + " <think> tags (want exactly one)"};
  const std::size_t closes = count(body, kThinkClose);
  if (closes == 0) return {0.0, "no </think>: the think block is not closed"};
  if (closes > 1) return {0.0, std::to_string(closes) + " </think> tags (want exactly one)"};
  const std::size_t at = body.find(kThinkClose);
  if (blank(body.substr(0, at))) return {0.0, "the think block is empty"};
  if (blank(body.substr(at + kThinkClose.size()))) return {0.0, "no answer after </think>"};
  return {1.0, opens ? "one think block, then an answer" : "one think block (prefilled <think>), then an answer"};
}

}  // namespace crucible::rewards
