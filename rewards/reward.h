// rewards/reward.h: the Reward interface, the per-sample input, and the registry.
//
// A Reward maps one sample (prompt, completion, reference answer, metadata) to a
// score and a short reason. Rewards are pure, deterministic and CPU-only (DESIGN.md
// §5): the same sample always gets the same score, and score() never throws and
// never crashes, whatever the bytes (tests/fuzz/fuzz_answer.cpp checks it).
// A reference answer that cannot be used is a data error (data_error = true, score
// 0), never a reward of 1 (open-r1 #293, reference/rl_frameworks.md §4.11).
//
// Shipped rewards (make_reward names): correctness, format, language_consistency,
// length. Each has its own config struct with defaults and validate(); options come
// as a JSON object whose unknown keys are errors that name the reward and the key.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"

namespace crucible::rewards {

struct Sample {
  std::string_view prompt;
  std::string_view completion;  // the model's text, "<think>...</think> answer" (prefill restored or not)
  std::string_view answer;      // the reference answer (LaTeX or plain text)
  const json::Value* metadata = nullptr;  // may be null
  std::int64_t completion_tokens = -1;    // -1: unknown (the length reward then reports a data error)
};

struct RewardResult {
  double score = 0;
  std::string reason;
  bool data_error = false;  // the sample (not the model) is at fault: e.g. an unparseable reference
};

class Reward {
 public:
  virtual ~Reward() = default;
  virtual std::string name() const = 0;
  // Never throws (implementations catch internally and report an internal error as
  // score 0 with a reason).
  virtual RewardResult score(const Sample& sample) const = 0;
  // Whether the reward reads Sample::answer (`crucible score` requires the field then).
  virtual bool needs_answer() const { return false; }
  // Whether the reward reads Sample::completion_tokens.
  virtual bool needs_tokens() const { return false; }
};

// The registered reward names, in a stable order.
const std::vector<std::string>& reward_names();

// Builds a reward by name. `options` is a JSON object (or null) of that reward's
// config keys; an unknown name, an unknown key, a wrong type or a bad value throws
// crucible::Error naming the reward and the key.
std::unique_ptr<Reward> make_reward(std::string_view name, const json::Value& options = json::Value::object());

// Reads typed config keys from an options object and rejects keys never read.
// Used by each reward's config parser; errors read "reward '<name>': option '<key>' ...".
class OptionReader {
 public:
  OptionReader(std::string_view reward, const json::Value& options);
  void read(std::string_view key, double* out);
  void read(std::string_view key, int* out);
  void read(std::string_view key, std::int64_t* out);
  void read(std::string_view key, bool* out);
  void read(std::string_view key, std::string* out);
  // Throws when the options hold a key that no read() asked for.
  void finish() const;

 private:
  const json::Value* find(std::string_view key);
  std::string reward_;
  const json::Value* options_;
  std::vector<std::string> known_;
};

// Shortens text for a reason string: at most `max_bytes` (UTF-8 safe), "..." when cut,
// newlines shown as "\n".
std::string clip_for_reason(std::string_view text, std::size_t max_bytes = 60);

}  // namespace crucible::rewards
