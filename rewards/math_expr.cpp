// rewards/math_expr.cpp: recursive-descent parser for answer math (see math_expr.h; tokens: math_lex.h).
//
// Invariant: parse_math() never throws and never recurses deeper than kMaxDepth
// grammar levels (each level is a bounded number of frames), so hostile input
// (10^5 nested \frac, unbalanced braces, stray bytes) is a parse error, not a crash.
// Grammar (loosest first): list (, ;) > relation chain (= < > \le ..) > \cup >
// sum (+ - \pm) > product (* / \cdot \times, implicit) > unary sign > power (^)
// > postfix (! %) > primary. "a/bc" divides by the implicit product bc, as
// math-verify (latex2sympy2) reads it.
// Reference: the LaTeX answer conventions of Hendrycks MATH; huggingface/Math-Verify.
#include "rewards/math_expr.h"

#include <cmath>
#include <cstdlib>
#include <string>

#include "rewards/math_lex.h"

namespace crucible::rewards::math {

namespace {

bool is_function_name(std::string_view n, Fn* fn) {
  struct Entry {
    const char* name;
    Fn fn;
  };
  static const Entry kFns[] = {
      {"sin", Fn::Sin},     {"cos", Fn::Cos},         {"tan", Fn::Tan},       {"cot", Fn::Cot},
      {"sec", Fn::Sec},     {"csc", Fn::Csc},         {"arcsin", Fn::Asin},   {"arccos", Fn::Acos},
      {"arctan", Fn::Atan}, {"sinh", Fn::Sinh},       {"cosh", Fn::Cosh},     {"tanh", Fn::Tanh},
      {"ln", Fn::Ln},       {"log", Fn::Log},         {"lg", Fn::Log},        {"exp", Fn::Exp},
      {"lfloor", Fn::Floor}, {"lceil", Fn::Ceil},
  };
  for (const Entry& e : kFns)
    if (n == e.name) {
      *fn = e.fn;
      return true;
    }
  return false;
}

bool is_relation_cmd(std::string_view n, RelOp* op) {
  if (n == "le" || n == "leq" || n == "leqslant") return *op = RelOp::Le, true;
  if (n == "ge" || n == "geq" || n == "geqslant") return *op = RelOp::Ge, true;
  if (n == "lt") return *op = RelOp::Lt, true;
  if (n == "gt") return *op = RelOp::Gt, true;
  if (n == "ne" || n == "neq") return *op = RelOp::Ne, true;
  if (n == "in") return *op = RelOp::In, true;
  return false;
}

// Commands that decorate their argument without changing its value.
bool is_unwrap_command(std::string_view n) {
  return n == "overline" || n == "bar" || n == "hat" || n == "vec" || n == "widehat" || n == "tilde" ||
         n == "mathbb" || n == "mathcal" || n == "boldsymbol" || n == "bm" || n == "mathfrak" ||
         n == "underline" || n == "overrightarrow" || n == "boxed" || n == "fbox" || is_text_command(n);
}

class Parser {
 public:
  Parser(std::vector<Tok> toks, Expr& out) : t_(std::move(toks)), e_(out) {}

  std::int32_t parse_all() {
    std::int32_t r = list();
    if (peek().t != TokKind::End) fail("unexpected trailing input");
    return r;
  }

 private:
  struct DepthGuard {
    explicit DepthGuard(Parser& p) : p(p) {
      if (++p.depth_ > kMaxDepth) p.fail("nested too deeply");
    }
    ~DepthGuard() { --p.depth_; }
    Parser& p;
  };

  [[noreturn]] void fail(std::string why) { throw ParseError{std::move(why)}; }
  const Tok& peek(std::size_t k = 0) const {
    std::size_t j = pos_ + k;
    return t_[j < t_.size() ? j : t_.size() - 1];
  }
  bool is_char(char c, std::size_t k = 0) const { return peek(k).t == TokKind::Char && peek(k).c == c; }
  bool is_cmd(std::string_view n) const { return peek().t == TokKind::Cmd && peek().s == n; }
  void advance() {
    if (pos_ + 1 < t_.size()) ++pos_;
  }
  void expect_char(char c) {
    if (!is_char(c)) fail(std::string("expected '") + c + "'");
    advance();
  }

  std::int32_t add(Node n) {
    e_.nodes.push_back(std::move(n));
    return static_cast<std::int32_t>(e_.nodes.size() - 1);
  }
  std::int32_t unary_node(Kind k, std::int32_t kid) {
    Node n;
    n.kind = k;
    n.kids = {kid};
    return add(std::move(n));
  }
  std::int32_t binary_node(Kind k, std::int32_t a, std::int32_t b) {
    Node n;
    n.kind = k;
    n.kids = {a, b};
    return add(std::move(n));
  }
  std::int32_t number(std::string_view digits) {
    Node n;
    n.kind = Kind::Number;
    n.text = std::string(digits);
    n.d = std::strtod(n.text.c_str(), nullptr);
    Int128 num = 0, den = 1;
    bool fits = true, after_point = false;
    for (char c : digits) {
      if (c == '.') {
        after_point = true;
        n.frac_digits = 0;
        continue;
      }
      if (__builtin_mul_overflow(num, 10, &num) || __builtin_add_overflow(num, c - '0', &num)) fits = false;
      if (after_point) {
        ++n.frac_digits;
        if (__builtin_mul_overflow(den, 10, &den)) fits = false;
      }
      if (!fits) break;
    }
    if (n.frac_digits == 0) n.frac_digits = -1;  // "5." is an integer
    n.exact = fits && make_rational(num, den, &n.q);
    return add(std::move(n));
  }
  std::int32_t symbol(std::string name) {
    Node n;
    n.kind = Kind::Symbol;
    n.text = std::move(name);
    return add(std::move(n));
  }
  std::int32_t leaf(Kind k, std::string text = {}) {
    Node n;
    n.kind = k;
    n.text = std::move(text);
    return add(std::move(n));
  }
  std::int32_t func(Fn fn, std::vector<std::int32_t> kids) {
    Node n;
    n.kind = Kind::Func;
    n.fn = fn;
    n.kids = std::move(kids);
    return add(std::move(n));
  }

  // item (',' item)*; a bare list of two or more items is a Set with open == 0.
  std::int32_t list() {
    DepthGuard g(*this);
    std::vector<std::int32_t> items{relation()};
    while (is_char(',') || is_char(';')) {
      advance();
      items.push_back(relation());
    }
    if (items.size() == 1) return items[0];
    Node n;
    n.kind = Kind::Set;
    n.kids = std::move(items);
    return add(std::move(n));
  }

  bool relation_op(RelOp* op) {
    const Tok& k = peek();
    if (k.t == TokKind::Cmd) return is_relation_cmd(k.s, op);
    if (k.t != TokKind::Char) return false;
    if (k.c == '=') return *op = RelOp::Eq, true;
    if (k.c == '<') return *op = is_char('=', 1) ? RelOp::Le : RelOp::Lt, true;
    if (k.c == '>') return *op = is_char('=', 1) ? RelOp::Ge : RelOp::Gt, true;
    if (k.c == '!' && is_char('=', 1)) return *op = RelOp::Ne, true;
    return false;
  }

  std::int32_t relation() {
    std::int32_t first = union_expr();
    RelOp op;
    if (!relation_op(&op)) return first;
    Node n;
    n.kind = Kind::Relation;
    n.kids.push_back(first);
    while (relation_op(&op)) {
      const bool two_chars = peek().t == TokKind::Char && (op == RelOp::Le || op == RelOp::Ge || op == RelOp::Ne);
      advance();
      if (two_chars) advance();
      n.rels.push_back(op);
      n.kids.push_back(union_expr());
      if (n.rels.size() > 16) fail("relation chain is too long");
    }
    return add(std::move(n));
  }

  std::int32_t union_expr() {
    std::int32_t first = sum();
    if (!is_cmd("cup")) return first;
    Node n;
    n.kind = Kind::Union;
    n.kids.push_back(first);
    while (is_cmd("cup")) {
      advance();
      n.kids.push_back(sum());
    }
    return add(std::move(n));
  }

  std::int32_t sum() {
    Node n;
    n.kind = Kind::Add;
    if (is_cmd("pm") || is_cmd("mp")) {  // "\pm 2": zero plus-or-minus 2
      advance();
      ++pm_count_;
      Node zero;
      zero.kind = Kind::Number;
      zero.exact = true;
      zero.text = "0";
      std::int32_t z = add(std::move(zero));
      n.kids.push_back(binary_node(Kind::PlusMinus, z, product()));
    } else {
      n.kids.push_back(product());
    }
    for (;;) {
      if (is_char('+')) {
        advance();
        n.kids.push_back(product());
      } else if (is_char('-')) {
        advance();
        n.kids.push_back(unary_node(Kind::Neg, product()));
      } else if (is_cmd("pm") || is_cmd("mp")) {
        advance();
        if (++pm_count_ > 3) fail("more than three \\pm");
        std::int32_t lhs = n.kids.size() == 1 ? n.kids[0] : add(Node(n));
        n.kids = {binary_node(Kind::PlusMinus, lhs, product())};
      } else {
        break;
      }
    }
    return n.kids.size() == 1 ? n.kids[0] : add(std::move(n));
  }

  bool starts_factor() const {
    const Tok& k = peek();
    switch (k.t) {
      case TokKind::Num:
      case TokKind::Letter:
      case TokKind::Word: return true;
      case TokKind::Char: return k.c == '(' || k.c == '{' || (k.c == '|' && abs_depth_ == 0);
      case TokKind::Cmd: {
        RelOp op;
        if (is_relation_cmd(k.s, &op)) return false;
        static const char* kNot[] = {"times", "cdot", "div", "pm", "mp", "cup", "}", "ast", "colon",
                                     "rfloor", "rceil", "to", "mid", "dots", "ldots", "cdots"};
        for (const char* x : kNot)
          if (k.s == x) return false;
        return k.s.rfind("end:", 0) != 0;
      }
      default: return false;
    }
  }

  bool is_int_literal(std::int32_t id) const {
    const Node& n = e_.at(id);
    return n.kind == Kind::Number && n.exact && n.frac_digits < 0;
  }

  // A product of factors; "/" divides by the implicit product that follows it.
  std::int32_t product() {
    Node n;
    n.kind = Kind::Mul;
    n.kids.push_back(unary());
    for (;;) {
      if (is_char('*') || is_cmd("times") || is_cmd("cdot") || is_cmd("ast")) {
        advance();
        n.kids.push_back(unary());
      } else if (is_char('/') || is_cmd("div")) {
        advance();
        n.kids.push_back(unary_node(Kind::Inv, implicit_run(unary())));
      } else if (starts_factor()) {
        // 3\frac{1}{2} is a mixed number (MATH convention), not 3 * 1/2.
        if (is_cmd("frac") && n.kids.size() == 1 && mixed_candidate(n.kids[0])) {
          n.kids[0] = mixed_number(n.kids[0]);
          continue;
        }
        n.kids.push_back(power());
      } else {
        break;
      }
      if (n.kids.size() > static_cast<std::size_t>(kMaxTokens)) fail("product too long");
    }
    return n.kids.size() == 1 ? n.kids[0] : add(std::move(n));
  }

  std::int32_t implicit_run(std::int32_t first) {
    Node n;
    n.kind = Kind::Mul;
    n.kids.push_back(first);
    while (starts_factor()) n.kids.push_back(power());
    return n.kids.size() == 1 ? n.kids[0] : add(std::move(n));
  }

  bool mixed_candidate(std::int32_t id) const {
    const Node& n = e_.at(id);
    if (n.kind == Kind::Neg) return is_int_literal(n.kids[0]);
    return is_int_literal(id);
  }
  std::int32_t mixed_number(std::int32_t whole) {
    std::int32_t frac = power();
    const Node& f = e_.at(frac);
    // \frac{a}{b} parses as Mul[a, Inv(b)]; only integer a, b make a mixed number.
    bool simple = f.kind == Kind::Mul && f.kids.size() == 2 && is_int_literal(f.kids[0]) &&
                  e_.at(f.kids[1]).kind == Kind::Inv && is_int_literal(e_.at(f.kids[1]).kids[0]);
    if (!simple) return binary_node(Kind::Mul, whole, frac);
    if (e_.at(whole).kind == Kind::Neg) {
      std::int32_t inner = e_.at(whole).kids[0];
      return unary_node(Kind::Neg, binary_node(Kind::Add, inner, frac));
    }
    return binary_node(Kind::Add, whole, frac);
  }

  std::int32_t unary() {
    DepthGuard g(*this);
    if (is_char('-')) {
      advance();
      return unary_node(Kind::Neg, unary());
    }
    if (is_char('+')) {
      advance();
      return unary();
    }
    return power();
  }

  std::int32_t power() {
    DepthGuard g(*this);
    std::int32_t base = postfix();
    while (is_char('^')) {
      advance();
      base = binary_node(Kind::Pow, base, exponent());
    }
    return base;
  }

  std::int32_t exponent() {
    DepthGuard g(*this);
    if (is_char('-')) {
      advance();
      return unary_node(Kind::Neg, exponent());
    }
    if (is_char('{')) return group('{', '}');
    if (is_char('(')) return bracket();
    if (peek().t == TokKind::Num) {  // "2^10" is 2^{10}, as math-verify reads it
      std::int32_t r = number(peek().s);
      advance();
      return r;
    }
    return primary();
  }

  std::int32_t postfix() {
    std::int32_t p = primary();
    int bangs = 0;
    for (;;) {
      if (is_char('!') && !is_char('=', 1)) {
        if (++bangs > 3) fail("too many '!'");
        advance();
        p = unary_node(Kind::Factorial, p);
      } else if (is_char('%')) {
        advance();
        p = unary_node(Kind::Percent, p);
        break;
      } else {
        break;
      }
    }
    return p;
  }

  // { list } with LaTeX grouping braces; a list inside is a bare set.
  std::int32_t group(char open, char close) {
    DepthGuard g(*this);
    expect_char(open);
    std::int32_t r = list();
    expect_char(close);
    return r;
  }

  // ( ... ) or [ ... ]: grouping for one item; tuple or interval for several.
  std::int32_t bracket() {
    DepthGuard g(*this);
    const char open = peek().c;
    advance();
    std::vector<std::int32_t> items{relation()};
    while (is_char(',')) {
      advance();
      items.push_back(relation());
    }
    if (!is_char(')') && !is_char(']')) fail(std::string("unclosed '") + open + "'");
    const char close = peek().c;
    advance();
    if (items.size() == 1) {
      if ((open == '(') != (close == ')')) fail("mismatched brackets");
      return items[0];
    }
    Node n;
    n.kind = Kind::Tuple;
    n.open = open;
    n.close = close;
    n.kids = std::move(items);
    return add(std::move(n));
  }

  // One argument of \frac, \sqrt, \binom: a {group} or a single token (\frac12).
  std::int32_t arg() {
    if (is_char('{')) return group('{', '}');
    const Tok& k = peek();
    if (k.t == TokKind::Num) {
      if (k.s.size() > 1 && k.s[0] != '.') {  // \frac12: the first digit only
        std::int32_t r = number(k.s.substr(0, 1));
        t_[pos_].s.erase(0, 1);
        return r;
      }
      std::int32_t r = number(k.s);
      advance();
      return r;
    }
    if (k.t == TokKind::Letter || k.t == TokKind::Word || k.t == TokKind::Cmd) return primary();
    fail("missing argument");
  }

  std::int32_t function_call(Fn fn) {
    std::int32_t power_of = -1;
    std::int32_t base = -1;
    if (fn == Fn::Log && is_char('_')) {
      advance();
      base = is_char('{') ? group('{', '}') : arg();
    }
    if (is_char('^')) {
      advance();
      power_of = exponent();
    }
    std::int32_t x;
    if (is_char('(')) {
      x = bracket();
    } else if (is_char('{')) {
      x = group('{', '}');
    } else {
      // \sin 2x: the argument is the implicit product up to the next operator or function.
      Node n;
      n.kind = Kind::Mul;
      Fn other;
      while (starts_factor() && !(peek().t == TokKind::Cmd && is_function_name(peek().s, &other)))
        n.kids.push_back(power());
      if (n.kids.empty()) fail("function without an argument");
      x = n.kids.size() == 1 ? n.kids[0] : add(std::move(n));
    }
    std::int32_t call;
    if (fn == Fn::Log && base >= 0) call = func(Fn::Log, {x, base});
    else if (fn == Fn::Log) call = func(Fn::Log, {x, number("10")});  // \log x is base 10 (as Math-Verify)
    else call = func(fn, {x});
    return power_of >= 0 ? binary_node(Kind::Pow, call, power_of) : call;
  }

  std::int32_t matrix(const std::string& env) {
    if (env == "array" && is_char('{')) {  // column spec {cc}: skip it
      while (!is_char('}') && peek().t != TokKind::End) advance();
      expect_char('}');
    }
    Node n;
    n.kind = Kind::Matrix;
    std::vector<std::int32_t> row;
    auto end_row = [&] {
      if (row.empty()) return;
      if (n.rows == 0) n.cols = static_cast<std::int32_t>(row.size());
      else if (n.cols != static_cast<std::int32_t>(row.size())) fail("matrix rows of different lengths");
      n.kids.insert(n.kids.end(), row.begin(), row.end());
      ++n.rows;
      row.clear();
    };
    for (;;) {
      if (peek().t == TokKind::Cmd && peek().s == "end:" + env) {
        advance();
        break;
      }
      if (peek().t == TokKind::End) fail("\\begin{" + env + "} without \\end");
      row.push_back(sum());
      if (is_char('&')) {
        advance();
      } else if (peek().t == TokKind::RowSep) {
        advance();
        end_row();
      } else if (!(peek().t == TokKind::Cmd && peek().s == "end:" + env)) {
        fail("unexpected token in matrix");
      }
    }
    end_row();
    if (n.rows == 0) fail("empty matrix");
    return add(std::move(n));
  }

  std::int32_t primary() {
    DepthGuard g(*this);
    const Tok k = peek();
    switch (k.t) {
      case TokKind::Num: {
        advance();
        return number(k.s);
      }
      case TokKind::Letter: {
        advance();
        std::string name = k.s;
        if (is_char('_')) {  // x_1, a_{n}
          advance();
          if (is_char('{')) {
            advance();
            name += "_";
            while (!is_char('}') && peek().t != TokKind::End) {
              name += peek().t == TokKind::Char ? std::string(1, peek().c) : peek().s;
              advance();
            }
            expect_char('}');
          } else if (peek().t == TokKind::Num || peek().t == TokKind::Letter) {
            name += "_" + peek().s;
            advance();
          } else {
            fail("bad subscript");
          }
          return symbol(name);
        }
        if (name == "e") return leaf(Kind::Constant, "e");
        return symbol(name);
      }
      case TokKind::Word: advance(); return symbol(k.s);
      case TokKind::Char:
        if (k.c == '(' || k.c == '[') return bracket();
        if (k.c == '{') return group('{', '}');
        if (k.c == '|') {
          advance();
          ++abs_depth_;
          std::int32_t x = sum();
          --abs_depth_;
          expect_char('|');
          return func(Fn::Abs, {x});
        }
        fail(std::string("unexpected '") + k.c + "'");
      case TokKind::Cmd: return command(k.s);
      case TokKind::RowSep: fail("unexpected '\\\\'");
      case TokKind::End: fail("unexpected end of answer");
    }
    fail("unexpected token");
  }

  std::int32_t command(const std::string& name) {
    advance();
    Fn fn;
    if (name == "frac" || name == "cfrac") {
      std::int32_t a = arg();
      std::int32_t b = arg();
      return binary_node(Kind::Mul, a, unary_node(Kind::Inv, b));
    }
    if (name == "sqrt") {
      std::int32_t degree = -1;
      if (is_char('[')) {
        advance();
        degree = sum();
        expect_char(']');
      }
      std::int32_t x = arg();
      return degree >= 0 ? func(Fn::Root, {x, degree}) : func(Fn::Sqrt, {x});
    }
    if (name == "binom") {
      std::int32_t a = arg();
      std::int32_t b = arg();
      return binary_node(Kind::Binom, a, b);
    }
    if (name == "pi") return leaf(Kind::Constant, "pi");
    if (name == "infty" || name == "infin") return leaf(Kind::Infinity);
    if (name == "emptyset" || name == "varnothing") {
      Node n;
      n.kind = Kind::Set;
      n.open = '{';
      return add(std::move(n));
    }
    if (name == "{") {
      Node n;
      n.kind = Kind::Set;
      n.open = '{';
      if (!(peek().t == TokKind::Cmd && peek().s == "}")) {
        n.kids.push_back(relation());
        while (is_char(',') || is_char(';')) {
          advance();
          n.kids.push_back(relation());
        }
      }
      if (!(peek().t == TokKind::Cmd && peek().s == "}")) fail("unclosed '\\{'");
      advance();
      return add(std::move(n));
    }
    if (name == "lfloor" || name == "lceil") {
      std::int32_t x = sum();
      if (!(peek().t == TokKind::Cmd && (peek().s == "rfloor" || peek().s == "rceil"))) fail("unclosed floor/ceiling");
      advance();
      return func(name == "lfloor" ? Fn::Floor : Fn::Ceil, {x});
    }
    if (is_function_name(name, &fn)) return function_call(fn);
    if (name.rfind("begin:", 0) == 0) {
      std::string env = name.substr(6);
      if (env == "pmatrix" || env == "bmatrix" || env == "matrix" || env == "array" || env == "Bmatrix")
        return matrix(env);
      fail("unsupported environment " + env);
    }
    if (is_unwrap_command(name)) return arg();
    if (name.rfind("end:", 0) == 0 || name == "}") fail("unexpected \\" + name);
    static const char* kOperators[] = {"times", "cdot", "div", "pm", "mp", "cup", "ast", "to", "mid", "colon"};
    for (const char* op : kOperators)
      if (name == op) fail("operator \\" + name + " without an operand");
    // Greek letters and other symbols: a variable named by the command.
    return symbol("\\" + name);
  }

  std::vector<Tok> t_;
  Expr& e_;
  std::size_t pos_ = 0;
  int depth_ = 0;
  int abs_depth_ = 0;
  int pm_count_ = 0;
};

}  // namespace

ParseResult parse_math(std::string_view normalized) {
  ParseResult r;
  try {
    if (normalized.empty()) {
      r.error = "empty";
      return r;
    }
    Parser p(lex(normalized), r.expr);
    r.expr.root = p.parse_all();
    r.ok = true;
  } catch (const ParseError& e) {
    r.ok = false;
    r.error = e.what;
    r.expr = Expr{};
  } catch (const std::exception& e) {  // std::bad_alloc on absurd input
    r.ok = false;
    r.error = std::string("parser failure: ") + e.what();
    r.expr = Expr{};
  }
  return r;
}

}  // namespace crucible::rewards::math
