// rewards/math_normalize.h: string-level clean-up of an extracted answer.
//
// Turns what a model or a dataset writes around an answer into the text the
// expression parser (math_expr.h) reads: outer delimiters ($..$, \(..\), \[..\],
// \boxed{..}) and trailing punctuation go; \left/\right, spacing commands (\, \! \;
// ~ \quad), \displaystyle go; \dfrac and \tfrac become \frac; degree marks go;
// thousands separators (1,000  1{,}000  1\,000  1 000) are joined; a trailing unit
// (\text{ cm}^2, \mbox{ dollars}, "5 meters") after a number goes; "\text{ and }" /
// " or " between answers become commas; a few Unicode signs (− × · ÷ √ π ∞ ≤ ≥ ≠ °
// ± ∪ ∈) become their LaTeX. The percent sign is kept: the parser reads it.
// Mirrors the Hendrycks MATH / Qwen2.5-Math `strip_string` conventions
// (reference/r1_recipe.md §8.1). Linear in the input; never throws.
#pragma once

#include <string>
#include <string_view>

namespace crucible::rewards {

std::string normalize_answer(std::string_view raw);

// The normalized text for a string-equality fast path: \text{..}-like wrappers
// unwrapped, whitespace removed, ASCII letters lowercased.
std::string canonical_answer_text(std::string_view normalized);

}  // namespace crucible::rewards
