// rewards/math_compare.h: is a parsed answer equal to the parsed reference?
//
// Numbers compare exactly when both sides are exact rationals (0.5 == 1/2 ==
// \frac{2}{4}). When either side is written as a decimal (3.14, 0.333333) both are
// rounded to `decimal_places` and compared, the rule Math-Verify applies
// (float_rounding = 6); values too small for that rounding compare with rel_tol.
// Irrational values (\sqrt{2}, \pi) compare with |a-b| <= max(rel_tol*max|a|,|b|,
// abs_tol). Expressions with variables compare by evaluating both at fixed
// pseudo-random rational points (exact rational arithmetic where possible) and
// requiring agreement at every point where both are defined (at least 3 points).
// Structure follows the reference: a bare list or \{..\} is unordered, a tuple or
// interval is ordered with its brackets, a matrix element-wise; "x = 3" matches 3;
// a reference inequality "1 < x < 2" matches the interval (1, 2) but not the other
// way round (Math-Verify's guard against restating the question); a percent
// matches its number with or without the /100; a \pm stands for both values.
//
// Limits: equality at random points is probabilistic for expressions with
// variables (identities of high degree could coincide at all points; in practice
// they do not at 3+ generic rationals); no complex numbers; no simplification
// beyond evaluation. The work is bounded by max_steps node evaluations and a
// wall-clock time_ms; beyond either the verdict is OutOfTime (scored wrong).
#pragma once

#include <cstdint>
#include <string>

#include "rewards/math_expr.h"

namespace crucible::rewards::math {

struct CompareOptions {
  double rel_tol = 1e-6;
  double abs_tol = 1e-9;
  int decimal_places = 6;
  std::int64_t max_steps = 2'000'000;  // node evaluations; deterministic bound
  int time_ms = 50;                     // wall-clock backstop
};

enum class Verdict : std::uint8_t { Equal, Different, OutOfTime };

Verdict compare(const Expr& gold, const Expr& pred, const CompareOptions& opts);

}  // namespace crucible::rewards::math
