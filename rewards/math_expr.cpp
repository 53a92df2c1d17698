// rewards/math_expr.cpp: lexer and recursive-descent parser for answer math (see math_expr.h).
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

namespace crucible::rewards::math {

// ---------------------------------------------------------------- rationals

namespace {

Int128 abs128(Int128 x) { return x < 0 ? -x : x; }

Int128 gcd128(Int128 a, Int128 b) {
  a = abs128(a);
  b = abs128(b);
  while (b != 0) {
    Int128 t = a % b;
    a = b;
    b = t;
  }
  return a;
}

// |x| < 2^126: negation and a few additions never overflow.
constexpr Int128 kLimit = static_cast<Int128>(1) << 126;
bool in_range(Int128 x) { return x < kLimit && x > -kLimit; }

}  // namespace

bool make_rational(Int128 num, Int128 den, Rational* out) {
  if (den == 0 || !in_range(num) || !in_range(den)) return false;
  if (den < 0) num = -num, den = -den;
  Int128 g = gcd128(num, den);
  if (g > 1) num /= g, den /= g;
  *out = Rational{num, den};
  return true;
}

bool rational_add(const Rational& a, const Rational& b, Rational* out) {
  Int128 x, y, n, d;
  if (__builtin_mul_overflow(a.num, b.den, &x) || __builtin_mul_overflow(b.num, a.den, &y) ||
      __builtin_add_overflow(x, y, &n) || __builtin_mul_overflow(a.den, b.den, &d))
    return false;
  return make_rational(n, d, out);
}

bool rational_mul(const Rational& a, const Rational& b, Rational* out) {
  // Cross-reduce first so that products stay small.
  Int128 g1 = gcd128(a.num, b.den), g2 = gcd128(b.num, a.den);
  if (g1 == 0) g1 = 1;
  if (g2 == 0) g2 = 1;
  Int128 n, d;
  if (__builtin_mul_overflow(a.num / g1, b.num / g2, &n) ||
      __builtin_mul_overflow(a.den / g2, b.den / g1, &d))
    return false;
  return make_rational(n, d, out);
}

double rational_to_double(const Rational& r) {
  return static_cast<double>(r.num) / static_cast<double>(r.den);
}

// ---------------------------------------------------------------- lexer

namespace {

enum class T : std::uint8_t { End, Num, Letter, Word, Cmd, Char, RowSep };

struct Tok {
  T t = T::End;
  std::string s;  // Num: digits; Letter/Word: lowercased name; Cmd: name ("frac", "{", "begin:pmatrix")
  char c = 0;     // Char
};

struct ParseError {
  std::string what;
};

bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// Commands whose brace argument is text: "\text{even}" is one symbol "even".
bool is_text_command(std::string_view n) {
  return n == "text" || n == "textbf" || n == "textit" || n == "textrm" || n == "textnormal" ||
         n == "mathrm" || n == "mathit" || n == "mathbf" || n == "mbox" || n == "operatorname" ||
         n == "textsf" || n == "mathsf" || n == "texttt" || n == "mathtt" || n == "hbox";
}

// Sizing and spacing commands that carry no value.
bool is_layout_command(std::string_view n) {
  static const char* kNames[] = {"left", "right", "big", "Big", "bigl", "bigr", "Bigl", "Bigr", "bigg", "Bigg",
                                 "biggl", "biggr", "middle", "displaystyle", "textstyle", "quad", "qquad",
                                 "limits", "nolimits"};
  for (const char* k : kNames)
    if (n == k) return true;
  return false;
}

// Plain-text words that name math (as typed in "Answer: sqrt(2)").
const char* plain_word_command(std::string_view w) {
  static const char* kWords[] = {"sqrt", "sin", "cos", "tan", "cot", "sec", "csc", "arcsin", "arccos",
                                 "arctan", "sinh", "cosh", "tanh", "ln", "log", "exp", "pi", "infty"};
  for (const char* k : kWords)
    if (w == k) return k;
  if (w == "infinity" || w == "inf") return "infty";
  return nullptr;
}

std::vector<Tok> lex(std::string_view s) {
  std::vector<Tok> out;
  std::size_t i = 0;
  const std::size_t n = s.size();
  auto push = [&](T t, std::string str, char c = 0) {
    if (out.size() >= static_cast<std::size_t>(kMaxTokens)) throw ParseError{"answer is too long to parse"};
    out.push_back(Tok{t, std::move(str), c});
  };
  while (i < n) {
    const char c = s[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      ++i;
    } else if (is_digit(c) || (c == '.' && i + 1 < n && is_digit(s[i + 1]))) {
      std::size_t j = i;
      while (j < n && is_digit(s[j])) ++j;
      if (j < n && s[j] == '.' && !(j + 1 < n && s[j + 1] == '.')) {  // "1..5" is not a decimal
        ++j;
        while (j < n && is_digit(s[j])) ++j;
      }
      push(T::Num, std::string(s.substr(i, j - i)));
      i = j;
    } else if (is_alpha(c)) {
      std::size_t j = i;
      while (j < n && is_alpha(s[j])) ++j;
      std::string word;
      for (std::size_t k = i; k < j; ++k) word += lower(s[k]);
      if (const char* cmd = plain_word_command(word)) {
        push(T::Cmd, cmd);
      } else {
        for (char w : word) push(T::Letter, std::string(1, w));
      }
      i = j;
    } else if (c == '\\') {
      if (i + 1 >= n) throw ParseError{"a lone backslash"};
      const char d = s[i + 1];
      if (d == '\\') {
        push(T::RowSep, "");
        i += 2;
      } else if (is_alpha(d)) {
        std::size_t j = i + 1;
        while (j < n && is_alpha(s[j])) ++j;
        std::string name(s.substr(i + 1, j - i - 1));
        std::size_t k = j;
        while (k < n && s[k] == ' ') ++k;
        if ((name == "begin" || name == "end") && k < n && s[k] == '{') {
          std::size_t close = s.find('}', k);
          if (close == std::string_view::npos) throw ParseError{"\\" + name + " without {environment}"};
          push(T::Cmd, name + ":" + std::string(s.substr(k + 1, close - k - 1)));
          i = close + 1;
          continue;
        }
        if (is_text_command(name) && k < n && s[k] == '{') {
          // Pure words become one symbol; anything else is read as math in braces.
          std::size_t e = k + 1;
          int letters = 0;
          bool words_only = true;
          while (e < n && s[e] != '}') {
            if (is_alpha(s[e])) ++letters;
            else if (s[e] != ' ') words_only = false;
            ++e;
          }
          if (e < n && words_only && letters >= 2) {
            std::string word;
            for (std::size_t m = k + 1; m < e; ++m)
              if (s[m] != ' ') word += lower(s[m]);
            push(T::Word, word);
            i = e + 1;
            continue;
          }
          i = k;  // the brace group is lexed next and parsed as a group
          continue;
        }
        if (is_layout_command(name)) {  // normally gone after normalization
          i = j;
          if ((name == "left" || name == "right") && i < n && s[i] == '.') ++i;
          continue;
        }
        push(T::Cmd, name);
        i = j;
      } else if (d == '{' || d == '}') {
        push(T::Cmd, std::string(1, d));
        i += 2;
      } else if (d == '%' || d == '|') {
        push(T::Char, "", d);
        i += 2;
      } else if (d == ',' || d == '!' || d == ';' || d == ':' || d == ' ' || d == '$') {
        i += 2;  // spacing (and \$) left over by normalization
      } else {
        throw ParseError{std::string("unknown command \\") + (static_cast<unsigned char>(d) < 128 ? std::string(1, d) : "?")};
      }
    } else if (std::string_view("+-*/^_()[]{},;=<>!|&%'").find(c) != std::string_view::npos) {
      push(T::Char, "", c);
      ++i;
    } else {
      throw ParseError{"unexpected character"};
    }
  }
  push(T::End, "");
  return out;
}

// ---------------------------------------------------------------- parser

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
    if (peek().t != T::End) fail("unexpected trailing input");
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
  bool is_char(char c, std::size_t k = 0) const { return peek(k).t == T::Char && peek(k).c == c; }
  bool is_cmd(std::string_view n) const { return peek().t == T::Cmd && peek().s == n; }
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
    if (k.t == T::Cmd) return is_relation_cmd(k.s, op);
    if (k.t != T::Char) return false;
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
      const bool two_chars = peek().t == T::Char && (op == RelOp::Le || op == RelOp::Ge || op == RelOp::Ne);
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
      case T::Num:
      case T::Letter:
      case T::Word: return true;
      case T::Char: return k.c == '(' || k.c == '{' || (k.c == '|' && abs_depth_ == 0);
      case T::Cmd: {
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
    if (peek().t == T::Num) {  // "2^10" is 2^{10}, as math-verify reads it
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
    if (k.t == T::Num) {
      if (k.s.size() > 1 && k.s[0] != '.') {  // \frac12: the first digit only
        std::int32_t r = number(k.s.substr(0, 1));
        t_[pos_].s.erase(0, 1);
        return r;
      }
      std::int32_t r = number(k.s);
      advance();
      return r;
    }
    if (k.t == T::Letter || k.t == T::Word || k.t == T::Cmd) return primary();
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
      while (starts_factor() && !(peek().t == T::Cmd && is_function_name(peek().s, &other)))
        n.kids.push_back(power());
      if (n.kids.empty()) fail("function without an argument");
      x = n.kids.size() == 1 ? n.kids[0] : add(std::move(n));
    }
    std::int32_t call;
    if (fn == Fn::Log && base >= 0) call = func(Fn::Log, {x, base});
    else if (fn == Fn::Log) call = func(Fn::Ln, {x});
    else call = func(fn, {x});
    return power_of >= 0 ? binary_node(Kind::Pow, call, power_of) : call;
  }

  std::int32_t matrix(const std::string& env) {
    if (env == "array" && is_char('{')) {  // column spec {cc}: skip it
      while (!is_char('}') && peek().t != T::End) advance();
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
      if (peek().t == T::Cmd && peek().s == "end:" + env) {
        advance();
        break;
      }
      if (peek().t == T::End) fail("\\begin{" + env + "} without \\end");
      row.push_back(sum());
      if (is_char('&')) {
        advance();
      } else if (peek().t == T::RowSep) {
        advance();
        end_row();
      } else if (!(peek().t == T::Cmd && peek().s == "end:" + env)) {
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
      case T::Num: {
        advance();
        return number(k.s);
      }
      case T::Letter: {
        advance();
        std::string name = k.s;
        if (is_char('_')) {  // x_1, a_{n}
          advance();
          if (is_char('{')) {
            advance();
            name += "_";
            while (!is_char('}') && peek().t != T::End) {
              name += peek().t == T::Char ? std::string(1, peek().c) : peek().s;
              advance();
            }
            expect_char('}');
          } else if (peek().t == T::Num || peek().t == T::Letter) {
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
      case T::Word: advance(); return symbol(k.s);
      case T::Char:
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
      case T::Cmd: return command(k.s);
      case T::RowSep: fail("unexpected '\\\\'");
      case T::End: fail("unexpected end of answer");
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
      if (!(peek().t == T::Cmd && peek().s == "}")) {
        n.kids.push_back(relation());
        while (is_char(',') || is_char(';')) {
          advance();
          n.kids.push_back(relation());
        }
      }
      if (!(peek().t == T::Cmd && peek().s == "}")) fail("unclosed '\\{'");
      advance();
      return add(std::move(n));
    }
    if (name == "lfloor" || name == "lceil") {
      std::int32_t x = sum();
      if (!(peek().t == T::Cmd && (peek().s == "rfloor" || peek().s == "rceil"))) fail("unclosed floor/ceiling");
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
