// rewards/math_lex.h: tokens of answer math, shared by the lexer and the parser (internal).
//
// lex() splits a normalized answer into numbers, single letters (lowercased: x
// and X are one variable), whole words from \text{..}, backslash commands
// (\frac, \{ as "{", \begin{pmatrix} as "begin:pmatrix"), single characters and
// the row separator \\. Plain words that name math (sqrt, sin, pi, infinity)
// become commands. Errors throw ParseError, which parse_math() catches.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace crucible::rewards::math {

enum class TokKind : std::uint8_t { End, Num, Letter, Word, Cmd, Char, RowSep };

struct Tok {
  TokKind t = TokKind::End;
  std::string s;  // Num: digits; Letter/Word: lowercased name; Cmd: name ("frac", "{", "begin:pmatrix")
  char c = 0;     // Char
};

struct ParseError {
  std::string what;
};

// \text-like commands: their brace argument is text ("\text{even}" is one word).
bool is_text_command(std::string_view name);

// Throws ParseError on a character the grammar never uses or past kMaxTokens.
std::vector<Tok> lex(std::string_view normalized);

}  // namespace crucible::rewards::math
