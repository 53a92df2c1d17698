// tests/data/test_tasks.cpp: synthetic tasks: correct answers, chains of thought that
// end in them, difficulty, determinism, train/test disjointness, the Countdown verifier.
#include <set>
#include <string>
#include <vector>

#include "data/tasks.h"
#include "tests/catch.h"

using namespace crucible;
using namespace crucible::data;
using Catch::Contains;

namespace {

std::string last_line(const std::string& s) {
  const auto nl = s.rfind('\n');
  return nl == std::string::npos ? s : s.substr(nl + 1);
}

std::vector<std::int64_t> numbers_of(const Problem& p) {
  std::vector<std::int64_t> v;
  for (const json::Value& n : p.meta.at("numbers").as_array()) v.push_back(n.as_int64());
  return v;
}

int digits(std::int64_t v) { return static_cast<int>(std::to_string(v).size()); }

}  // namespace

TEST_CASE("tasks: arithmetic answers are exact and the CoT ends in them", "[tasks]") {
  const auto task = make_task("arithmetic", 0);
  std::set<std::string> ops;
  for (int d = task->min_difficulty(); d <= task->max_difficulty(); ++d) {
    for (std::uint64_t i = 0; i < 60; ++i) {
      const Problem p = task->generate(i, Split::Train, d);
      const std::int64_t a = p.meta.at("a").as_int64(), b = p.meta.at("b").as_int64();
      const std::string op = p.meta.at("op").as_string();
      ops.insert(op);
      const std::int64_t want = op == "+" ? a + b : op == "-" ? a - b : a * b;
      REQUIRE(p.answer == std::to_string(want));
      // Difficulty = digits of both operands.
      REQUIRE(digits(a) == d);
      REQUIRE(digits(b) == d);
      REQUIRE(p.prompt == "Compute " + std::to_string(a) + " " + op + " " + std::to_string(b) +
                              ". Put the final answer in \\boxed{}.");
      REQUIRE(last_line(p.cot) == "So " + std::to_string(a) + " " + op + " " + std::to_string(b) + " = " + p.answer + ".");
      REQUIRE(p.meta.at("difficulty").as_int64() == d);
      REQUIRE(p.meta.at("split").as_string() == "train");
    }
  }
  CHECK(ops == std::set<std::string>{"+", "-", "*"});
  CHECK_THROWS_WITH(task->generate(0, Split::Train, 10), Contains("difficulty 10 is out of range [1, 9]"));
}

TEST_CASE("tasks: arithmetic CoT shows carries, borrows and partial products", "[tasks]") {
  const auto task = make_task("arithmetic", 3);
  bool seen_carry = false, seen_borrow = false, seen_partial = false, seen_negative = false;
  for (std::uint64_t i = 0; i < 200; ++i) {
    const Problem p = task->generate(i, Split::Train, 4);
    const std::string op = p.meta.at("op").as_string();
    if (op == "+" && p.cot.find("carry 1.") != std::string::npos) seen_carry = true;
    if (op == "-" && p.cot.find("borrow 1.") != std::string::npos) seen_borrow = true;
    if (op == "-" && p.answer[0] == '-')
      seen_negative = seen_negative || p.cot.find("make the result negative") != std::string::npos;
    if (op == "*" && p.cot.find("Add the partial products.") != std::string::npos) seen_partial = true;
  }
  CHECK(seen_carry);
  CHECK(seen_borrow);
  CHECK(seen_partial);
  CHECK(seen_negative);
}

TEST_CASE("tasks: countdown references verify, difficulty sets the count", "[tasks]") {
  const auto task = make_task("countdown", 0);
  for (int d = task->min_difficulty(); d <= task->max_difficulty(); ++d) {
    for (std::uint64_t i = 0; i < 100; ++i) {
      const Problem p = task->generate(i, Split::Train, d);
      const auto nums = numbers_of(p);
      const std::int64_t target = p.meta.at("target").as_int64();
      REQUIRE(static_cast<int>(nums.size()) == 2 + d);
      REQUIRE(target >= 1);
      REQUIRE(target <= 999);
      for (std::int64_t n : nums) REQUIRE((n >= 1 && n <= 50));
      const CountdownVerdict v = verify_countdown(p.answer, nums, target, /*require_all=*/true);
      INFO(p.answer << " -> " << v.reason);
      REQUIRE(v.ok);
      REQUIRE(last_line(p.cot) == "So " + p.answer + " = " + std::to_string(target) + ".");
      REQUIRE(p.cot.find("That reaches " + std::to_string(target)) != std::string::npos);
      REQUIRE(p.meta.at("verifier").as_string() == "countdown");
    }
  }
}

TEST_CASE("tasks: generation is deterministic and keyed by seed, split and index", "[tasks]") {
  for (const std::string& name : task_names()) {
    const auto t0 = make_task(name, 0), t0b = make_task(name, 0), t1 = make_task(name, 1);
    const int d = t0->default_difficulty();
    const Problem a = t0->generate(5, Split::Train, d), b = t0b->generate(5, Split::Train, d);
    CHECK(a.prompt == b.prompt);
    CHECK(a.cot == b.cot);
    CHECK(a.id == b.id);
    CHECK(a.id == name + "-train-d" + std::to_string(d) + "-s0-5");
    int differ_seed = 0, differ_index = 0;
    for (std::uint64_t i = 0; i < 20; ++i) {
      differ_seed += t0->generate(i, Split::Train, d).prompt != t1->generate(i, Split::Train, d).prompt;
      differ_index += t0->generate(i, Split::Train, d).prompt != t0->generate(i + 1, Split::Train, d).prompt;
    }
    CHECK(differ_seed >= 18);
    CHECK(differ_index >= 18);
  }
  CHECK_THROWS_WITH(make_task("sudoku"), Contains("known tasks: arithmetic, countdown"));
  CHECK(parse_split("test") == Split::Test);
  CHECK_THROWS(parse_split("val"));
}

TEST_CASE("tasks: train and held-out splits never overlap", "[tasks]") {
  // 20k train + 2k test per task, at a low difficulty where collisions would be
  // frequent if the partition leaked; test problems also come from another seed.
  for (const std::string& name : task_names()) {
    const int d = 1;
    const auto train_task = make_task(name, 0), test_task = make_task(name, 1);
    std::set<std::string> train, test;
    for (std::uint64_t i = 0; i < 20000; ++i) {
      const Problem p = train_task->generate(i, Split::Train, d);
      REQUIRE(split_of_canonical(p.meta.at("canonical").as_string()) == Split::Train);
      train.insert(p.meta.at("canonical").as_string());
    }
    for (std::uint64_t i = 0; i < 2000; ++i) {
      const Problem p = (i % 2 ? train_task : test_task)->generate(i, Split::Test, d);
      REQUIRE(split_of_canonical(p.meta.at("canonical").as_string()) == Split::Test);
      test.insert(p.meta.at("canonical").as_string());
    }
    std::size_t overlap = 0;
    for (const std::string& c : test) overlap += train.count(c);
    INFO(name << ": " << train.size() << " distinct train, " << test.size() << " distinct test");
    CHECK(overlap == 0);
    CHECK(test.size() > 50);  // the held-out space is not degenerate
  }
  // Commuted operands are one problem: 3 + 5 and 5 + 3 land in the same split.
  CHECK(split_of_canonical("3+5") == split_of_canonical("3+5"));
}

TEST_CASE("tasks: the SFT completion format", "[tasks]") {
  Problem p;
  p.cot = "step 1\nSo 2 + 2 = 4.";
  p.answer = "4";
  CHECK(sft_completion(p) == "<think>\nstep 1\nSo 2 + 2 = 4.\n</think>\n\nThe answer is \\boxed{4}.");
  const Problem q = make_task("countdown")->generate(0, Split::Test, 1);
  const std::string c = sft_completion(q);
  CHECK(c.rfind("<think>\n", 0) == 0);
  CHECK_THAT(c, Contains("\n</think>\n\nThe answer is \\boxed{" + q.answer + "}."));
}

TEST_CASE("tasks: the countdown verifier rejects misuse and malformed input", "[tasks]") {
  const std::vector<std::int64_t> nums = {25, 5, 4, 3};
  auto verdict = [&](const char* e, std::int64_t target = 83, bool all = false) {
    return verify_countdown(e, nums, target, all);
  };
  CHECK(verdict("(25 - 5) * 4 + 3").ok);
  CHECK(verdict("  (25-5)*4+3 ").ok);
  CHECK(verdict("(25 - 5) * 4 + 3").reason == "ok");
  CHECK(verdict("25 * 4 - 5 * 3 - 2", 83).reason == "uses 2, which is not among the numbers");
  CHECK(verdict("25 + 25 + 25 + 5 + 3").reason == "uses 25 more often than it is given");
  CHECK(verdict("25 * 4 - 5 * 3").reason == "evaluates to 85, not 83");
  CHECK(verdict("25 * 4", 100).ok);                     // at most once: subsets are fine
  CHECK(!verdict("25 * 4", 100, /*all=*/true).ok);      // unless every number is required
  CHECK_THAT(verdict("25 * 4", 100, true).reason, Contains("does not use 3"));
  CHECK_THAT(verdict("(25 - 5) * 4 + 3 = 83").reason, Contains("unexpected '=' at column 18"));
  CHECK_THAT(verdict("(25 - 5 * 4 + 3").reason, Contains("unbalanced parentheses"));
  CHECK_THAT(verdict("25 +").reason, Contains("ends early"));
  CHECK_THAT(verdict("").reason, Contains("empty expression"));
  CHECK_THAT(verdict("   ").reason, Contains("empty expression"));
  CHECK_THAT(verdict("-3 + 25").reason, Contains("unary"));
  CHECK_THAT(verdict("2.5 * 4").reason, Contains("decimal"));
  CHECK_THAT(verdict("25 4").reason, Contains("unexpected '4'"));
  CHECK_THAT(verdict("import os").reason, Contains("unexpected 'i'"));
  CHECK_THAT(verify_countdown("4 / (5 - 5)", nums, 1).reason, Contains("division by zero"));
  // Exact rationals: 7 / 2 * 2 = 7 (no float rounding), 25 / 4 is not 6.
  CHECK(verify_countdown("7 / 2 * 2", std::vector<std::int64_t>{7, 2, 2}, 7).ok);
  CHECK(verify_countdown("(3 - 25 / 5) * 4", nums, -8).ok);  // negative intermediates are fine
  CHECK(verify_countdown("25 / 4", nums, 6).reason == "evaluates to 25/4, not 6");
  // Hostile input: deep nesting, huge numbers, long strings, control bytes.
  CHECK_THAT(verdict(std::string(100, '(').append("3").append(100, ')').c_str(), 3).reason, Contains("nest deeper"));
  const std::vector<std::int64_t> big = {999999999999999999, 999999999999999998};
  CHECK_THAT(verify_countdown("999999999999999999 * 999999999999999998", big, 1).reason, Contains("too large"));
  CHECK_THAT(verify_countdown("1234567890123456789", nums, 1).reason, Contains("more than 18 digits"));
  CHECK_THAT(verify_countdown(std::string(5000, '1'), nums, 1).reason, Contains("longer than 4096"));
  CHECK_THAT(verify_countdown(std::string_view("3\0", 2), nums, 3).reason, Contains("\\x00"));
}

TEST_CASE("tasks: arithmetic ops subset and short chain of thought", "[tasks]") {
  const auto task = make_task("arithmetic", 0, TaskOptions{"+-", "short"});
  const auto full = make_task("arithmetic", 0, TaskOptions{"+-", ""});
  std::set<std::string> ops;
  std::size_t short_chars = 0, full_chars = 0;
  for (std::uint64_t i = 0; i < 200; ++i) {
    const Problem p = task->generate(i, Split::Train, 3), q = full->generate(i, Split::Train, 3);
    REQUIRE(p.prompt == q.prompt);  // the style changes the chain of thought only
    REQUIRE(p.answer == q.answer);
    ops.insert(p.meta.at("op").as_string());
    REQUIRE(last_line(p.cot) == last_line(q.cot));
    short_chars += p.cot.size();
    full_chars += q.cot.size();
  }
  CHECK(ops == std::set<std::string>{"+", "-"});
  CHECK(short_chars * 2 < full_chars + full_chars / 4);  // about half the text
  // The default keeps the problems every earlier run drew.
  CHECK(make_task("arithmetic", 5)->generate(7, Split::Test, 2).prompt ==
        make_task("arithmetic", 5, TaskOptions{"+-*", "full"})->generate(7, Split::Test, 2).prompt);
  CHECK_THROWS_WITH(make_task("arithmetic", 0, TaskOptions{"+/", ""}), Contains("has '/'"));
  CHECK_THROWS_WITH(make_task("arithmetic", 0, TaskOptions{"++", ""}), Contains("repeats '+'"));
  CHECK_THROWS_WITH(make_task("arithmetic", 0, TaskOptions{"", "terse"}), Contains("is not full or short"));
  CHECK_THROWS_WITH(make_task("countdown", 0, TaskOptions{"+", ""}), Contains("takes no ops"));
}
