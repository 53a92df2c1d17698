// rewards/reward.cpp: the registry of rewards by name and the option reader.
//
// Invariant: make_reward() either returns a reward whose config passed
// validate() or throws crucible::Error that names the reward and the offending
// key; it never ignores an option it does not know (a typo in an ablation config
// must not silently run the default).
#include "rewards/reward.h"

#include <cmath>

#include "core/error.h"
#include "rewards/correctness.h"
#include "rewards/format.h"
#include "rewards/language.h"
#include "rewards/length.h"

namespace crucible::rewards {

const std::vector<std::string>& reward_names() {
  static const std::vector<std::string> kNames = {"correctness", "format", "language_consistency", "length"};
  return kNames;
}

std::unique_ptr<Reward> make_reward(std::string_view name, const json::Value& options) {
  CRUCIBLE_USER_CHECK(options.is_null() || options.is_object(), "reward '", name,
                      "': options must be a JSON object, got ", json::kind_name(options.kind()));
  const json::Value empty = json::Value::object();
  const json::Value& opts = options.is_null() ? empty : options;
  if (name == "correctness") return std::make_unique<CorrectnessReward>(correctness_config_from_json(opts));
  if (name == "format") return std::make_unique<FormatReward>(format_config_from_json(opts));
  if (name == "language_consistency")
    return std::make_unique<LanguageConsistencyReward>(language_config_from_json(opts));
  if (name == "length") return std::make_unique<LengthReward>(length_config_from_json(opts));
  std::string known;
  for (const std::string& n : reward_names()) known += (known.empty() ? "" : ", ") + n;
  CRUCIBLE_FAIL("unknown reward '", name, "' (known: ", known, ")");
}

OptionReader::OptionReader(std::string_view reward, const json::Value& options)
    : reward_(reward), options_(&options) {
  CRUCIBLE_USER_CHECK(options.is_null() || options.is_object(), "reward '", reward_,
                      "': options must be a JSON object");
}

const json::Value* OptionReader::find(std::string_view key) {
  known_.emplace_back(key);
  return options_->is_object() ? options_->find(key) : nullptr;
}

void OptionReader::read(std::string_view key, double* out) {
  if (const json::Value* v = find(key)) {
    CRUCIBLE_USER_CHECK(v->is_number(), "reward '", reward_, "': option '", key, "' must be a number, got ",
                        json::kind_name(v->kind()));
    *out = v->as_double();
  }
}

void OptionReader::read(std::string_view key, std::int64_t* out) {
  if (const json::Value* v = find(key)) {
    CRUCIBLE_USER_CHECK(v->is_integer(), "reward '", reward_, "': option '", key, "' must be an integer, got ",
                        v->is_number() ? "a fraction" : json::kind_name(v->kind()));
    *out = v->as_int64();
  }
}

void OptionReader::read(std::string_view key, int* out) {
  std::int64_t v = *out;
  read(key, &v);
  CRUCIBLE_USER_CHECK(v >= -2147483647 && v <= 2147483647, "reward '", reward_, "': option '", key,
                      "' is out of range: ", v);
  *out = static_cast<int>(v);
}

void OptionReader::read(std::string_view key, bool* out) {
  if (const json::Value* v = find(key)) {
    CRUCIBLE_USER_CHECK(v->is_bool(), "reward '", reward_, "': option '", key, "' must be true or false, got ",
                        json::kind_name(v->kind()));
    *out = v->as_bool();
  }
}

void OptionReader::read(std::string_view key, std::string* out) {
  if (const json::Value* v = find(key)) {
    CRUCIBLE_USER_CHECK(v->is_string(), "reward '", reward_, "': option '", key, "' must be a string, got ",
                        json::kind_name(v->kind()));
    *out = v->as_string();
  }
}

void OptionReader::finish() const {
  if (!options_->is_object()) return;
  for (const json::Member& m : options_->as_object()) {
    bool ok = false;
    for (const std::string& k : known_) ok = ok || k == m.first;
    if (!ok) {
      std::string known;
      for (const std::string& k : known_) known += (known.empty() ? "" : ", ") + k;
      CRUCIBLE_FAIL("reward '", reward_, "': unknown option '", m.first, "' (known: ",
                    known.empty() ? "none" : known, ")");
    }
  }
}

namespace {
// Length of the valid UTF-8 sequence at s[i] (RFC 3629: no overlongs, surrogates
// or code points above U+10FFFF), or 0 when the bytes there are not one.
std::size_t utf8_length(std::string_view s, std::size_t i) {
  const unsigned char c = static_cast<unsigned char>(s[i]);
  std::size_t n;
  unsigned lo = 0x80, hi = 0xBF;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) n = 2;
  else if (c >= 0xE0 && c <= 0xEF) n = 3, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
  else if (c >= 0xF0 && c <= 0xF4) n = 4, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
  else return 0;
  if (i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    const unsigned char d = static_cast<unsigned char>(s[i + k]);
    if (d < (k == 1 ? lo : 0x80) || d > (k == 1 ? hi : 0xBF)) return 0;
  }
  return n;
}
}  // namespace

std::string clip_for_reason(std::string_view text, std::size_t max_bytes) {
  std::string out;
  std::size_t i = 0;
  while (i < text.size()) {
    const std::size_t n = utf8_length(text, i);
    if (out.size() + (n == 0 ? 1 : n) > max_bytes) {
      out += "...";
      break;
    }
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (n == 0) out += '?';  // invalid UTF-8: reasons are always valid UTF-8 (they go into JSON)
    else if (c == '\n') out += "\\n";
    else if (c < 0x20 || c == 0x7F) out += ' ';
    else out.append(text.substr(i, n));
    i += n == 0 ? 1 : n;
  }
  return out;
}

}  // namespace crucible::rewards
