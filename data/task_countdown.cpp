// data/task_countdown.cpp: Countdown (reach a target from given numbers) and its verifier.
//
// Invariant: every generated target is reached by the reference expression, which
// uses each given number exactly once (so it passes verify_countdown under either
// rule); the chain of thought is a search trace of a few combinations that miss,
// then the one that reaches the target; its last line is "So <answer> = <target>.".
// The verifier parses with a bounded recursive descent and exact rationals, so no
// input can crash it, overflow silently or run long.
// Reference: TinyZero countdown reward (reference/r1_recipe.md §7.1, §8.3: enforce the
// number multiset and a restricted character set before evaluating).
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <numeric>
#include <string>

#include "core/error.h"
#include "core/rng.h"
#include "data/tasks.h"

namespace crucible::data {

namespace {

// ---------------------------------------------------------------------------- generator

constexpr std::int64_t kMaxNumber = 50, kMaxTarget = 999, kMaxIntermediate = 1000000;

// An expression over some of the numbers, printed with the fewest parentheses.
struct Expr {
  std::int64_t value;
  std::string text;
  int prec;  // 3 atom, 2 product, 1 sum
};

std::string wrap(const Expr& e, bool paren) { return paren ? "(" + e.text + ")" : e.text; }

// x op y when the result is a positive integer within bounds; false otherwise.
bool combine(const Expr& x, const Expr& y, char op, Expr& out) {
  switch (op) {
    case '+': out = {x.value + y.value, x.text + " + " + y.text, 1}; break;
    case '-':
      if (x.value <= y.value) return false;  // keep every intermediate positive
      out = {x.value - y.value, x.text + " - " + wrap(y, y.prec <= 1), 1};
      break;
    case '*':
      if (x.value == 1 || y.value == 1) return false;  // a no-op step
      out = {x.value * y.value, wrap(x, x.prec < 2) + " * " + wrap(y, y.prec < 2), 2};
      break;
    default:  // '/'
      if (y.value <= 1 || x.value % y.value != 0) return false;
      out = {x.value / y.value, wrap(x, x.prec < 2) + " / " + wrap(y, y.prec <= 2), 2};
  }
  return out.value <= kMaxIntermediate;
}

// Combines random pairs until one expression is left; `steps` gets "a op b = c"
// per combination. False when a pair found no valid operation.
bool random_tree(const std::vector<std::int64_t>& numbers, Rng& rng, Expr& out, std::vector<std::string>& steps) {
  std::vector<Expr> pool;
  for (std::int64_t n : numbers) pool.push_back({n, std::to_string(n), 3});
  steps.clear();
  static const char kOps[] = {'+', '-', '*', '/'};
  while (pool.size() > 1) {
    const std::size_t i = rng.below(pool.size());
    std::size_t j = rng.below(pool.size() - 1);
    if (j >= i) ++j;
    Expr e;
    bool ok = false;
    const std::size_t first = rng.below(4);
    for (std::size_t k = 0; k < 4 && !ok; ++k) {
      const char op = kOps[(first + k) % 4];
      // Try the pair both ways so that - and / can put the larger value first.
      std::size_t l = i, r = j;
      ok = combine(pool[l], pool[r], op, e);
      if (!ok) {
        std::swap(l, r);
        ok = combine(pool[l], pool[r], op, e);
      }
      if (ok)
        steps.push_back(std::to_string(pool[l].value) + " " + op + " " + std::to_string(pool[r].value) + " = " +
                        std::to_string(e.value));
    }
    if (!ok) return false;
    pool.erase(pool.begin() + static_cast<std::ptrdiff_t>(std::max(i, j)));
    pool.erase(pool.begin() + static_cast<std::ptrdiff_t>(std::min(i, j)));
    pool.push_back(std::move(e));
  }
  out = pool[0];
  return true;
}

std::string join(const std::vector<std::int64_t>& v, const char* sep = ", ") {
  std::string s;
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? sep : "") + std::to_string(v[i]);
  return s;
}

std::string join_steps(const std::vector<std::string>& steps) {
  std::string s;
  for (std::size_t i = 0; i < steps.size(); ++i) s += (i ? ", " : "") + steps[i];
  return s;
}

class CountdownTask final : public Task {
 public:
  using Task::Task;
  std::string_view name() const override { return "countdown"; }
  int min_difficulty() const override { return 1; }
  int max_difficulty() const override { return 4; }
  int default_difficulty() const override { return 2; }

 protected:
  Draft draw(Rng& rng, int difficulty) const override {
    const int k = 2 + difficulty;
    std::vector<std::int64_t> numbers;
    Expr ref;
    std::vector<std::string> ref_steps;
    for (;;) {  // a tree that fails the bounds is redrawn (a few draws on average)
      numbers.clear();
      for (int i = 0; i < k; ++i) numbers.push_back(1 + static_cast<std::int64_t>(rng.below(kMaxNumber)));
      if (!random_tree(numbers, rng, ref, ref_steps)) continue;
      if (ref.value < 1 || ref.value > kMaxTarget) continue;
      if (std::find(numbers.begin(), numbers.end(), ref.value) != numbers.end()) continue;  // trivial
      break;
    }
    const std::int64_t target = ref.value;
    std::vector<std::int64_t> sorted = numbers;
    std::sort(sorted.begin(), sorted.end());

    Draft d;
    d.canonical = join(sorted, ",") + "->" + std::to_string(target);
    d.answer = ref.text;
    d.prompt = "Using the numbers [" + join(numbers) + "], write an expression that equals " + std::to_string(target) +
               ". You may use +, -, *, / and parentheses, and each number at most once. Put only the expression "
               "(without \"= " + std::to_string(target) + "\") in \\boxed{}.";

    // The search trace: 1-3 attempts that miss, then the reference.
    std::string cot = "I need to reach " + std::to_string(target) + " using " + join(numbers) +
                      ", each at most once, with +, -, *, /.\n";
    const int misses = 1 + static_cast<int>(rng.below(3));
    int shown = 0;
    for (int tries = 0; shown < misses && tries < 32; ++tries) {
      Expr e;
      std::vector<std::string> steps;
      if (!random_tree(numbers, rng, e, steps) || e.value == target) continue;
      cot += "Try " + join_steps(steps) + ". That gives " + std::to_string(e.value) + ", not " +
             std::to_string(target) + " (off by " + std::to_string(std::abs(e.value - target)) + ").\n";
      ++shown;
    }
    cot += "Try " + join_steps(ref_steps) + ". That reaches " + std::to_string(target) + ".\n";
    cot += "Check: " + ref.text + " uses " + join(numbers) + ", each once.\n";
    cot += "So " + ref.text + " = " + std::to_string(target) + ".";
    d.cot = std::move(cot);

    json::Value nums = json::Value::array();
    for (std::int64_t n : numbers) nums.push_back(n);
    d.meta.set("numbers", std::move(nums));
    d.meta.set("target", target);
    d.meta.set("verifier", "countdown");
    return d;
  }
};

// ---------------------------------------------------------------------------- verifier

constexpr std::size_t kMaxExpressionBytes = 4096;
constexpr int kMaxDepth = 64;
constexpr __int128 kMaxMagnitude = static_cast<__int128>(1000000000000000000ll);  // 1e18

struct Rational {
  __int128 num = 0, den = 1;  // den > 0, reduced
};

__int128 abs128(__int128 v) { return v < 0 ? -v : v; }
__int128 gcd128(__int128 a, __int128 b) {
  a = abs128(a), b = abs128(b);
  while (b != 0) {
    const __int128 t = a % b;
    a = b, b = t;
  }
  return a;
}

struct VerifyFail {
  std::string reason;
};

// Recursive descent over: expr = term {(+|-) term}; term = factor {(*|/) factor};
// factor = integer | "(" expr ")".
class Parser {
 public:
  explicit Parser(std::string_view s) : s_(s) {}

  Rational parse_all() {
    Rational v = expr(0);
    skip();
    if (p_ < s_.size()) unexpected();
    return v;
  }
  std::vector<std::int64_t> used;

 private:
  [[noreturn]] void fail(std::string why) { throw VerifyFail{std::move(why)}; }
  [[noreturn]] void unexpected() {
    if (p_ >= s_.size()) fail("the expression ends early");
    const char c = s_[p_];
    std::string shown = (c >= 0x20 && c < 0x7f) ? std::string(1, c) : "\\x" + hex(static_cast<unsigned char>(c));
    std::string why = "unexpected '" + shown + "' at column " + std::to_string(p_ + 1);
    if (c == '=') why += " (give the expression only, without '= target')";
    fail(why);
  }
  static std::string hex(unsigned v) {
    const char* d = "0123456789abcdef";
    return {d[v >> 4], d[v & 15]};
  }
  void skip() {
    while (p_ < s_.size() && (s_[p_] == ' ' || s_[p_] == '\t')) ++p_;
  }
  Rational make(__int128 num, __int128 den) {
    if (den == 0) fail("division by zero");
    if (den < 0) num = -num, den = -den;
    const __int128 g = gcd128(num, den);
    if (g > 1) num /= g, den /= g;
    if (abs128(num) > kMaxMagnitude || den > kMaxMagnitude) fail("an intermediate value is too large");
    return {num, den};
  }
  Rational apply(const Rational& a, char op, const Rational& b) {
    switch (op) {
      case '+': return make(a.num * b.den + b.num * a.den, a.den * b.den);
      case '-': return make(a.num * b.den - b.num * a.den, a.den * b.den);
      case '*': return make(a.num * b.num, a.den * b.den);
      default: return make(a.num * b.den, a.den * b.num);
    }
  }
  Rational expr(int depth) {
    Rational v = term(depth);
    for (;;) {
      skip();
      if (p_ >= s_.size() || (s_[p_] != '+' && s_[p_] != '-')) return v;
      const char op = s_[p_++];
      v = apply(v, op, term(depth));
    }
  }
  Rational term(int depth) {
    Rational v = factor(depth);
    for (;;) {
      skip();
      if (p_ >= s_.size() || (s_[p_] != '*' && s_[p_] != '/')) return v;
      const char op = s_[p_++];
      v = apply(v, op, factor(depth));
    }
  }
  Rational factor(int depth) {
    skip();
    if (p_ >= s_.size()) fail("the expression ends early");
    const char c = s_[p_];
    if (c == '(') {
      if (depth >= kMaxDepth) fail("parentheses nest deeper than " + std::to_string(kMaxDepth));
      ++p_;
      Rational v = expr(depth + 1);
      skip();
      if (p_ >= s_.size() || s_[p_] != ')') fail("unbalanced parentheses");
      ++p_;
      return v;
    }
    if (c == '-' || c == '+') fail("a sign before a number (unary " + std::string(1, c) + ") is not allowed");
    if (c < '0' || c > '9') unexpected();
    std::int64_t v = 0;
    std::size_t digits = 0;
    while (p_ < s_.size() && s_[p_] >= '0' && s_[p_] <= '9') {
      if (++digits > 18) fail("a number has more than 18 digits");
      v = v * 10 + (s_[p_++] - '0');
    }
    if (p_ < s_.size() && s_[p_] == '.') fail("decimal numbers are not allowed");
    used.push_back(v);
    return {v, 1};
  }

  std::string_view s_;
  std::size_t p_ = 0;
};

}  // namespace

std::unique_ptr<Task> make_countdown_task(std::uint64_t seed) { return std::make_unique<CountdownTask>(seed); }

CountdownVerdict verify_countdown(std::string_view expression, std::span<const std::int64_t> numbers,
                                  std::int64_t target, bool require_all) {
  auto no = [](std::string why) { return CountdownVerdict{false, std::move(why)}; };
  if (expression.size() > kMaxExpressionBytes)
    return no("the expression is longer than " + std::to_string(kMaxExpressionBytes) + " bytes");
  if (expression.find_first_not_of(" \t") == std::string_view::npos) return no("empty expression");
  Parser parser(expression);
  Rational value;
  try {
    value = parser.parse_all();
  } catch (const VerifyFail& f) {
    return no(f.reason);
  }
  std::map<std::int64_t, int> left;
  for (std::int64_t n : numbers) ++left[n];
  for (std::int64_t u : parser.used) {
    auto it = left.find(u);
    if (it == left.end()) return no("uses " + std::to_string(u) + ", which is not among the numbers");
    if (it->second == 0) return no("uses " + std::to_string(u) + " more often than it is given");
    --it->second;
  }
  if (require_all)
    for (const auto& [n, count] : left)
      if (count > 0) return no("does not use " + std::to_string(n) + " (every number must be used once)");
  if (value.den != 1 || value.num != target) {
    std::string v = std::to_string(static_cast<long long>(value.num));
    if (value.den != 1) v += "/" + std::to_string(static_cast<long long>(value.den));
    return no("evaluates to " + v + ", not " + std::to_string(target));
  }
  return {true, "ok"};
}

}  // namespace crucible::data
