// data/tasks.cpp: what every task shares: split partition, keyed generation, ids, registry,
// the SFT completion format.
//
// Invariant: generate(index, split, d) returns a problem whose canonical form
// split_of_canonical() assigns to `split`, so Train and Test are disjoint for any
// seeds and difficulties; the same arguments give the same problem on every platform.
// Reference: splitmix64 finalizer (Steele et al., OOPSLA'14); FNV-1a 64;
// DeepSeek-R1 cold-start format (reference/r1_recipe.md §4: reasoning then summary
// with \boxed{}).
#include "data/tasks.h"

#include "core/error.h"
#include "core/rng.h"

namespace crucible::data {

namespace {

std::uint64_t fnv1a64(std::string_view s) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

std::uint64_t mix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Draws that land in the other split are redrawn; a quarter of the space is Test,
// so a Test problem needs 4 draws on average. A task whose space is empty for a
// split would loop forever without this bound.
constexpr int kMaxDraws = 100000;

}  // namespace

std::string_view split_name(Split s) { return s == Split::Train ? "train" : "test"; }

Split parse_split(std::string_view s) {
  if (s == "train") return Split::Train;
  if (s == "test") return Split::Test;
  CRUCIBLE_FAIL("unknown split '", s, "' (expected train or test)");
}

Split split_of_canonical(std::string_view canonical) {
  // NOTE: the key is a constant on purpose: a seed must never move a problem
  // from the held-out quarter into a training set.
  const std::uint64_t h = mix64(fnv1a64(canonical) ^ 0x7370'6c69'7430'7631ull);  // "split0v1"
  return (h >> 62) == 0 ? Split::Test : Split::Train;
}

Problem Task::generate(std::uint64_t index, Split split, int difficulty) const {
  CRUCIBLE_USER_CHECK(difficulty >= min_difficulty() && difficulty <= max_difficulty(), "task ", name(),
                      ": difficulty ", difficulty, " is out of range [", min_difficulty(), ", ",
                      max_difficulty(), "]");
  std::uint64_t key = mix64(fnv1a64(name()) ^ seed_);
  key = mix64(key ^ (split == Split::Train ? 0x5452ull : 0x5445ull));  // "TR" / "TE"
  key = mix64(key ^ static_cast<std::uint64_t>(difficulty));
  Rng rng(key, index);
  for (int draw = 0; draw < kMaxDraws; ++draw) {
    Draft d = this->draw(rng, difficulty);
    if (split_of_canonical(d.canonical) != split) continue;
    Problem p;
    p.id = detail::concat(name(), '-', split_name(split), "-d", difficulty, "-s", seed_, '-', index);
    p.prompt = std::move(d.prompt);
    p.answer = std::move(d.answer);
    p.cot = std::move(d.cot);
    p.meta = json::Value::object();
    p.meta.set("task", std::string(name()));
    p.meta.set("split", std::string(split_name(split)));
    p.meta.set("difficulty", difficulty);
    // Seeds and indices above 2^63 are stored as text (JSON integers here are int64).
    p.meta.set("seed", seed_ <= static_cast<std::uint64_t>(INT64_MAX) ? json::Value(seed_)
                                                                      : json::Value(std::to_string(seed_)));
    p.meta.set("index", index <= static_cast<std::uint64_t>(INT64_MAX) ? json::Value(index)
                                                                       : json::Value(std::to_string(index)));
    p.meta.set("canonical", d.canonical);
    for (auto& [k, v] : d.meta.as_object()) p.meta.set(k, std::move(v));
    return p;
  }
  CRUCIBLE_FAIL("task ", name(), ": no ", split_name(split), " problem at difficulty ", difficulty, " after ",
                kMaxDraws, " draws");
}

std::vector<std::string> task_names() { return {"arithmetic", "countdown"}; }

std::unique_ptr<Task> make_task(std::string_view name, std::uint64_t seed, const TaskOptions& opts) {
  CRUCIBLE_USER_CHECK(opts.cot.empty() || opts.cot == "full" || opts.cot == "short", "task ", name, ": cot '",
                      opts.cot, "' is not full or short");
  if (name == "arithmetic")
    return make_arithmetic_task(seed, opts.ops.empty() ? "+-*" : opts.ops, opts.cot == "short");
  if (name == "countdown") {
    CRUCIBLE_USER_CHECK(opts.ops.empty(), "task countdown takes no ops (got '", opts.ops, "')");
    CRUCIBLE_USER_CHECK(opts.cot != "short", "task countdown has no short chain of thought");
    return make_countdown_task(seed);
  }
  std::string known;
  for (const std::string& n : task_names()) known += (known.empty() ? "" : ", ") + n;
  CRUCIBLE_FAIL("unknown task '", name, "' (known tasks: ", known, ")");
}

std::string sft_completion(const Problem& p) {
  return "<think>\n" + p.cot + "\n</think>\n\nThe answer is \\boxed{" + p.answer + "}.";
}

}  // namespace crucible::data
