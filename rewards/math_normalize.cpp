// rewards/math_normalize.cpp: string clean-up of an extracted answer (see math_normalize.h).
//
// Invariant: every pass is a bounded number of linear scans over the text, and
// none can throw or index out of range, so any bytes come out as some string.
// The rules are the MATH-dataset conventions also used by Qwen2.5-Math's
// strip_string and Math-Verify's normalization (reference/r1_recipe.md §8.1-8.2);
// where they differ, the choice is stated next to the rule.
#include "rewards/math_normalize.h"

#include <cstddef>
#include <string>
#include <string_view>

namespace crucible::rewards {

namespace {

bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
bool ends_with(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

std::string replace_all(std::string_view s, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(s.size());
  std::size_t i = 0;
  while (i < s.size()) {
    if (s.compare(i, from.size(), from) == 0) {
      out += to;
      i += from.size();
    } else {
      out += s[i++];
    }
  }
  return out;
}

// Index of the '}' matching the '{' at `open`, or npos. Escaped braces do not count.
std::size_t matching_brace(std::string_view s, std::size_t open) {
  int depth = 0;
  for (std::size_t i = open; i < s.size(); ++i) {
    if (s[i] == '\\') {
      ++i;
      continue;
    }
    if (s[i] == '{') ++depth;
    if (s[i] == '}' && --depth == 0) return i;
  }
  return std::string_view::npos;
}

bool is_text_command(std::string_view n) {
  return n == "text" || n == "textbf" || n == "textit" || n == "textrm" || n == "textnormal" || n == "mathrm" ||
         n == "mbox" || n == "textsf" || n == "hbox";
}

// Unicode signs that models write for LaTeX ones.
std::string replace_unicode(std::string_view s) {
  static const std::pair<const char*, const char*> kMap[] = {
      {"\xE2\x88\x92", "-"},        {"\xE2\x80\x93", "-"},        {"\xC3\x97", "\\times "},
      {"\xC2\xB7", "\\cdot "},      {"\xC3\xB7", "\\div "},       {"\xE2\x88\x9A", "\\sqrt "},
      {"\xCF\x80", "\\pi "},        {"\xE2\x88\x9E", "\\infty "}, {"\xE2\x89\xA4", "\\le "},
      {"\xE2\x89\xA5", "\\ge "},    {"\xE2\x89\xA0", "\\ne "},    {"\xC2\xB0", ""},
      {"\xC2\xB1", "\\pm "},        {"\xE2\x88\xAA", "\\cup "},   {"\xE2\x88\x88", "\\in "},
      {"\xEF\xBC\x8C", ","},        {"\xEF\xBC\x9A", ":"},        {"\xEF\xBC\x85", "%"},
      {"\xE3\x80\x80", " "},        {"\xC2\xA0", " "},            {"\xEF\xBC\x88", "("},
      {"\xEF\xBC\x89", ")"},        {"\xE3\x80\x82", "."},
  };
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    if (static_cast<unsigned char>(s[i]) >= 0x80) {
      bool hit = false;
      for (const auto& [from, to] : kMap) {
        std::string_view f(from);
        if (s.compare(i, f.size(), f) == 0) {
          out += to;
          i += f.size();
          hit = true;
          break;
        }
      }
      if (hit) continue;
    }
    out += s[i++];
  }
  return out;
}

// Removes delimiters around the whole answer ($..$, \(..\), \[..\], \boxed{..})
// and trailing punctuation, repeatedly.
std::string strip_wrappers(std::string_view in) {
  std::string_view s = trim(in);
  for (int round = 0; round < 16; ++round) {
    std::string_view before = s;
    while (!s.empty() && (s.back() == '.' || s.back() == ',' || s.back() == ';' || s.back() == ':')) {
      if (s.size() >= 2 && s[s.size() - 2] == '\\') break;  // "\," "\;" are spacing, handled later
      s.remove_suffix(1);
      s = trim(s);
    }
    if (s.size() >= 4 && starts_with(s, "$$") && ends_with(s, "$$")) {
      s = trim(s.substr(2, s.size() - 4));
    } else if (s.size() >= 2 && s.front() == '$' && s.back() == '$' && !ends_with(s, "\\$")) {
      s = trim(s.substr(1, s.size() - 2));
    } else if (s.size() >= 4 && ((starts_with(s, "\\(") && ends_with(s, "\\)")) ||
                                 (starts_with(s, "\\[") && ends_with(s, "\\]")))) {
      s = trim(s.substr(2, s.size() - 4));
    } else if (starts_with(s, "\\boxed") || starts_with(s, "\\fbox")) {
      std::size_t open = s.find('{');
      bool only_space = open != std::string_view::npos;
      for (std::size_t i = (starts_with(s, "\\boxed") ? 6 : 5); only_space && i < open; ++i)
        only_space = is_space(s[i]);
      if (only_space && matching_brace(s, open) == s.size() - 1) s = trim(s.substr(open + 1, s.size() - open - 2));
    } else if (starts_with(s, "\\displaystyle")) {
      s = trim(s.substr(13));
    }
    if (s == before) break;
  }
  return std::string(s);
}

// One pass over backslash commands: drop sizing/spacing, rename fraction variants.
std::string clean_commands(std::string_view s) {
  static const char* kDrop[] = {"left", "right", "big", "Big", "bigl", "bigr", "Bigl", "Bigr", "bigg", "Bigg",
                                "biggl", "biggr", "middle", "displaystyle", "textstyle", "quad", "qquad",
                                "limits", "nolimits", "hfill", "enspace", "thinspace", "medspace",
                                "negthinspace", "negmedspace", "thickspace", "phantom"};
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    const char c = s[i];
    if (c == '~') {
      out += ' ';
      ++i;
      continue;
    }
    if (c != '\\' || i + 1 >= s.size()) {
      out += c;
      ++i;
      continue;
    }
    const char d = s[i + 1];
    if (is_alpha(d)) {
      std::size_t j = i + 1;
      while (j < s.size() && is_alpha(s[j])) ++j;
      std::string_view name = s.substr(i + 1, j - i - 1);
      bool drop = false;
      for (const char* k : kDrop) drop = drop || name == k;
      if (drop) {
        if ((name == "left" || name == "right") && j < s.size() && s[j] == '.') ++j;  // \left. is invisible
        out += ' ';
      } else if (name == "dfrac" || name == "tfrac" || name == "cfrac") {
        out += "\\frac";
      } else if (name == "dbinom" || name == "tbinom") {
        out += "\\binom";
      } else {
        out.append(s.substr(i, j - i));
      }
      i = j;
    } else if (d == ',' || d == '!' || d == ';' || d == ':' || d == ' ' || d == '$') {
      i += 2;  // spacing; \$ is a currency sign
    } else {
      out += c;
      out += d;
      i += 2;
    }
  }
  return out;
}

// 1,000,000 / 1{,}000 / 1 000 -> 1000000: groups of exactly three digits after a
// first group of one to three, all with the same separator.
std::string join_thousands(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  std::size_t i = 0;
  while (i < s.size()) {
    const bool starts_number =
        is_digit(s[i]) && (i == 0 || (!is_digit(s[i - 1]) && s[i - 1] != '.' && !is_alpha(s[i - 1])));
    if (!starts_number) {
      out += s[i++];
      continue;
    }
    std::size_t j = i;
    while (j < s.size() && is_digit(s[j])) ++j;
    std::string digits(s.substr(i, j - i));
    if (digits.size() <= 3 && j < s.size() && (s[j] == ',' || s[j] == ' ')) {
      const char sep = s[j];
      std::size_t k = j;
      std::string joined = digits;
      int groups = 0;
      while (k + 3 < s.size() + 0 && s[k] == sep && is_digit(s[k + 1]) && is_digit(s[k + 2]) && is_digit(s[k + 3]) &&
             (k + 4 >= s.size() || !is_digit(s[k + 4]))) {
        joined.append(s.substr(k + 1, 3));
        k += 4;
        ++groups;
      }
      if (groups > 0) {
        out += joined;
        i = k;
        continue;
      }
    }
    out += digits;
    i = j;
  }
  return out;
}

bool is_unit_word(std::string_view w) {
  static const char* kUnits[] = {
      "cm", "mm", "km", "meter", "meters", "metre", "metres", "inch", "inches", "ft", "feet", "foot", "yard",
      "yards", "mile", "miles", "mph", "kg", "gram", "grams", "second", "seconds", "sec", "minute", "minutes",
      "min", "hour", "hours", "hr", "hrs", "day", "days", "week", "weeks", "month", "months", "year", "years",
      "degree", "degrees", "dollar", "dollars", "cent", "cents", "unit", "units", "liter", "liters", "ml",
      "square", "cubic", "sq", "people", "students", "times", "ways", "radians", "rad"};
  for (const char* u : kUnits)
    if (w == u) return true;
  return false;
}

bool has_alnum(std::string_view s) {
  for (char c : s)
    if (is_alpha(c) || is_digit(c)) return true;
  return false;
}

// Drops one trailing unit ("\text{ cm}^2", "\mbox{dollars}", " meters") after a
// value; returns false when there is none.
bool drop_trailing_unit(std::string& s) {
  std::string_view t = trim(s);
  // An exponent on a unit: \text{ cm}^2, cm^{3}.
  std::string_view base = t;
  for (std::string_view e : {"^{2}", "^{3}", "^2", "^3"})
    if (ends_with(base, e)) {
      base = trim(base.substr(0, base.size() - e.size()));
      break;
    }
  if (!base.empty() && base.back() == '}') {
    // Find the '{' that opens the last group.
    int depth = 0;
    std::size_t open = std::string_view::npos;
    for (std::size_t i = base.size(); i-- > 0;) {
      if (base[i] == '}') ++depth;
      else if (base[i] == '{' && --depth == 0) {
        open = i;
        break;
      }
    }
    if (open == std::string_view::npos) return false;
    std::size_t cmd = open;
    while (cmd > 0 && is_alpha(base[cmd - 1])) --cmd;
    if (cmd == 0 || base[cmd - 1] != '\\' || !is_text_command(base.substr(cmd, open - cmd))) return false;
    std::string_view content = base.substr(open + 1, base.size() - open - 2);
    bool unit_like = false;
    for (char c : content) {
      if (is_alpha(c)) unit_like = true;
      else if (!(is_space(c) || c == '.' || c == '^' || is_digit(c) || c == '/')) return false;
    }
    std::string_view prefix = trim(base.substr(0, cmd - 1));
    if (!unit_like || !has_alnum(prefix)) return false;
    s = std::string(prefix);
    return true;
  }
  // A plain unit word after a number: "5 meters", "12 cm".
  std::size_t w = base.size();
  while (w > 0 && is_alpha(base[w - 1])) --w;
  std::string_view word = base.substr(w);
  if (word.empty() || !is_unit_word(word)) return false;
  std::string_view prefix = trim(base.substr(0, w));
  if (prefix.empty() || w == 0 || !(is_space(base[w - 1]) || is_digit(base[w - 1]) || base[w - 1] == '}')) return false;
  bool has_digit = false;
  for (char c : prefix) has_digit = has_digit || is_digit(c);
  if (!has_digit) return false;
  s = std::string(prefix);
  return true;
}

}  // namespace

std::string normalize_answer(std::string_view raw) {
  std::string s = replace_unicode(raw);
  s = strip_wrappers(s);
  // Degrees go before the command pass sees \circ.
  for (std::string_view deg :
       {"{}^{\\circ}", "{}^\\circ", "^{\\circ}", "^\\circ", "^{\\degree}", "^\\degree", "\\degree", "\\circ"})
    s = replace_all(s, deg, "");
  s = replace_all(s, "\\text{\\%}", "\\%");
  s = clean_commands(s);
  // Words that join answers are list separators.
  for (std::string_view sep : {"\\text{ and }", "\\text{and}", "\\text{ or }", "\\text{or}", "\\mbox{ and }",
                               "\\mbox{and}", " and ", " or "})
    s = replace_all(s, sep, ",");
  // "percent" spelled out.
  for (std::string_view pct : {"\\text{ percent}", "\\text{percent}", " percent", "percent"})
    if (ends_with(trim(s), pct)) {
      std::string_view t = trim(s);
      s = std::string(t.substr(0, t.size() - pct.size())) + "\\%";
      break;
    }
  for (int i = 0; i < 4 && drop_trailing_unit(s); ++i) {
  }
  s = replace_all(s, "{,}", ",");
  s = join_thousands(s);
  // Remaining dollar signs are currency or stray math delimiters.
  s = replace_all(s, "$", "");
  s = strip_wrappers(s);
  return s;
}

std::string canonical_answer_text(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  std::string keep_close;  // per open brace: '1' when its '}' is kept
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '\\' && i + 1 < s.size() && is_alpha(s[i + 1])) {
      std::size_t j = i + 1;
      while (j < s.size() && is_alpha(s[j])) ++j;
      std::string_view name = s.substr(i + 1, j - i - 1);
      std::size_t k = j;
      while (k < s.size() && is_space(s[k])) ++k;
      if ((is_text_command(name) || name == "mathrm") && k < s.size() && s[k] == '{') {
        keep_close += '0';
        i = k;
        continue;
      }
      for (std::size_t m = i; m < j; ++m) out += s[m];
      i = j - 1;
      continue;
    }
    if (c == '\\' && i + 1 < s.size()) {  // escaped character: copy both
      out += c;
      out += s[++i];
      continue;
    }
    if (c == '{') {
      keep_close += '1';
      out += c;
    } else if (c == '}') {
      if (keep_close.empty() || keep_close.back() == '1') out += c;
      if (!keep_close.empty()) keep_close.pop_back();
    } else if (!is_space(c)) {
      out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    }
  }
  return out;
}

}  // namespace crucible::rewards
