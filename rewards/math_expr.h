// rewards/math_expr.h: a small LaTeX / plain-text math parser for answers.
//
// Parses a normalized answer (math_normalize.h) into an expression tree held in
// one arena (Expr::nodes, children by index). Supported: integers and decimals
// (kept as exact rationals when they fit 128 bits), + - * / ^ with implicit
// multiplication (2x, 2\sqrt{3}, 3\frac{1}{2} as a mixed number), \frac \sqrt[n]
// \binom, |x|, n!, x%, \pi, e, \infty, the usual functions (\sin .. \ln \log_b \exp;
// \log alone is base 10, as Math-Verify reads it), single-letter variables
// (case-insensitive, subscripts x_1), \text{word} as one symbol, \pm, tuples
// and intervals ((a,b) [a,b) ...), sets (\{..\} and a bare top-level list
// "1, 2"), \cup, pmatrix/bmatrix matrices, and relation chains
// (= < > \le \ge \ne \in). Sums and products are n-ary and division is a product
// with an inverse, so long chains do not make deep trees.
//
// Limits (documented, not bugs): no complex numbers (i is a variable), no
// calculus, at most 3 \pm per answer, at most 20000 tokens, and about 50 levels
// of nested brackets (kMaxDepth grammar levels). Anything else is a parse error
// with a short reason; no input makes the parser crash or throw.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace crucible::rewards::math {

__extension__ typedef __int128 Int128;

// An exact rational: den > 0, gcd(|num|, den) == 1.
struct Rational {
  Int128 num = 0;
  Int128 den = 1;
};

enum class Kind : std::uint8_t {
  Number,     // q (exact when `exact`), d, frac_digits (-1: written without '.')
  Symbol,     // text: the lowercased name ("x", "x_1", "\alpha", "even")
  Constant,   // text: "pi" or "e"
  Infinity,   // +infinity (-infinity is Neg(Infinity))
  Add,        // n-ary sum
  Mul,        // n-ary product
  Neg,        // -kid
  Inv,        // 1/kid
  Pow,        // kid0 ^ kid1
  Func,       // fn(kid0) (Root: kid0, degree kid1; Log: kid0, base kid1)
  Factorial,  // kid0!
  Binom,      // binom(kid0, kid1)
  Percent,    // kid0 / 100, written with '%'
  PlusMinus,  // kid0 ± kid1: stands for the two values
  Tuple,      // ordered; brackets in open/close: "()" tuple or open interval, "[]" "[)" "(]"
  Set,        // unordered; open '{' for \{..\}, 0 for a bare list "1, 2"
  Union,      // kid0 ∪ kid1 ∪ ...
  Matrix,     // rows x cols, kids row-major
  Relation,   // chain kid0 op0 kid1 op1 kid2 ...
};

enum class Fn : std::uint8_t {
  Sqrt, Root, Sin, Cos, Tan, Cot, Sec, Csc, Asin, Acos, Atan, Sinh, Cosh, Tanh,
  Ln, Log, Exp, Abs, Floor, Ceil,
};

enum class RelOp : std::uint8_t { Eq, Ne, Lt, Le, Gt, Ge, In };

struct Node {
  Kind kind = Kind::Number;
  Fn fn = Fn::Sqrt;
  char open = 0, close = 0;          // Tuple / Set brackets
  bool exact = false;                // Number: q holds the value
  int frac_digits = -1;              // Number: digits after the decimal point, -1 when none
  std::int32_t rows = 0, cols = 0;   // Matrix
  Rational q;                        // Number
  double d = 0;                      // Number (always set)
  std::string text;                  // Symbol / Constant name; Number: the digits as written
  std::vector<RelOp> rels;           // Relation: kids.size() - 1 operators
  std::vector<std::int32_t> kids;
};

struct Expr {
  std::vector<Node> nodes;
  std::int32_t root = -1;
  const Node& at(std::int32_t id) const { return nodes[static_cast<std::size_t>(id)]; }
};

struct ParseResult {
  bool ok = false;
  Expr expr;
  std::string error;  // why parsing failed (ok == false)
};

inline constexpr int kMaxTokens = 20000;
inline constexpr int kMaxDepth = 300;

ParseResult parse_math(std::string_view normalized);

// Rational helpers (false on 128-bit overflow).
bool make_rational(Int128 num, Int128 den, Rational* out);
bool rational_add(const Rational& a, const Rational& b, Rational* out);
bool rational_mul(const Rational& a, const Rational& b, Rational* out);
double rational_to_double(const Rational& r);

}  // namespace crucible::rewards::math
