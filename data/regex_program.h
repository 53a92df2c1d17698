// data/regex_program.h: the parsed and compiled forms of a Regex (internal to data/regex*.cpp).
//
// A program is a list of instructions for a backtracking machine (Pike/Thompson style
// with an explicit stack, no recursion per input character). Sub-programs (the bodies
// of lookaheads and atomic groups) follow the main program, each ending in Match.
// Invariant: a CharClass's ascii bitmap is its exact membership for U+0000..U+007F, so
// ASCII text never touches the Unicode tables.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "data/tokenizer_unicode.h"

namespace crucible::data::regex_detail {

// A set of code points: a union of items, then optionally complemented.
struct ClassItem {
  std::uint32_t categories = 0;                          // general categories (bit per category)
  std::vector<std::pair<char32_t, char32_t>> ranges;    // inclusive
  bool negated = false;                                  // the item is the complement of the above
  bool contains(char32_t cp) const {
    bool in = (categories >> static_cast<int>(unicode::general_category(cp))) & 1u;
    if (!in)
      for (const auto& r : ranges)
        if (cp >= r.first && cp <= r.second) {
          in = true;
          break;
        }
    return in != negated;
  }
};

struct CharClass {
  std::uint64_t ascii[2] = {0, 0};  // exact membership of U+0000..U+007F
  std::vector<ClassItem> items;     // for cp >= 0x80: (any item contains cp) != negated
  bool negated = false;

  bool contains(char32_t cp) const {
    if (cp < 0x80) return (ascii[cp >> 6] >> (cp & 63)) & 1u;
    bool in = false;
    for (const ClassItem& it : items)
      if (it.contains(cp)) {
        in = true;
        break;
      }
    return in != negated;
  }
  // Fills `ascii` from the items (call once the items are final).
  void finish() {
    ascii[0] = ascii[1] = 0;
    for (char32_t c = 0; c < 0x80; ++c) {
      bool in = false;
      for (const ClassItem& it : items)
        if (it.contains(c)) {
          in = true;
          break;
        }
      if (in != negated) ascii[c >> 6] |= 1ull << (c & 63);
    }
  }
};

enum class Op : std::uint8_t {
  Class,        // one code point in classes[arg]
  ClassRepeat,  // min..max code points in classes[arg]; mode greedy / lazy / possessive
  Split,        // try x first, then y; with a guard (arg != kNoGuard) x is tried only when the
                // code point at the position can start it
  Jmp,          // go to x
  Look,         // lookahead: run the sub-program at x; succeed when it matches != negate
  Atomic,       // run the sub-program at x; continue at its first match, never back into it
  Assert,       // zero-width test (AssertKind in arg)
  Match,        // the (sub-)program matched
};

enum class RepeatMode : std::uint8_t { Greedy, Lazy, Possessive };
enum class AssertKind : std::uint8_t { TextStart, TextEnd, TextEndNewline, LineStart, LineEnd, WordBoundary, NotWordBoundary };

struct Inst {
  Op op = Op::Match;
  RepeatMode mode = RepeatMode::Greedy;
  bool negate = false;     // Look
  std::uint32_t arg = 0;   // class index or AssertKind
  std::uint32_t x = 0, y = 0;
  std::uint32_t min = 0, max = 0;  // ClassRepeat; max = kUnbounded for * and +
};
constexpr std::uint32_t kUnbounded = 0xFFFFFFFFu;
constexpr std::uint32_t kNoGuard = 0xFFFFFFFFu;

// The code points that can start a branch: a union of classes, ASCII part precomputed.
struct Guard {
  std::uint64_t ascii[2] = {0, 0};
  std::vector<std::uint32_t> classes;
};

struct Program {
  std::string pattern;
  std::vector<CharClass> classes;
  std::vector<Inst> code;  // main program starts at 0
  std::vector<Guard> guards;
  // Code points that can start a match (union of classes); empty with `anchored_any`
  // = true when a match can start anywhere (the pattern can match the empty string).
  std::vector<std::uint32_t> first_classes;
  bool first_any = true;
  std::uint64_t first_ascii[2] = {0, 0};  // ASCII part of the union of first_classes
};

// The parsed pattern (data/regex_parse.cpp); classes live in the Program being built.
struct Node {
  enum class Kind : std::uint8_t { Empty, Class, Concat, Alt, Repeat, Look, Atomic, Assert } kind = Kind::Empty;
  std::uint32_t cls = 0;
  std::vector<Node> kids;
  std::uint32_t min = 0, max = 0;
  RepeatMode mode = RepeatMode::Greedy;
  bool negate = false;
  AssertKind assert_kind = AssertKind::TextStart;
};

Node parse_pattern(std::string_view pattern, Program& prog);

// Parses and compiles (data/regex.cpp); literal = true matches `pattern` as plain text.
std::shared_ptr<const Program> compile_pattern(std::string_view pattern, bool literal);

// \w as Oniguruma defines it (see word_item() in data/regex.cpp): for \b and \B.
bool is_word_char(char32_t cp);

}  // namespace crucible::data::regex_detail
