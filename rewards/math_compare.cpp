// rewards/math_compare.cpp: numeric, symbolic and structural answer equality (see math_compare.h).
//
// Invariant: compare() never throws; every node evaluation costs one step of a
// fixed budget (and the clock is checked every 1024 steps), so a hostile
// expression ends as OutOfTime, not a hang. Random points are a fixed table, so
// the same inputs give the same verdict on every machine.
// Reference: huggingface/Math-Verify grader.py (verify, sympy_expr_eq), whose
// rules this mirrors for the forms crucible parses (reference/r1_recipe.md §8.2).
#include "rewards/math_compare.h"

#include "rewards/math_eval.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

namespace crucible::rewards::math {

namespace {

class Comparer {
 public:
  Comparer(const CompareOptions& o, const Expr& gold, const Expr& pred)
      : o_(o), ev_(gold, pred, o.max_steps, o.time_ms) {}

  bool eq(Side g, Side p, int depth) {
    ev_.tick();
    if (depth > 2 * kMaxDepth) return false;
    g = strip_membership(g);
    p = strip_membership(p);
    const Kind kg = kind_of(g), kp = kind_of(p);
    // "x = 3" (or a chain ending "= 101") is read as its value when the reference is not a relation.
    if (kp == Kind::Relation && all_eq(p) && kg != Kind::Relation) return eq(g, last_kid(p), depth + 1);
    if (kg == Kind::Relation && assignment_value(g) >= 0 && kp != Kind::Relation)
      return eq(g.child(assignment_value(g)), p, depth + 1);
    if (kg == Kind::Relation && kp == Kind::Relation) return relations_eq(g, p, depth);
    if (kg == Kind::Relation && (kp == Kind::Tuple || kp == Kind::Union)) return relation_as_interval(g, p, depth);
    if (kg == Kind::Relation || kp == Kind::Relation) return false;
    if (is_collection(kg) || is_collection(kp)) return collections_eq(g, kg, p, kp, depth);
    if (scalar_eq(g, p)) return true;
    // A percent matches its number as well as its value (10% == 0.1 == 10).
    if ((kg == Kind::Percent) != (kp == Kind::Percent)) {
      if (kg == Kind::Percent) return scalar_eq(g.child(g.node().kids[0]), p);
      return scalar_eq(g, p.child(p.node().kids[0]));
    }
    return false;
  }

 private:
  static bool is_collection(Kind k) {
    return k == Kind::Tuple || k == Kind::Set || k == Kind::Union || k == Kind::Matrix;
  }

  std::vector<Side> pm_variants(const Side& s) {
    std::vector<int> ords;
    ev_.collect_pm(s, &ords);
    std::vector<Side> out;
    for (int m = 0; m < (1 << ords.size()); ++m) {
      Side v = s;
      v.expanded = true;
      v.mask = 0;
      for (std::size_t b = 0; b < ords.size(); ++b)
        if (m & (1 << b)) v.mask |= 1 << ords[b];
      out.push_back(v);
    }
    return out;
  }

  bool needs_expansion(const Side& s) {
    if (s.e == nullptr || s.expanded) return false;
    std::vector<int> ords;
    ev_.collect_pm(s, &ords);
    return !ords.empty();
  }

  Kind kind_of(const Side& s) {
    if (s.e == nullptr) return Kind::Infinity;
    if (needs_expansion(s)) return Kind::Set;  // a ± b stands for {a + b, a - b}
    return s.node().kind;
  }

  std::vector<Side> elements(const Side& s) {
    if (needs_expansion(s)) return pm_variants(s);
    std::vector<Side> out;
    for (std::int32_t k : s.node().kids) out.push_back(s.child(k));
    return out;
  }

  Side strip_membership(Side s) {
    if (s.e == nullptr || kind_of(s) != Kind::Relation) return s;
    const Node& n = s.node();
    if (n.rels.size() == 1 && n.rels[0] == RelOp::In && s.e->at(n.kids[0]).kind == Kind::Symbol)
      return s.child(n.kids[1]);
    return s;
  }

  bool all_eq(const Side& s) {
    for (RelOp r : s.node().rels)
      if (r != RelOp::Eq) return false;
    return true;
  }
  Side last_kid(const Side& s) { return s.child(s.node().kids.back()); }

  // For "x = value" (or "value = x"): the value's node; -1 when not an assignment.
  std::int32_t assignment_value(const Side& s) {
    const Node& n = s.node();
    if (n.kind != Kind::Relation || !all_eq(s)) return -1;
    if (s.e->at(n.kids.front()).kind == Kind::Symbol) return n.kids.back();
    if (n.kids.size() == 2 && s.e->at(n.kids.back()).kind == Kind::Symbol) return n.kids.front();
    return -1;
  }
  std::int32_t assignment_symbol(const Side& s) {
    const Node& n = s.node();
    return s.e->at(n.kids.front()).kind == Kind::Symbol ? n.kids.front() : n.kids.back();
  }

  struct Link {
    Side l, r;
    RelOp op;
  };
  // The relation as links, turned so that a chain of > / >= reads with < / <=.
  std::vector<Link> links(const Side& s) {
    const Node& n = s.node();
    std::vector<Link> out;
    bool all_greater = true;
    for (RelOp r : n.rels) all_greater = all_greater && (r == RelOp::Gt || r == RelOp::Ge);
    for (std::size_t i = 0; i < n.rels.size(); ++i) {
      Link k{s.child(n.kids[i]), s.child(n.kids[i + 1]), n.rels[i]};
      if (all_greater) {
        std::swap(k.l, k.r);
        k.op = k.op == RelOp::Gt ? RelOp::Lt : RelOp::Le;
      }
      out.push_back(k);
    }
    if (all_greater) std::reverse(out.begin(), out.end());
    return out;
  }

  bool relations_eq(const Side& g, const Side& p, int depth) {
    const std::int32_t ga = assignment_value(g), pa = assignment_value(p);
    if ((ga >= 0) != (pa >= 0)) return false;  // "x = 2" is not "2x = 4" (as Math-Verify)
    if (ga >= 0) {
      const Node& gs = g.e->at(assignment_symbol(g));
      const Node& ps = p.e->at(assignment_symbol(p));
      return gs.text == ps.text && eq(g.child(ga), p.child(pa), depth + 1);
    }
    std::vector<Link> gl = links(g), pl = links(p);
    if (gl.size() != pl.size()) return false;
    for (std::size_t i = 0; i < gl.size(); ++i) {
      const RelOp a = gl[i].op, b = pl[i].op;
      const bool symmetric = a == RelOp::Eq || a == RelOp::Ne;
      if (a != b) {
        // a < b matches b > a only through links(); mixed chains must match as written.
        return false;
      }
      if (!proportional(gl[i], pl[i], !symmetric)) return false;
    }
    return true;
  }

  // A reference inequality in one variable as an interval: x < 3 -> (-inf, 3).
  bool relation_as_interval(const Side& g, const Side& p, int depth) {
    if (kind_of(p) != Kind::Tuple || p.node().kids.size() != 2) return false;
    std::vector<Link> l = links(g);
    auto is_sym = [](const Side& s) { return s.node().kind == Kind::Symbol; };
    auto strict = [](RelOp op) { return op == RelOp::Lt || op == RelOp::Gt; };
    Side lo, hi;
    bool lo_open = true, hi_open = true;
    if (l.size() == 1 && l[0].op != RelOp::Eq && l[0].op != RelOp::Ne && l[0].op != RelOp::In) {
      const bool less = l[0].op == RelOp::Lt || l[0].op == RelOp::Le;
      if (is_sym(l[0].l)) {  // x < r or x > r
        if (less) lo = infinity_side(-1), hi = l[0].r, hi_open = strict(l[0].op);
        else lo = l[0].r, hi = infinity_side(+1), lo_open = strict(l[0].op);
      } else if (is_sym(l[0].r)) {  // l < x or l > x
        if (less) lo = l[0].l, hi = infinity_side(+1), lo_open = strict(l[0].op);
        else lo = infinity_side(-1), hi = l[0].l, hi_open = strict(l[0].op);
      } else {
        return false;
      }
    } else if (l.size() == 2 && (l[0].op == RelOp::Lt || l[0].op == RelOp::Le) &&
               (l[1].op == RelOp::Lt || l[1].op == RelOp::Le) && is_sym(l[0].r)) {
      lo = l[0].l, hi = l[1].r, lo_open = strict(l[0].op), hi_open = strict(l[1].op);
    } else {
      return false;
    }
    const Node& t = p.node();
    if ((t.open == '(') != lo_open || (t.close == ')') != hi_open) return false;
    return eq(lo, p.child(t.kids[0]), depth + 1) && eq(hi, p.child(t.kids[1]), depth + 1);
  }

  bool unordered_eq(const std::vector<Side>& g, const std::vector<Side>& p, int depth) {
    if (g.size() != p.size()) return false;
    std::vector<char> used(p.size(), 0);
    for (const Side& x : g) {
      bool found = false;
      for (std::size_t j = 0; j < p.size() && !found; ++j)
        if (!used[j] && eq(x, p[j], depth + 1)) used[j] = 1, found = true;
      if (!found) return false;
    }
    return true;
  }
  bool ordered_eq(const std::vector<Side>& g, const std::vector<Side>& p, int depth) {
    if (g.size() != p.size()) return false;
    for (std::size_t i = 0; i < g.size(); ++i)
      if (!eq(g[i], p[i], depth + 1)) return false;
    return true;
  }

  bool collections_eq(const Side& g, Kind kg, const Side& p, Kind kp, int depth) {
    if (kg == Kind::Matrix || kp == Kind::Matrix) {
      if (kg != kp || g.node().rows != p.node().rows || g.node().cols != p.node().cols) return false;
      return ordered_eq(elements(g), elements(p), depth);
    }
    if (kg == Kind::Union || kp == Kind::Union)
      return kg == kp && unordered_eq(elements(g), elements(p), depth);
    const bool g_paren = kg == Kind::Tuple && g.node().open == '(' && g.node().close == ')';
    const bool p_paren = kp == Kind::Tuple && p.node().open == '(' && p.node().close == ')';
    if (!is_collection(kg)) {  // a value matches a one-element set
      return kp == Kind::Set && elements(p).size() == 1 && eq(g, elements(p)[0], depth + 1);
    }
    if (!is_collection(kp)) return kg == Kind::Set && elements(g).size() == 1 && eq(elements(g)[0], p, depth + 1);
    if (kg == Kind::Set) {  // the reference is unordered: any order of a list or a tuple
      return (kp == Kind::Set || p_paren) && unordered_eq(elements(g), elements(p), depth);
    }
    // kg == Tuple: brackets decide open/closed ends; a bare list matches a (..) tuple in order.
    if (kp == Kind::Tuple)
      return g.node().open == p.node().open && g.node().close == p.node().close &&
             ordered_eq(elements(g), elements(p), depth);
    const bool bare = kind_of(p) == Kind::Set && (needs_expansion(p) || p.node().open == 0);
    return g_paren && bare && ordered_eq(elements(g), elements(p), depth);
  }

  bool close(double a, double b) const {
    if (std::isinf(a) || std::isinf(b)) return a == b;
    return std::fabs(a - b) <= std::max(o_.rel_tol * std::max(std::fabs(a), std::fabs(b)), o_.abs_tol);
  }

  // v rounded to `places` decimals as an integer count of 10^-places; false when it does not fit.
  bool rounded(const Val& v, int places, Int128* out) const {
    Int128 scale = 1;
    for (int i = 0; i < places; ++i) scale *= 10;
    if (v.is_exact()) {
      Int128 n;
      if (!__builtin_mul_overflow(v.q.num, scale, &n)) {
        Int128 q = n / v.q.den, r = n % v.q.den;
        if (r < 0) r = -r;
        if (2 * r >= v.q.den) q += n < 0 ? -1 : 1;
        *out = q;
        return true;
      }
    }
    const double x = v.d * static_cast<double>(scale);
    if (!(std::fabs(x) < 4e15)) return false;
    *out = static_cast<Int128>(std::llround(x));
    return true;
  }

  bool values_equal(const Val& a, const Val& b, bool decimal_rule) const {
    if (a.undef() || b.undef()) return false;
    if (a.is_exact() && b.is_exact() && a.q.num == b.q.num && a.q.den == b.q.den) return true;
    if (std::isinf(a.d) || std::isinf(b.d)) return a.d == b.d;
    if (decimal_rule) {
      const double tiny = 0.5 * std::pow(10.0, -o_.decimal_places);
      if (std::max(std::fabs(a.d), std::fabs(b.d)) < tiny) return close(a.d, b.d);
      Int128 ra, rb;
      if (rounded(a, o_.decimal_places, &ra) && rounded(b, o_.decimal_places, &rb)) return ra == rb;
      return std::fabs(a.d - b.d) <= 1e-12 * std::max(std::fabs(a.d), std::fabs(b.d));
    }
    if (a.is_exact() && b.is_exact()) return false;
    return close(a.d, b.d);
  }

  // Written as a decimal number (3.14, -0.5, 12.5%): Math-Verify's Float.
  static bool is_decimal_literal(const Side& s) {
    if (s.e == nullptr) return false;
    const Node* n = &s.node();
    if (n->kind == Kind::Neg || n->kind == Kind::Percent) n = &s.e->at(n->kids[0]);
    return n->kind == Kind::Number && n->frac_digits > 0;
  }

  static constexpr int kPoints = 16;   // attempts
  static constexpr int kNeeded = 4;    // agreeing points where both sides are defined
  static constexpr int kMinPoints = 3;

  bool scalar_eq(const Side& g, const Side& p) {
    std::vector<std::string> vars;
    ev_.collect_symbols(g, &vars);
    ev_.collect_symbols(p, &vars);
    if (vars.empty()) {
      Env none;
      return values_equal(ev_.eval(g, none), ev_.eval(p, none), is_decimal_literal(g) || is_decimal_literal(p));
    }
    std::sort(vars.begin(), vars.end());
    int agreed = 0;
    for (int k = 0; k < kPoints && agreed < kNeeded; ++k) {
      Env env;
      for (std::size_t v = 0; v < vars.size(); ++v) env.emplace_back(vars[v], Evaluator::point_value(k, v));
      Val a = ev_.eval(g, env), b = ev_.eval(p, env);
      if (a.undef() || b.undef()) continue;
      if (!values_equal(a, b, false)) return false;
      ++agreed;
    }
    return agreed >= kMinPoints;
  }

  // (l_g - r_g) = c * (l_p - r_p) for one constant c != 0 (c > 0 for inequalities).
  bool proportional(const Link& g, const Link& p, bool positive) {
    std::vector<std::string> vars;
    for (const Side* s : {&g.l, &g.r, &p.l, &p.r}) ev_.collect_symbols(*s, &vars);
    std::sort(vars.begin(), vars.end());
    Val ratio;
    int agreed = 0;
    const int points = vars.empty() ? 1 : kPoints;
    for (int k = 0; k < points && agreed < kNeeded; ++k) {
      Env env;
      for (std::size_t v = 0; v < vars.size(); ++v) env.emplace_back(vars[v], Evaluator::point_value(k, v));
      Val a = v_add(ev_.eval(g.l, env), v_neg(ev_.eval(g.r, env)));
      Val b = v_add(ev_.eval(p.l, env), v_neg(ev_.eval(p.r, env)));
      if (a.undef() || b.undef()) continue;
      const bool za = is_zero(a, o_.abs_tol), zb = is_zero(b, o_.abs_tol);
      if (za != zb) return false;
      if (!za) {
        Val r = v_mul(a, v_inv(b));
        if (r.undef()) continue;
        if (ratio.undef()) {
          if (positive && r.d <= 0) return false;
          ratio = r;
        } else if (!values_equal(r, ratio, false)) {
          return false;
        }
      }
      ++agreed;
    }
    return agreed >= (vars.empty() ? 1 : kMinPoints);
  }

  CompareOptions o_;
  Evaluator ev_;
};

}  // namespace

Verdict compare(const Expr& gold, const Expr& pred, const CompareOptions& opts) {
  if (gold.root < 0 || pred.root < 0) return Verdict::Different;
  try {
    Comparer c(opts, gold, pred);
    Side g, p;
    g.e = &gold;
    g.id = gold.root;
    p.e = &pred;
    p.id = pred.root;
    return c.eq(g, p, 0) ? Verdict::Equal : Verdict::Different;
  } catch (const OutOfBudget&) {
    return Verdict::OutOfTime;
  } catch (const std::exception&) {  // bad_alloc on absurd input: not equal
    return Verdict::Different;
  }
}

}  // namespace crucible::rewards::math
