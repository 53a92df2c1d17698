// rewards/math_eval.h: values of parsed answers at a point (internal to math_compare).
//
// Val is an exact rational when every step so far was exact (128-bit, overflow
// falls back to double), an approximate double otherwise (irrationals, trig), or
// undefined (division by zero, sqrt of a negative, overflow from finite values).
// Evaluator charges one step per node against a fixed budget and a deadline and
// throws OutOfBudget past either; \pm nodes take the sign a Side's mask picks.
#pragma once

#include <chrono>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "rewards/math_expr.h"

namespace crucible::rewards::math {

struct OutOfBudget {};

struct Val {
  enum class S : std::uint8_t { Undef, Exact, Approx };
  S s = S::Undef;
  Rational q;
  double d = 0;

  static Val exact(const Rational& r) {
    Val v;
    v.s = S::Exact;
    v.q = r;
    v.d = rational_to_double(r);
    return v;
  }
  static Val approx(double x) {
    Val v;
    if (std::isnan(x)) return v;
    v.s = S::Approx;
    v.d = x;
    return v;
  }
  static Val integer(Int128 n) { return exact(Rational{n, 1}); }
  bool undef() const { return s == S::Undef; }
  bool is_exact() const { return s == S::Exact; }
};

// Arithmetic on values: exact while both operands are and the result fits, else
// double; an approximate result that overflowed from finite operands is undefined.
Val v_add(const Val& a, const Val& b);
Val v_neg(const Val& a);
Val v_mul(const Val& a, const Val& b);
Val v_inv(const Val& a);
bool is_zero(const Val& v, double abs_tol);

using Env = std::vector<std::pair<std::string, Val>>;

// A side of the comparison: a subtree, a chosen assignment of its \pm signs, or an
// infinite interval endpoint.
struct Side {
  const Expr* e = nullptr;
  std::int32_t id = -1;
  int mask = 0;           // \pm choices by ordinal (bit set: minus)
  bool expanded = false;  // \pm signs chosen (mask applies)
  int inf = 0;            // e == nullptr: +1 / -1 infinity
  const Node& node() const { return e->at(id); }
  Side child(std::int32_t k) const {
    Side s = *this;
    s.id = k;
    return s;
  }
};

inline Side infinity_side(int sign) {
  Side s;
  s.inf = sign;
  return s;
}

class Evaluator {
 public:
  Evaluator(const Expr& gold, const Expr& pred, std::int64_t max_steps, int time_ms);

  void tick();  // one step; throws OutOfBudget when the budget or the time is spent
  Val eval(const Side& s, const Env& env);
  int pm_ordinal(const Side& s) const;
  void collect_pm(const Side& s, std::vector<int>* out);
  void collect_symbols(const Side& s, std::vector<std::string>* out);
  // The value of variable `var` at point k: a fixed table of generic rationals.
  static Val point_value(int k, std::size_t var);

 private:
  void index_pm(int slot, const Expr& e);
  Val eval_func(const Node& n, const Side& s, const Env& env);

  std::chrono::steady_clock::time_point deadline_;
  std::int64_t steps_ = 0;
  std::uint64_t ticks_ = 0;
  const Expr* pm_expr_[2] = {nullptr, nullptr};
  std::vector<int> pm_ordinal_[2];
};

}  // namespace crucible::rewards::math
