// rewards/composite.cpp: weighted sum of named rewards (see composite.h).
//
// Invariant: total == sum over parts of weight * part score, in spec order (a
// fixed summation order: the same sample always gives the same bits); score()
// never throws because each part's score() does not.
#include "rewards/composite.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "core/error.h"

namespace crucible::rewards {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string format_number(double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", x);
  return buf;
}

}  // namespace

std::vector<RewardWeight> parse_reward_spec(std::string_view spec) {
  std::vector<RewardWeight> out;
  CRUCIBLE_USER_CHECK(!trim(spec).empty(), "reward spec is empty (expected e.g. \"correctness=1,format=0.5\")");
  std::size_t start = 0;
  while (start <= spec.size()) {
    std::size_t comma = spec.find(',', start);
    if (comma == std::string_view::npos) comma = spec.size();
    std::string_view item = trim(spec.substr(start, comma - start));
    CRUCIBLE_USER_CHECK(!item.empty(), "reward spec \"", spec, "\": empty item (expected name=weight)");
    RewardWeight w;
    const std::size_t eq = item.find('=');
    w.name = std::string(trim(item.substr(0, eq)));
    if (eq != std::string_view::npos) {
      const std::string num(trim(item.substr(eq + 1)));
      char* end = nullptr;
      w.weight = num.empty() ? NAN : std::strtod(num.c_str(), &end);
      CRUCIBLE_USER_CHECK(!num.empty() && end == num.c_str() + num.size() && std::isfinite(w.weight),
                          "reward spec \"", spec, "\": weight of '", w.name, "' is not a finite number: \"", num, "\"");
    }
    CRUCIBLE_USER_CHECK(!w.name.empty(), "reward spec \"", spec, "\": missing reward name before '='");
    bool known = false;
    for (const std::string& n : reward_names()) known = known || n == w.name;
    if (!known) {
      std::string list;
      for (const std::string& n : reward_names()) list += (list.empty() ? "" : ", ") + n;
      CRUCIBLE_FAIL("reward spec \"", spec, "\": unknown reward '", w.name, "' (known: ", list, ")");
    }
    for (const RewardWeight& o : out)
      CRUCIBLE_USER_CHECK(o.name != w.name, "reward spec \"", spec, "\": '", w.name, "' appears twice");
    out.push_back(std::move(w));
    start = comma + 1;
  }
  return out;
}

CompositeReward::CompositeReward(std::string_view spec, const json::Value& options)
    : weights_(parse_reward_spec(spec)) {
  CRUCIBLE_USER_CHECK(options.is_null() || options.is_object(),
                      "reward options must be a JSON object keyed by reward name");
  if (options.is_object())
    for (const json::Member& m : options.as_object()) {
      bool used = false;
      for (const RewardWeight& w : weights_) used = used || w.name == m.first;
      CRUCIBLE_USER_CHECK(used, "reward options name '", m.first, "', which is not in the spec \"", spec, "\"");
    }
  const json::Value empty = json::Value::object();
  for (const RewardWeight& w : weights_) {
    const json::Value* o = options.is_object() ? options.find(w.name) : nullptr;
    rewards_.push_back(make_reward(w.name, o ? *o : empty));
  }
}

CompositeResult CompositeReward::score_all(const Sample& sample) const {
  CompositeResult r;
  for (std::size_t i = 0; i < rewards_.size(); ++i) {
    CompositeResult::Part p{weights_[i].name, weights_[i].weight, {}};
    try {
      p.r = rewards_[i]->score(sample);
    } catch (...) {  // rewards do not throw; this keeps the composite's promise even if one did
      p.r = RewardResult{0.0, "internal error in " + weights_[i].name, false};
    }
    r.total += p.weight * p.r.score;
    r.data_error = r.data_error || p.r.data_error;
    r.parts.push_back(std::move(p));
  }
  return r;
}

RewardResult CompositeReward::score(const Sample& sample) const {
  CompositeResult c = score_all(sample);
  RewardResult r{c.total, "", c.data_error};
  for (const CompositeResult::Part& p : c.parts) {
    if (!r.reason.empty()) r.reason += "; ";
    r.reason += p.name + "=" + format_number(p.r.score) + " (" + p.r.reason + ")";
  }
  return r;
}

bool CompositeReward::needs_answer() const {
  for (const auto& r : rewards_)
    if (r->needs_answer()) return true;
  return false;
}

bool CompositeReward::needs_tokens() const {
  for (const auto& r : rewards_)
    if (r->needs_tokens()) return true;
  return false;
}

std::string CompositeReward::spec() const {
  std::string s;
  for (const RewardWeight& w : weights_) s += (s.empty() ? "" : ",") + w.name + "=" + format_number(w.weight);
  return s;
}

}  // namespace crucible::rewards
