// rewards/language.cpp: language-consistency reward by script (see language.h).
//
// Invariant: count_words() is one pass over the bytes; an invalid UTF-8 byte is a
// separator, so any input is counted and nothing can read past the end.
// Reference: R1-Nature Eq. 7 (reference/r1_recipe.md §3.3).
#include "rewards/language.h"

#include <cstdio>

#include "core/error.h"
#include "rewards/answer_extract.h"

namespace crucible::rewards {

void LanguageConfig::validate() const {
  CRUCIBLE_USER_CHECK(target == "en" || target == "zh", "language_consistency: target must be \"en\" or \"zh\", got \"",
                      target, "\"");
}

LanguageConfig language_config_from_json(const json::Value& options) {
  LanguageConfig c;
  OptionReader r("language_consistency", options);
  r.read("target", &c.target);
  r.finish();
  c.validate();
  return c;
}

namespace {

enum class Script : std::uint8_t { None, Latin, Han, Other };

// Decodes one code point at s[i]; returns its byte length (>= 1) and sets *cp,
// or sets *cp = -1 for an invalid byte.
std::size_t decode(std::string_view s, std::size_t i, long* cp) {
  const unsigned char c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) return *cp = c, 1;
  std::size_t n = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c < 0xE0 ? 2 : 0;
  if (n == 0 || i + n > s.size()) return *cp = -1, 1;
  long v = c & (n == 2 ? 0x1F : n == 3 ? 0x0F : 0x07);
  for (std::size_t k = 1; k < n; ++k) {
    const unsigned char d = static_cast<unsigned char>(s[i + k]);
    if ((d & 0xC0) != 0x80) return *cp = -1, 1;
    v = (v << 6) | (d & 0x3F);
  }
  *cp = v;
  return n;
}

Script script_of(long cp) {
  if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z')) return Script::Latin;
  if ((cp >= 0xC0 && cp <= 0x24F && cp != 0xD7 && cp != 0xF7) || (cp >= 0x1E00 && cp <= 0x1EFF)) return Script::Latin;
  if ((cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0xF900 && cp <= 0xFAFF) ||
      (cp >= 0x20000 && cp <= 0x2FA1F))
    return Script::Han;
  // Letters of other scripts: Greek, Cyrillic, Armenian, Hebrew, Arabic, Indic, Thai,
  // Hangul, Kana (coarse ranges; punctuation blocks excluded).
  if ((cp >= 0x370 && cp <= 0x1FFF) || (cp >= 0x3040 && cp <= 0x30FF) || (cp >= 0xAC00 && cp <= 0xD7AF))
    return Script::Other;
  return Script::None;
}

}  // namespace

WordCounts count_words(std::string_view text, std::string_view target) {
  WordCounts w;
  const bool zh = target == "zh";
  Script run = Script::None;
  std::size_t run_len = 0;
  bool in_command = false;  // inside "\name": a LaTeX command, not a word
  auto flush = [&] {
    if (run == Script::Latin && run_len >= 2 && !in_command) {
      ++w.total;
      if (!zh) ++w.target;
    } else if (run == Script::Other && !in_command) {
      ++w.total;
    }
    run = Script::None;
    run_len = 0;
  };
  for (std::size_t i = 0; i < text.size();) {
    long cp;
    const std::size_t n = decode(text, i, &cp);
    const Script sc = cp < 0 ? Script::None : script_of(cp);
    if (sc == Script::Han) {
      flush();
      in_command = false;
      ++w.total;
      if (zh) ++w.target;
    } else if (sc == Script::Latin || sc == Script::Other) {
      if (sc != run) {
        flush();
        in_command = i > 0 && text[i - 1] == '\\';
      }
      run = sc;
      ++run_len;
    } else {
      flush();
      in_command = false;
    }
    i += n;
  }
  flush();
  return w;
}

LanguageConsistencyReward::LanguageConsistencyReward(LanguageConfig c) : c_(std::move(c)) { c_.validate(); }

RewardResult LanguageConsistencyReward::score(const Sample& s) const {
  const WordCounts w = count_words(split_completion(s.completion).think, c_.target);
  if (w.total == 0) return {0.0, "no words in the chain of thought"};
  const double share = static_cast<double>(w.target) / static_cast<double>(w.total);
  char buf[128];
  std::snprintf(buf, sizeof buf, "%lld of %lld words in %s", static_cast<long long>(w.target),
                static_cast<long long>(w.total), c_.target.c_str());
  return {share, buf};
}

}  // namespace crucible::rewards
