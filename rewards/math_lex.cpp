// rewards/math_lex.cpp: the tokenizer of answer math (see math_lex.h).
//
// Invariant: one left-to-right pass; every read is bounds-checked; the token
// count is capped at kMaxTokens, so any bytes end as tokens or one ParseError.
// Reference: LaTeX math-mode conventions of the MATH dataset answers.
#include "rewards/math_lex.h"

#include "rewards/math_expr.h"

#include <string>

namespace crucible::rewards::math {

namespace {

bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

}  // namespace

// Commands whose brace argument is text: "\text{even}" is one symbol "even".
bool is_text_command(std::string_view n) {
  return n == "text" || n == "textbf" || n == "textit" || n == "textrm" || n == "textnormal" ||
         n == "mathrm" || n == "mathit" || n == "mathbf" || n == "mbox" || n == "operatorname" ||
         n == "textsf" || n == "mathsf" || n == "texttt" || n == "mathtt" || n == "hbox";
}

namespace {

// Sizing and spacing commands that carry no value.
bool is_layout_command(std::string_view n) {
  static const char* kNames[] = {"left", "right", "big", "Big", "bigl", "bigr", "Bigl", "Bigr", "bigg", "Bigg",
                                 "biggl", "biggr", "middle", "displaystyle", "textstyle", "quad", "qquad",
                                 "limits", "nolimits"};
  for (const char* k : kNames)
    if (n == k) return true;
  return false;
}

// Plain-text words that name math (as typed in "Answer: sqrt(2)").
const char* plain_word_command(std::string_view w) {
  static const char* kWords[] = {"sqrt", "sin", "cos", "tan", "cot", "sec", "csc", "arcsin", "arccos",
                                 "arctan", "sinh", "cosh", "tanh", "ln", "log", "exp", "pi", "infty"};
  for (const char* k : kWords)
    if (w == k) return k;
  if (w == "infinity" || w == "inf") return "infty";
  return nullptr;
}

}  // namespace

std::vector<Tok> lex(std::string_view s) {
  std::vector<Tok> out;
  std::size_t i = 0;
  const std::size_t n = s.size();
  auto push = [&](TokKind t, std::string str, char c = 0) {
    if (out.size() >= static_cast<std::size_t>(kMaxTokens)) throw ParseError{"answer is too long to parse"};
    out.push_back(Tok{t, std::move(str), c});
  };
  while (i < n) {
    const char c = s[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      ++i;
    } else if (is_digit(c) || (c == '.' && i + 1 < n && is_digit(s[i + 1]))) {
      std::size_t j = i;
      while (j < n && is_digit(s[j])) ++j;
      if (j < n && s[j] == '.' && !(j + 1 < n && s[j + 1] == '.')) {  // "1..5" is not a decimal
        ++j;
        while (j < n && is_digit(s[j])) ++j;
      }
      push(TokKind::Num, std::string(s.substr(i, j - i)));
      i = j;
    } else if (is_alpha(c)) {
      std::size_t j = i;
      while (j < n && is_alpha(s[j])) ++j;
      std::string word;
      for (std::size_t k = i; k < j; ++k) word += lower(s[k]);
      if (const char* cmd = plain_word_command(word)) {
        push(TokKind::Cmd, cmd);
      } else {
        for (char w : word) push(TokKind::Letter, std::string(1, w));
      }
      i = j;
    } else if (c == '\\') {
      if (i + 1 >= n) throw ParseError{"a lone backslash"};
      const char d = s[i + 1];
      if (d == '\\') {
        push(TokKind::RowSep, "");
        i += 2;
      } else if (is_alpha(d)) {
        std::size_t j = i + 1;
        while (j < n && is_alpha(s[j])) ++j;
        std::string name(s.substr(i + 1, j - i - 1));
        std::size_t k = j;
        while (k < n && s[k] == ' ') ++k;
        if ((name == "begin" || name == "end") && k < n && s[k] == '{') {
          std::size_t close = s.find('}', k);
          if (close == std::string_view::npos) throw ParseError{"\\" + name + " without {environment}"};
          push(TokKind::Cmd, name + ":" + std::string(s.substr(k + 1, close - k - 1)));
          i = close + 1;
          continue;
        }
        if (is_text_command(name) && k < n && s[k] == '{') {
          // Pure words become one symbol; anything else is read as math in braces.
          std::size_t e = k + 1;
          int letters = 0;
          bool words_only = true;
          while (e < n && s[e] != '}') {
            if (is_alpha(s[e])) ++letters;
            else if (s[e] != ' ') words_only = false;
            ++e;
          }
          if (e < n && words_only && letters >= 2) {
            std::string word;
            for (std::size_t m = k + 1; m < e; ++m)
              if (s[m] != ' ') word += lower(s[m]);
            push(TokKind::Word, word);
            i = e + 1;
            continue;
          }
          i = k;  // the brace group is lexed next and parsed as a group
          continue;
        }
        if (is_layout_command(name)) {  // normally gone after normalization
          i = j;
          if ((name == "left" || name == "right") && i < n && s[i] == '.') ++i;
          continue;
        }
        push(TokKind::Cmd, name);
        i = j;
      } else if (d == '{' || d == '}') {
        push(TokKind::Cmd, std::string(1, d));
        i += 2;
      } else if (d == '%' || d == '|') {
        push(TokKind::Char, "", d);
        i += 2;
      } else if (d == ',' || d == '!' || d == ';' || d == ':' || d == ' ' || d == '$') {
        i += 2;  // spacing (and \$) left over by normalization
      } else {
        const bool ascii = static_cast<unsigned char>(d) < 128;
        throw ParseError{std::string("unknown command \\") + (ascii ? std::string(1, d) : "?")};
      }
    } else if (std::string_view("+-*/^_()[]{},;=<>!|&%'").find(c) != std::string_view::npos) {
      push(TokKind::Char, "", c);
      ++i;
    } else {
      throw ParseError{"unexpected character"};
    }
  }
  push(TokKind::End, "");
  return out;
}

}  // namespace crucible::rewards::math
