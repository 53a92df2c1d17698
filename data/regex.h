// data/regex.h: a small backtracking regular-expression engine over UTF-8 code points,
// for the Split pre-tokenizers of Hugging Face tokenizer.json files.
//
// Semantics are Oniguruma's (what Hugging Face `tokenizers` runs): leftmost-first
// alternation, greedy/lazy/possessive quantifiers, lookahead, Unicode classes. The
// supported syntax is what tokenizer patterns use, and a little more:
//   literals, escapes \t \n \r \f \v \a \e \xHH \x{H..} \uHHHH and escaped punctuation;
//   .  [..] [^..] with ranges, \p{..} \P{..} \p{^..} (general categories: L Lu Ll Lt Lm Lo
//   M Mn Mc Me N Nd Nl No P Pc Pd Ps Pe Pi Pf Po S Sm Sc Sk So Z Zs Zl Zp C Cc Cf Co Cn Cs,
//   and their long names), \s \S \d \D \w \W (Unicode, as Oniguruma defines them);
//   (..) (?:..) (?i:..) (?-i:..) (?i) (?=..) (?!..) (?>..) (?<name>..);  a|b;
//   ? * + {n} {n,} {n,m} {,m}, each optionally lazy (?) or possessive (+, not after {});
//   ^ $ (line anchors) \A \z \Z \b \B.
// Anything else (backreferences, lookbehind, nested classes, \h, \K, \R, (?x) ...) is an
// Error naming the pattern and the offset, never a silent misparse. Case-insensitive
// matching covers ASCII letters (with the Unicode code points that fold onto them: U+017F
// ſ and U+212A Kelvin); a non-ASCII cased letter under (?i) is an Error.
// Invariant: find_all() returns what Oniguruma's find_iter returns on valid UTF-8.
// A pattern that backtracks more than 10^7 steps for one match throws instead of hanging.
// Reference: Oniguruma doc/RE; tokenizers/src/utils/onig.rs (find_iter use).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace crucible::data {

namespace regex_detail {
struct Program;  // data/regex_program.h
}

// Byte offsets [begin, end) of a match in the searched text.
struct RegexMatch {
  std::size_t begin = 0, end = 0;
};

// Reusable working memory for matching (the backtracking stack); one per thread.
// Frames are the matcher's business (data/regex_match.cpp).
struct RegexFrame {
  std::uint32_t pc = 0, kind = 0;
  std::size_t pos = 0, aux = 0;
};
struct RegexScratch {
  std::vector<RegexFrame> stack;
};

class Regex {
 public:
  // Compiles `pattern`; bad or unsupported syntax throws crucible::Error
  // "regex '<pattern>': <what> at offset <n>".
  explicit Regex(std::string_view pattern);
  // A pattern matching `text` literally (tokenizer.json Split {"String": ...}).
  static Regex literal(std::string_view text);

  const std::string& pattern() const;

  // The leftmost-first match starting at or after byte `from` of `text` (valid UTF-8).
  bool find(std::string_view text, std::size_t from, RegexMatch& m, RegexScratch& scratch) const;

  // Every non-overlapping match, left to right (appended to `out`). After an empty match
  // the search resumes one code point later, and an empty match right where the
  // previous match ended is skipped (Oniguruma's and Rust regex's find_iter).
  void find_all(std::string_view text, std::vector<RegexMatch>& out, RegexScratch& scratch) const;

 private:
  explicit Regex(std::shared_ptr<const regex_detail::Program> p) : prog_(std::move(p)) {}
  std::shared_ptr<const regex_detail::Program> prog_;  // immutable; shared by copies
};

}  // namespace crucible::data
