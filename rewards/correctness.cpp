// rewards/correctness.cpp: the accuracy reward (see correctness.h).
//
// Invariant: score() never throws; the reference answer is checked first, so an
// unusable reference is reported as a data error whatever the completion says.
// Reference: reference/r1_recipe.md §3.2, §8 (and rl_frameworks.md §4.11 on
// unparseable gold answers paid 1.0 by open-r1).
#include "rewards/correctness.h"

#include <cmath>

#include "core/error.h"
#include "rewards/answer_extract.h"
#include "rewards/math_compare.h"
#include "rewards/math_expr.h"
#include "rewards/math_normalize.h"

namespace crucible::rewards {

void CorrectnessConfig::validate() const {
  CRUCIBLE_USER_CHECK(std::isfinite(rel_tol) && rel_tol >= 0 && rel_tol < 1,
                      "correctness: rel_tol must be in [0, 1), got ", rel_tol);
  CRUCIBLE_USER_CHECK(std::isfinite(abs_tol) && abs_tol >= 0, "correctness: abs_tol must be >= 0, got ", abs_tol);
  CRUCIBLE_USER_CHECK(decimal_places >= 0 && decimal_places <= 15,
                      "correctness: decimal_places must be in [0, 15], got ", decimal_places);
  CRUCIBLE_USER_CHECK(symbolic_time_ms >= 1 && symbolic_time_ms <= 60000,
                      "correctness: symbolic_time_ms must be in [1, 60000], got ", symbolic_time_ms);
}

CorrectnessConfig correctness_config_from_json(const json::Value& options) {
  CorrectnessConfig c;
  OptionReader r("correctness", options);
  r.read("rel_tol", &c.rel_tol);
  r.read("abs_tol", &c.abs_tol);
  r.read("decimal_places", &c.decimal_places);
  r.read("symbolic_time_ms", &c.symbolic_time_ms);
  r.read("require_think_close", &c.require_think_close);
  r.finish();
  c.validate();
  return c;
}

CorrectnessReward::CorrectnessReward(CorrectnessConfig c) : c_(c) { c_.validate(); }

namespace {

std::string quoted(std::string_view s) { return "'" + clip_for_reason(s) + "'"; }

RewardResult score_impl(const CorrectnessConfig& c, const Sample& s) {
  const std::string gold_text = normalize_answer(s.answer);
  math::ParseResult gold = math::parse_math(gold_text);
  if (!gold.ok)
    return {0.0, "reference answer " + quoted(s.answer) + " is not parseable (" + gold.error + ")", true};

  const CompletionParts parts = split_completion(s.completion);
  if (!parts.has_close && c.require_think_close) return {0.0, "no </think>: the completion has no answer section"};
  const std::optional<ExtractedAnswer> got = extract_answer(parts.answer);
  if (!got) return {0.0, "no \\boxed{} or stated answer after </think>"};

  const std::string pred_text = normalize_answer(got->text);
  if (pred_text.empty()) return {0.0, "the " + std::string(got->method) + " answer is empty"};
  const std::string what = std::string(got->method) + " answer " + quoted(got->text);
  if (canonical_answer_text(pred_text) == canonical_answer_text(gold_text))
    return {1.0, what + " matches the reference"};
  math::ParseResult pred = math::parse_math(pred_text);
  if (!pred.ok) return {0.0, what + " is not parseable (" + pred.error + ")"};

  math::CompareOptions o;
  o.rel_tol = c.rel_tol;
  o.abs_tol = c.abs_tol;
  o.decimal_places = c.decimal_places;
  o.time_ms = c.symbolic_time_ms;
  switch (math::compare(gold.expr, pred.expr, o)) {
    case math::Verdict::Equal: return {1.0, what + " equals the reference " + quoted(s.answer)};
    case math::Verdict::Different: return {0.0, what + " differs from the reference " + quoted(s.answer)};
    case math::Verdict::OutOfTime:
      return {0.0, what + ": comparison with " + quoted(s.answer) + " ran out of its time/step budget"};
  }
  return {0.0, "internal: unknown verdict"};
}

}  // namespace

RewardResult CorrectnessReward::score(const Sample& s) const {
  try {
    return score_impl(c_, s);
  } catch (const std::exception& e) {
    return {0.0, std::string("internal error: ") + clip_for_reason(e.what(), 200)};
  } catch (...) {
    return {0.0, "internal error"};
  }
}

}  // namespace crucible::rewards
