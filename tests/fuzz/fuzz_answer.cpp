// tests/fuzz/fuzz_answer.cpp: libFuzzer target for answer extraction and the rule rewards.
//
// Invariant: on any bytes, used as a completion and as a reference answer (and
// split in two, one part each), answer extraction, normalization, the math parser
// and comparison, and the correctness, format, language and length rewards return
// without crashing or throwing; scores are finite and within their ranges; a
// reference the parser rejects is a data error, never a reward of 1.
// Build (from the repository root):
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I. tests/fuzz/fuzz_answer.cpp
//           rewards/*.cpp core/json.cpp core/error.cpp -o fuzz_answer
// Reference: https://llvm.org/docs/LibFuzzer.html; DESIGN.md §5 ("reward code never crashes").
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "rewards/answer_extract.h"
#include "rewards/composite.h"
#include "rewards/correctness.h"
#include "rewards/format.h"
#include "rewards/language.h"
#include "rewards/length.h"
#include "rewards/math_compare.h"
#include "rewards/math_expr.h"
#include "rewards/math_normalize.h"

namespace {

namespace rw = crucible::rewards;

[[noreturn]] void die(const char* what, std::string_view input) {
  std::fprintf(stderr, "fuzz_answer: %s\ninput (%zu bytes): %.*s\n", what, input.size(),
               static_cast<int>(input.size() < 400 ? input.size() : 400), input.data());
  std::abort();
}

void check(const rw::RewardResult& r, double lo, double hi, std::string_view input) {
  if (!std::isfinite(r.score) || r.score < lo || r.score > hi) die("score out of range", input);
  if (r.reason.empty()) die("empty reason", input);
}

void run(std::string_view completion, std::string_view answer, std::string_view input) {
  static const rw::CorrectnessReward correctness;
  static const rw::FormatReward format;
  static const rw::LanguageConsistencyReward language_en;
  static const rw::LanguageConsistencyReward language_zh(rw::LanguageConfig{"zh"});
  static const rw::LengthReward length(rw::LengthConfig{100, 20});
  static const rw::CompositeReward composite("correctness=1,format=0.5,language_consistency=0.1,length=1");
  rw::Sample s;
  s.completion = completion;
  s.answer = answer;
  s.completion_tokens = static_cast<std::int64_t>(completion.size());
  const rw::RewardResult c = correctness.score(s);
  check(c, 0, 1, input);
  check(format.score(s), 0, 1, input);
  check(language_en.score(s), 0, 1, input);
  check(language_zh.score(s), 0, 1, input);
  check(length.score(s), -1, 0, input);
  const rw::CompositeResult all = composite.score_all(s);
  if (!std::isfinite(all.total) || all.parts.size() != 4) die("bad composite", input);
  // An unparseable reference must never pay.
  if (!rw::math::parse_math(rw::normalize_answer(answer)).ok && (c.score != 0 || !c.data_error))
    die("an unparseable reference was not a data error", input);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  try {
    // The parts on their own.
    const rw::CompletionParts parts = rw::split_completion(in);
    (void)rw::last_boxed(in);
    (void)rw::stated_answer(parts.answer);
    const std::string norm = rw::normalize_answer(in);
    (void)rw::canonical_answer_text(norm);
    const rw::math::ParseResult p = rw::math::parse_math(norm);
    if (p.ok) {
      rw::math::CompareOptions o;
      o.max_steps = 200000;
      (void)rw::math::compare(p.expr, p.expr, o);
    }
    // Whole rewards: the input as completion and as answer, and split at its middle.
    run(in, in, in);
    run(std::string("<think>x</think> \\boxed{") + std::string(in) + "}", in, in);
    const std::size_t mid = size / 2;
    run(in.substr(0, mid), in.substr(mid), in);
    run(in.substr(mid), in.substr(0, mid), in);
  } catch (const std::exception& e) {
    die(e.what(), in);
  }
  return 0;
}
