// rewards/answer_extract.cpp: think/answer split, last balanced \boxed{}, stated answers.
//
// Invariant: every function is one or two linear passes with O(number of \boxed)
// extra memory, so a multi-megabyte completion or ten thousand unclosed "\boxed{"
// cost microseconds per kilobyte, and no byte sequence can index out of range.
// Reference: Qwen2.5-Math extract_answer (last boxed via a brace stack, then "the
// answer is"); reference/r1_recipe.md §8.1 and §8.3 (no last-number fallback).
#include "rewards/answer_extract.h"

#include <algorithm>
#include <array>
#include <vector>

namespace crucible::rewards {

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

std::string lower_ascii(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

bool is_ascii_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// The math spans ($..$, $$..$$, \(..\), \[..\]) of a line, in order, with the
// text between them.
struct MathSpan {
  std::size_t begin, end;  // of the whole span, delimiters included
  std::string_view inner;
};

std::vector<MathSpan> math_spans(std::string_view s) {
  std::vector<MathSpan> out;
  std::size_t i = 0;
  while (i < s.size()) {
    std::string_view open, close;
    if (s.compare(i, 2, "$$") == 0) open = "$$", close = "$$";
    else if (s[i] == '$' && (i == 0 || s[i - 1] != '\\')) open = "$", close = "$";
    else if (s.compare(i, 2, "\\(") == 0) open = "\\(", close = "\\)";
    else if (s.compare(i, 2, "\\[") == 0) open = "\\[", close = "\\]";
    if (open.empty()) {
      ++i;
      continue;
    }
    std::size_t from = i + open.size();
    std::size_t end = s.find(close, from);
    while (close == "$" && end != std::string_view::npos && end > 0 && s[end - 1] == '\\') end = s.find(close, end + 1);
    if (end == std::string_view::npos) break;
    out.push_back({i, end + close.size(), s.substr(from, end - from)});
    i = end + close.size();
  }
  return out;
}

// "5 apples" -> "5": cut plain text at the first word (2+ ASCII letters) that
// follows something else. Words math is written with are kept.
std::string_view cut_prose(std::string_view s) {
  static const char* kMath[] = {"sqrt", "sin", "cos", "tan", "log", "ln", "pi", "exp", "frac", "infty", "dfrac"};
  std::size_t i = 0;
  bool seen_value = false;
  while (i < s.size()) {
    if (is_space(s[i])) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < s.size() && !is_space(s[j])) ++j;
    std::string_view tok = s.substr(i, j - i);
    std::size_t letters = 0;
    while (letters < tok.size() && is_ascii_alpha(tok[letters])) ++letters;
    bool is_word = letters >= 2 && (letters == tok.size() || tok[letters] == ',' || tok[letters] == '.');
    if (is_word) {
      std::string w = lower_ascii(tok.substr(0, letters));
      for (const char* m : kMath) is_word = is_word && w != m;
    }
    if (is_word && seen_value && (i == 0 || s[i - 1] != '\\')) return trim(s.substr(0, i));
    seen_value = true;
    i = j;
  }
  return trim(s);
}

}  // namespace

CompletionParts split_completion(std::string_view completion) {
  CompletionParts p;
  const std::size_t close = completion.rfind(kThinkClose);
  if (close == std::string_view::npos) {
    p.answer = completion;
    std::size_t open = completion.find(kThinkOpen);
    p.think = open == std::string_view::npos ? completion : completion.substr(open + kThinkOpen.size());
    return p;
  }
  p.has_close = true;
  p.answer = completion.substr(close + kThinkClose.size());
  std::size_t open = completion.find(kThinkOpen);
  std::size_t from = (open != std::string_view::npos && open < close) ? open + kThinkOpen.size() : 0;
  p.think = completion.substr(from, close - from);
  return p;
}

std::optional<std::string_view> last_boxed(std::string_view text) {
  struct Pending {
    std::size_t content;  // first byte of the content
    std::size_t depth;    // brace depth before its '{'
  };
  std::vector<Pending> pending;
  std::optional<std::string_view> best;
  std::size_t best_start = 0;
  std::size_t depth = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\\') {
      std::size_t len = text.compare(i, 6, "\\boxed") == 0 ? 6 : text.compare(i, 5, "\\fbox") == 0 ? 5 : 0;
      if (len > 0) {
        std::size_t j = i + len;
        while (j < text.size() && (text[j] == ' ' || text[j] == '\t')) ++j;
        if (j < text.size() && text[j] == '{') {
          pending.push_back({j + 1, depth});
          ++depth;
          i = j;
          continue;
        }
      }
      ++i;  // an escaped character (\{ \} \\) is not a grouping brace
      continue;
    }
    if (c == '{') {
      ++depth;
    } else if (c == '}' && depth > 0) {
      --depth;
      if (!pending.empty() && pending.back().depth == depth) {
        const Pending b = pending.back();
        pending.pop_back();
        if (!best || b.content >= best_start) {
          best = text.substr(b.content, i - b.content);
          best_start = b.content;
        }
      }
    }
  }
  return best;
}

std::optional<std::string> stated_answer(std::string_view text) {
  static const std::array<std::string_view, 11> kMarkers = {
      "final answer is", "final answer:", "final answer", "the answer is", "answer is", "answer:",
      "答案是", "答案为", "答案：", "答案:", "最终答案"};
  const std::string low = lower_ascii(text);
  std::size_t best_end = std::string::npos;
  for (std::string_view m : kMarkers) {
    std::size_t at = low.rfind(m);
    if (at == std::string::npos) continue;
    const std::size_t end = at + m.size();
    if (best_end == std::string::npos || end > best_end) best_end = end;
  }
  if (best_end == std::string::npos) return std::nullopt;
  std::string_view rest = text.substr(best_end);
  // Skip what sits between the marker and the answer: ":", "**", "is", spaces, newlines.
  for (;;) {
    std::size_t before = rest.size();
    while (!rest.empty() && (is_space(rest.front()) || rest.front() == ':' || rest.front() == '*' ||
                             rest.front() == '=' || rest.front() == '#'))
      rest.remove_prefix(1);
    if (rest.substr(0, 3) == "\xEF\xBC\x9A") rest.remove_prefix(3);  // full-width colon
    if (lower_ascii(rest.substr(0, 3)) == "is ") rest.remove_prefix(3);
    if (rest.size() == before) break;
  }
  // A display block may span lines; anything else ends at the line.
  std::string_view line;
  if (rest.substr(0, 2) == "\\[" || rest.substr(0, 2) == "$$") {
    std::string_view close = rest.substr(0, 2) == "\\[" ? "\\]" : "$$";
    std::size_t end = rest.find(close, 2);
    line = end == std::string_view::npos ? rest : rest.substr(0, end + 2);
  } else {
    line = rest.substr(0, rest.find('\n'));
  }
  line = trim(line);
  while (!line.empty() && (line.back() == '*' || line.back() == '.' || line.back() == '!'))
    line = trim(line.substr(0, line.size() - 1));
  if (line.empty()) return std::nullopt;

  std::vector<MathSpan> spans = math_spans(line);
  std::string out;
  if (!spans.empty()) {
    // Join spans separated only by "and", "or" or commas ("$x=1$ or $x=2$").
    out = std::string(trim(spans[0].inner));
    for (std::size_t k = 1; k < spans.size(); ++k) {
      std::string between = lower_ascii(trim(line.substr(spans[k - 1].end, spans[k].begin - spans[k - 1].end)));
      while (!between.empty() && between.front() == ',') between.erase(0, 1);
      std::string_view b = trim(between);
      if (!(b.empty() || b == "and" || b == "or" || b == ",")) break;
      out += ", ";
      out += trim(spans[k].inner);
    }
  } else {
    out = std::string(cut_prose(line));
  }
  while (!out.empty() && (out.back() == '.' || out.back() == ',' || is_space(out.back()))) out.pop_back();
  if (trim(out).empty()) return std::nullopt;
  return out;
}

std::optional<ExtractedAnswer> extract_answer(std::string_view section) {
  if (auto b = last_boxed(section)) return ExtractedAnswer{std::string(*b), "boxed"};
  if (auto s = stated_answer(section)) return ExtractedAnswer{std::move(*s), "stated"};
  return std::nullopt;
}

}  // namespace crucible::rewards
