// rewards/length.cpp: DAPO overlong reward shaping (see length.h).
//
// Invariant: the penalty is 0 up to max_tokens - cache, falls linearly to -1 at
// max_tokens, and is -1 beyond; it is continuous at both ends when cache > 0.
// Reference: DAPO arXiv:2503.14476 Eq. 13.
#include "rewards/length.h"

#include <cstdio>

#include "core/error.h"

namespace crucible::rewards {

void LengthConfig::validate() const {
  CRUCIBLE_USER_CHECK(max_tokens > 0, "length: max_tokens must be > 0, got ", max_tokens);
  CRUCIBLE_USER_CHECK(cache >= 0 && cache <= max_tokens, "length: cache must be in [0, max_tokens=", max_tokens,
                      "], got ", cache);
}

LengthConfig length_config_from_json(const json::Value& options) {
  LengthConfig c;
  OptionReader r("length", options);
  r.read("max_tokens", &c.max_tokens);
  r.read("cache", &c.cache);
  r.finish();
  c.validate();
  return c;
}

double dapo_length_penalty(std::int64_t length, const LengthConfig& c) {
  const std::int64_t soft = c.max_tokens - c.cache;
  if (length <= soft) return 0.0;
  if (length <= c.max_tokens) return static_cast<double>(soft - length) / static_cast<double>(c.cache);
  return -1.0;
}

LengthReward::LengthReward(LengthConfig c) : c_(c) { c_.validate(); }

RewardResult LengthReward::score(const Sample& s) const {
  if (s.completion_tokens < 0) return {0.0, "completion length in tokens is unknown (completion_tokens)", true};
  const double p = dapo_length_penalty(s.completion_tokens, c_);
  char buf[160];
  if (p == 0.0)
    std::snprintf(buf, sizeof buf, "%lld tokens <= %lld (no penalty)", static_cast<long long>(s.completion_tokens),
                  static_cast<long long>(c_.max_tokens - c_.cache));
  else if (p == -1.0 && s.completion_tokens > c_.max_tokens)
    std::snprintf(buf, sizeof buf, "%lld tokens > max_tokens %lld", static_cast<long long>(s.completion_tokens),
                  static_cast<long long>(c_.max_tokens));
  else
    std::snprintf(buf, sizeof buf, "%lld tokens in the last %lld before %lld: %.4f",
                  static_cast<long long>(s.completion_tokens), static_cast<long long>(c_.cache),
                  static_cast<long long>(c_.max_tokens), p);
  return {p, buf};
}

}  // namespace crucible::rewards
