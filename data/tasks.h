// data/tasks.h: synthetic verifiable tasks for RL prompts and cold-start SFT.
//
// A Task generates Problem number `index` of a split at a difficulty,
// deterministically from (task, seed, split, difficulty, index): a Philox stream
// keyed by those values draws candidates. Train and Test never share a problem:
// each problem has a canonical form (commutative operands sorted, Countdown
// numbers sorted), and a fixed, seed-independent hash of it assigns the problem to
// one split (a quarter of the problem space is Test); a candidate that hashes into
// the other split is redrawn. So no Test problem of any seed or difficulty can
// appear in any Train set. Within one split, duplicates are possible at low
// difficulty (the space is small).
//
// SFT completion format (what sft_completion() returns, what rewards parse):
//   "<think>\n" + cot + "\n</think>\n\n" + "The answer is \boxed{" + answer + "}."
// The cot is programmatic (column arithmetic, a search trace) and its last line
// states the answer; rewards take the last \boxed{...} after </think>.
//
// Tasks:
//   arithmetic  a op b with op in {+, -, *} (or the subset TaskOptions::ops names),
//               both operands of `difficulty` digits (1..9; 1 digit includes 0).
//               Answer: the exact integer (may be negative).
//   countdown   2 + difficulty numbers (difficulty 1..4: 3..6 numbers, each 1..50)
//               and a target in [1, 999] reachable with all of them; answer: one
//               such expression. Any expression that verify_countdown() accepts is
//               correct, so a reward must check meta (numbers, target) with it
//               rather than compare text with the answer.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"

namespace crucible {
class Rng;
}

namespace crucible::data {

enum class Split { Train, Test };
std::string_view split_name(Split s);   // "train", "test"
Split parse_split(std::string_view s);  // throws on anything else

struct Problem {
  std::string id;      // "<task>-<split>-d<difficulty>-s<seed>-<index>"
  std::string prompt;  // the user's question (asks for the answer in \boxed{})
  std::string answer;  // reference answer text
  std::string cot;     // the <think> content, without the tags
  json::Value meta;    // {"task","split","difficulty","seed","index","canonical", task-specific...}
};

// The split a canonical problem belongs to (fixed hash; seed-independent).
Split split_of_canonical(std::string_view canonical);

class Task {
 public:
  explicit Task(std::uint64_t seed) : seed_(seed) {}
  virtual ~Task() = default;

  virtual std::string_view name() const = 0;
  virtual int min_difficulty() const = 0;
  virtual int max_difficulty() const = 0;
  virtual int default_difficulty() const = 0;

  // Problem `index` of `split`; deterministic; throws when difficulty is out of range.
  Problem generate(std::uint64_t index, Split split, int difficulty) const;
  std::uint64_t seed() const { return seed_; }

 protected:
  // One candidate drawn from rng; `canonical` identifies the problem (not its answer
  // wording). meta holds the task-specific keys only.
  struct Draft {
    std::string canonical, prompt, answer, cot;
    json::Value meta = json::Value::object();
  };
  virtual Draft draw(Rng& rng, int difficulty) const = 0;

 private:
  std::uint64_t seed_;
};

// Task-specific knobs; each task rejects the ones it does not take.
struct TaskOptions {
  // arithmetic: the operators drawn, a non-empty subset of "+-*" (each at most once);
  // "" = all three. Countdown takes no ops.
  std::string ops;
  // arithmetic: the chain-of-thought style, "full" (default: every column named,
  // every written digit stated) or "short" (one terse line per column / partial
  // product, about half the tokens). Countdown takes "" or "full".
  std::string cot;
};

// "arithmetic" or "countdown"; throws listing the known names otherwise, and on
// options the task does not take.
std::unique_ptr<Task> make_task(std::string_view name, std::uint64_t seed = 0, const TaskOptions& opts = {});
std::vector<std::string> task_names();
std::unique_ptr<Task> make_arithmetic_task(std::uint64_t seed, std::string ops = "+-*",
                                           bool short_cot = false);  // data/task_arithmetic.cpp
std::unique_ptr<Task> make_countdown_task(std::uint64_t seed);   // data/task_countdown.cpp

// The SFT completion for a problem (format above).
std::string sft_completion(const Problem& p);

// Countdown verifier. Contract: `expression` may contain only decimal integers
// (no sign, no decimal point), + - * /, parentheses and spaces; it must parse
// completely (no unary minus, no '=', at most 4096 bytes, nesting <= 64); each
// integer must be one of `numbers`, used at most as often as it occurs there (all
// of them, each exactly once, when require_all); the value, computed with exact
// rationals (so 7 / 2 * 2 = 7; division by zero is an error), must equal target.
// Never throws; reason says why not ("uses 7, which is not among the numbers").
struct CountdownVerdict {
  bool ok = false;
  std::string reason;  // "ok" when ok
};
CountdownVerdict verify_countdown(std::string_view expression, std::span<const std::int64_t> numbers,
                                  std::int64_t target, bool require_all = false);

}  // namespace crucible::data
