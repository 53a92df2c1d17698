// data/task_arithmetic.cpp: multi-digit +, -, * with column-wise chains of thought.
//
// Invariant: the answer is the exact integer value of the problem, and the chain
// of thought derives it digit by digit (carries for +, borrows for -, partial
// products and their running sum for *); its last line is "So <a> <op> <b> = <answer>."
// Two styles (TaskOptions::cot): "full" names every column and its written digit;
// "short" keeps one terse line per step. Operands have exactly `difficulty` digits (1 digit: 0..9), so 9 digits keep
// every product below 10^18 (int64).
// Reference: schoolbook algorithms (Knuth, TAOCP vol. 2 §4.3.1).
#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>

#include "core/error.h"
#include "core/rng.h"
#include "data/tasks.h"

namespace crucible::data {

namespace {

std::int64_t pow10(int d) {
  std::int64_t p = 1;
  for (int i = 0; i < d; ++i) p *= 10;
  return p;
}

// "ones", "tens", ... for column i (0 = ones).
std::string column_name(std::size_t i) {
  static const char* kNames[] = {"ones",          "tens",         "hundreds",          "thousands",
                                 "ten-thousands", "hundred-thousands", "millions", "ten-millions",
                                 "hundred-millions", "billions"};
  return i < std::size(kNames) ? kNames[i] : "10^" + std::to_string(i);
}

std::string digits_of(std::int64_t v) { return std::to_string(v); }  // v >= 0
int digit(const std::string& s, std::size_t col) {  // col 0 = last character; 0 past the front
  return col < s.size() ? s[s.size() - 1 - col] - '0' : 0;
}

std::string cot_add(std::int64_t a, std::int64_t b) {
  const std::string x = digits_of(a), y = digits_of(b);
  std::string out = "Add " + x + " and " + y + " column by column, starting from the ones.\n";
  const std::size_t cols = std::max(x.size(), y.size());
  int carry = 0;
  for (std::size_t i = 0; i < cols; ++i) {
    const int s = digit(x, i) + digit(y, i) + carry;
    out += column_name(i) + ": " + std::to_string(digit(x, i)) + " + " + std::to_string(digit(y, i));
    if (i > 0) out += " + carry " + std::to_string(carry);
    out += " = " + std::to_string(s) + ". Write " + std::to_string(s % 10) + ", carry " + std::to_string(s / 10) +
           ".\n";
    carry = s / 10;
  }
  if (carry) out += "The final carry " + std::to_string(carry) + " becomes the leading digit.\n";
  out += "So " + x + " + " + y + " = " + std::to_string(a + b) + ".";
  return out;
}

// big >= small >= 0: the column lines of big - small.
std::string borrow_columns(std::int64_t big, std::int64_t small) {
  const std::string x = digits_of(big), y = digits_of(small);
  std::string out = "Subtract " + y + " from " + x + " column by column, starting from the ones.\n";
  int borrow = 0;
  std::string written;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const int dx = digit(x, i), dy = digit(y, i);
    int v = dx - dy - borrow;
    out += column_name(i) + ": " + std::to_string(dx) + " - " + std::to_string(dy);
    if (i > 0) out += " - borrow " + std::to_string(borrow);
    if (v < 0) {
      v += 10;
      out += " is negative, so borrow ten: " + std::to_string(10 + dx) + " - " + std::to_string(dy);
      if (i > 0) out += " - " + std::to_string(borrow);
      out += " = " + std::to_string(v) + ". Write " + std::to_string(v) + ", borrow 1.\n";
      borrow = 1;
    } else {
      out += " = " + std::to_string(v) + ". Write " + std::to_string(v) + ", borrow 0.\n";
      borrow = 0;
    }
    written.insert(written.begin(), static_cast<char>('0' + v));
  }
  const std::string value = std::to_string(big - small);
  if (written != value) out += "The digits read " + written + "; without leading zeros that is " + value + ".\n";
  return out;
}

std::string cot_sub(std::int64_t a, std::int64_t b) {
  std::string out;
  if (a >= b) {
    out = borrow_columns(a, b);
  } else {
    out = std::to_string(a) + " is less than " + std::to_string(b) + ", so compute " + std::to_string(b) + " - " +
          std::to_string(a) + " and make the result negative.\n";
    out += borrow_columns(b, a);
    out += std::to_string(b) + " - " + std::to_string(a) + " = " + std::to_string(b - a) + ", so the result is " +
           std::to_string(a - b) + ".\n";
  }
  out += "So " + std::to_string(a) + " - " + std::to_string(b) + " = " + std::to_string(a - b) + ".";
  return out;
}

std::string cot_mul(std::int64_t a, std::int64_t b) {
  const std::string x = digits_of(a), y = digits_of(b);
  std::string out = "Multiply " + x + " by " + y + " with partial products, one digit of " + y + " at a time.\n";
  std::int64_t sum = 0;
  bool started = false;
  std::string sums;
  for (std::size_t i = 0; i < y.size(); ++i) {
    const int d = digit(y, i);
    const std::int64_t part = a * d, shifted = part * pow10(static_cast<int>(i));
    out += x + " * " + std::to_string(d) + " (" + column_name(i) + ") = " + std::to_string(part);
    if (d == 0) {
      out += ", nothing to add.\n";
      continue;
    }
    if (i > 0) out += ", shifted " + std::to_string(i) + " place" + (i > 1 ? "s" : "") + ": " + std::to_string(shifted);
    out += ".\n";
    if (started) sums += std::to_string(sum) + " + " + std::to_string(shifted) + " = " + std::to_string(sum + shifted) + ".\n";
    sum += shifted;
    started = true;
  }
  if (!sums.empty()) out += "Add the partial products.\n" + sums;
  out += "So " + x + " * " + y + " = " + std::to_string(a * b) + ".";
  return out;
}

// The short style: the same derivation with one terse line per column (or partial
// product) and no column names, about half the tokens of the full style; for
// small models and CPU budgets. Its last line is the same "So a op b = value.".
std::string short_add(std::int64_t a, std::int64_t b) {
  const std::string x = digits_of(a), y = digits_of(b);
  std::string out = x + " + " + y + ", ones first.\n";
  const std::size_t cols = std::max(x.size(), y.size());
  int carry = 0;
  for (std::size_t i = 0; i < cols; ++i) {
    const int s = digit(x, i) + digit(y, i) + carry;
    out += std::to_string(digit(x, i)) + " + " + std::to_string(digit(y, i));
    if (i > 0) out += " + " + std::to_string(carry);
    out += " = " + std::to_string(s) + ", carry " + std::to_string(s / 10) + ".\n";
    carry = s / 10;
  }
  out += "So " + x + " + " + y + " = " + std::to_string(a + b) + ".";
  return out;
}

std::string short_borrow_columns(std::int64_t big, std::int64_t small) {
  const std::string x = digits_of(big), y = digits_of(small);
  std::string out = x + " - " + y + ", ones first.\n";
  int borrow = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const int dx = digit(x, i), dy = digit(y, i);
    const int v = dx - dy - borrow;
    out += std::to_string(dx) + " - " + std::to_string(dy);
    if (i > 0) out += " - " + std::to_string(borrow);
    if (v < 0) {
      out += " < 0, so " + std::to_string(10 + dx) + " - " + std::to_string(dy);
      if (i > 0) out += " - " + std::to_string(borrow);
      out += " = " + std::to_string(v + 10) + ", borrow 1.\n";
      borrow = 1;
    } else {
      out += " = " + std::to_string(v) + ", borrow 0.\n";
      borrow = 0;
    }
  }
  return out;
}

std::string short_sub(std::int64_t a, std::int64_t b) {
  std::string out;
  if (a >= b) {
    out = short_borrow_columns(a, b);
  } else {
    out = std::to_string(a) + " < " + std::to_string(b) + ": negate " + std::to_string(b) + " - " +
          std::to_string(a) + ".\n" + short_borrow_columns(b, a);
  }
  out += "So " + std::to_string(a) + " - " + std::to_string(b) + " = " + std::to_string(a - b) + ".";
  return out;
}

std::string short_mul(std::int64_t a, std::int64_t b) {
  const std::string x = digits_of(a), y = digits_of(b);
  std::string out = x + " * " + y + ", one digit of " + y + " at a time.\n";
  std::int64_t sum = 0;
  for (std::size_t i = 0; i < y.size(); ++i) {
    const int d = digit(y, i);
    const std::int64_t shifted = a * d * pow10(static_cast<int>(i));
    out += x + " * " + std::to_string(d);
    if (i > 0) out += "0" + std::string(i - 1, '0');
    out += " = " + std::to_string(shifted) + ".\n";
    if (i > 0 && d != 0 && sum != 0) out += std::to_string(sum) + " + " + std::to_string(shifted) + " = " +
                                            std::to_string(sum + shifted) + ".\n";
    sum += shifted;
  }
  out += "So " + x + " * " + y + " = " + std::to_string(a * b) + ".";
  return out;
}

class ArithmeticTask final : public Task {
 public:
  ArithmeticTask(std::uint64_t seed, std::string ops, bool short_cot)
      : Task(seed), ops_(std::move(ops)), short_(short_cot) {
    CRUCIBLE_USER_CHECK(!ops_.empty(), "arithmetic: ops is empty (expected a subset of \"+-*\")");
    for (std::size_t i = 0; i < ops_.size(); ++i) {
      CRUCIBLE_USER_CHECK(ops_[i] == '+' || ops_[i] == '-' || ops_[i] == '*', "arithmetic: ops '", ops_,
                          "' has '", ops_[i], "' (expected a subset of \"+-*\")");
      CRUCIBLE_USER_CHECK(ops_.find(ops_[i]) == i, "arithmetic: ops '", ops_, "' repeats '", ops_[i], "'");
    }
  }
  std::string_view name() const override { return "arithmetic"; }
  int min_difficulty() const override { return 1; }
  int max_difficulty() const override { return 9; }
  int default_difficulty() const override { return 3; }

 protected:
  Draft draw(Rng& rng, int difficulty) const override {
    const std::int64_t lo = difficulty == 1 ? 0 : pow10(difficulty - 1), hi = pow10(difficulty) - 1;
    const auto pick = [&] { return lo + static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(hi - lo + 1))); };
    const std::int64_t a = pick(), b = pick();
    const char op = ops_[rng.below(ops_.size())];
    Draft d;
    const std::string sa = std::to_string(a), sb = std::to_string(b);
    std::int64_t value = 0;
    switch (op) {
      case '+': value = a + b; d.cot = short_ ? short_add(a, b) : cot_add(a, b); break;
      case '-': value = a - b; d.cot = short_ ? short_sub(a, b) : cot_sub(a, b); break;
      default: value = a * b; d.cot = short_ ? short_mul(a, b) : cot_mul(a, b); break;
    }
    // + and * commute: 3 + 5 and 5 + 3 are one problem (and land in one split).
    const bool commutes = op != '-';
    d.canonical = commutes ? std::to_string(std::min(a, b)) + op + std::to_string(std::max(a, b)) : sa + op + sb;
    d.prompt = "Compute " + sa + " " + op + " " + sb + ". Put the final answer in \\boxed{}.";
    d.answer = std::to_string(value);
    d.meta.set("a", a);
    d.meta.set("b", b);
    d.meta.set("op", std::string(1, op));
    return d;
  }

 private:
  std::string ops_;
  bool short_;
};

}  // namespace

std::unique_ptr<Task> make_arithmetic_task(std::uint64_t seed, std::string ops, bool short_cot) {
  return std::make_unique<ArithmeticTask>(seed, std::move(ops), short_cot);
}

}  // namespace crucible::data
