// data/regex_parse.cpp: the pattern parser of data/regex.h (syntax -> AST + classes).
//
// Recursive descent with bounded nesting. Literals and escapes become character classes
// (a union of general-category masks and ranges, ASCII precomputed); (?i) folds ASCII
// letters; unsupported syntax is reported, never guessed at.
// Invariant: every pattern either parses to an AST with Oniguruma's meaning or throws
// crucible::Error naming the pattern and the offset.
// Reference: Oniguruma doc/RE (syntax ONIG_SYNTAX_ONIGURUMA), UTS #18 (\p, \s, \w).
#include <algorithm>
#include <cctype>
#include <string>

#include "core/error.h"
#include "data/regex_program.h"

namespace crucible::data {

namespace regex_detail {
namespace {

using unicode::category_bit;
using unicode::GeneralCategory;
using GC = GeneralCategory;

constexpr int kMaxDepth = 64;                  // group nesting
constexpr std::uint32_t kMaxRepeat = 100000;   // Oniguruma's ONIG_MAX_REPEAT_NUM

constexpr std::uint32_t kLetters = category_bit(GC::Lu) | category_bit(GC::Ll) | category_bit(GC::Lt) |
                                   category_bit(GC::Lm) | category_bit(GC::Lo);
constexpr std::uint32_t kCased = category_bit(GC::Lu) | category_bit(GC::Ll) | category_bit(GC::Lt);
constexpr std::uint32_t kMarks = category_bit(GC::Mn) | category_bit(GC::Mc) | category_bit(GC::Me);
constexpr std::uint32_t kNumbers = category_bit(GC::Nd) | category_bit(GC::Nl) | category_bit(GC::No);
constexpr std::uint32_t kPunct = category_bit(GC::Pc) | category_bit(GC::Pd) | category_bit(GC::Ps) |
                                 category_bit(GC::Pe) | category_bit(GC::Pi) | category_bit(GC::Pf) |
                                 category_bit(GC::Po);
constexpr std::uint32_t kSymbols = category_bit(GC::Sm) | category_bit(GC::Sc) | category_bit(GC::Sk) |
                                   category_bit(GC::So);
constexpr std::uint32_t kSeparators = category_bit(GC::Zs) | category_bit(GC::Zl) | category_bit(GC::Zp);
constexpr std::uint32_t kOther = category_bit(GC::Cc) | category_bit(GC::Cf) | category_bit(GC::Cs) |
                                 category_bit(GC::Co) | category_bit(GC::Cn);

// Category names as Oniguruma accepts them (compared lowercase, without ' ', '_', '-').
struct CategoryName {
  const char* name;
  std::uint32_t mask;
};
const CategoryName kCategoryNames[] = {
    {"l", kLetters}, {"letter", kLetters}, {"lc", kCased}, {"l&", kCased}, {"casedletter", kCased},
    {"lu", category_bit(GC::Lu)}, {"uppercaseletter", category_bit(GC::Lu)},
    {"ll", category_bit(GC::Ll)}, {"lowercaseletter", category_bit(GC::Ll)},
    {"lt", category_bit(GC::Lt)}, {"titlecaseletter", category_bit(GC::Lt)},
    {"lm", category_bit(GC::Lm)}, {"modifierletter", category_bit(GC::Lm)},
    {"lo", category_bit(GC::Lo)}, {"otherletter", category_bit(GC::Lo)},
    {"m", kMarks}, {"mark", kMarks}, {"combiningmark", kMarks},
    {"mn", category_bit(GC::Mn)}, {"nonspacingmark", category_bit(GC::Mn)},
    {"mc", category_bit(GC::Mc)}, {"spacingmark", category_bit(GC::Mc)},
    {"me", category_bit(GC::Me)}, {"enclosingmark", category_bit(GC::Me)},
    {"n", kNumbers}, {"number", kNumbers},
    {"nd", category_bit(GC::Nd)}, {"decimalnumber", category_bit(GC::Nd)},
    {"nl", category_bit(GC::Nl)}, {"letternumber", category_bit(GC::Nl)},
    {"no", category_bit(GC::No)}, {"othernumber", category_bit(GC::No)},
    {"p", kPunct}, {"punctuation", kPunct},
    {"pc", category_bit(GC::Pc)}, {"connectorpunctuation", category_bit(GC::Pc)},
    {"pd", category_bit(GC::Pd)}, {"dashpunctuation", category_bit(GC::Pd)},
    {"ps", category_bit(GC::Ps)}, {"openpunctuation", category_bit(GC::Ps)},
    {"pe", category_bit(GC::Pe)}, {"closepunctuation", category_bit(GC::Pe)},
    {"pi", category_bit(GC::Pi)}, {"initialpunctuation", category_bit(GC::Pi)},
    {"pf", category_bit(GC::Pf)}, {"finalpunctuation", category_bit(GC::Pf)},
    {"po", category_bit(GC::Po)}, {"otherpunctuation", category_bit(GC::Po)},
    {"s", kSymbols}, {"symbol", kSymbols},
    {"sm", category_bit(GC::Sm)}, {"mathsymbol", category_bit(GC::Sm)},
    {"sc", category_bit(GC::Sc)}, {"currencysymbol", category_bit(GC::Sc)},
    {"sk", category_bit(GC::Sk)}, {"modifiersymbol", category_bit(GC::Sk)},
    {"so", category_bit(GC::So)}, {"othersymbol", category_bit(GC::So)},
    {"z", kSeparators}, {"separator", kSeparators},
    {"zs", category_bit(GC::Zs)}, {"spaceseparator", category_bit(GC::Zs)},
    {"zl", category_bit(GC::Zl)}, {"lineseparator", category_bit(GC::Zl)},
    {"zp", category_bit(GC::Zp)}, {"paragraphseparator", category_bit(GC::Zp)},
    {"c", kOther}, {"other", kOther},
    {"cc", category_bit(GC::Cc)}, {"control", category_bit(GC::Cc)},
    {"cf", category_bit(GC::Cf)}, {"format", category_bit(GC::Cf)},
    {"cs", category_bit(GC::Cs)}, {"surrogate", category_bit(GC::Cs)},
    {"co", category_bit(GC::Co)}, {"privateuse", category_bit(GC::Co)},
    {"cn", category_bit(GC::Cn)}, {"unassigned", category_bit(GC::Cn)},
    {"any", 0xFFFFFFFFu},
};

ClassItem space_item() {  // Oniguruma \s (Unicode): 9..13, U+0085, Zs, Zl, Zp
  ClassItem it;
  it.categories = kSeparators;
  it.ranges = {{0x09, 0x0D}, {0x85, 0x85}};
  return it;
}
ClassItem digit_item() {
  ClassItem it;
  it.categories = category_bit(GC::Nd);
  return it;
}
// Oniguruma's \w (probed through tokenizers): L, M, Nd, Nl, Pc, and the code points of
// No/So that are Alphabetic or Latin-1 "alnum" (superscripts, fractions, circled and
// squared Latin letters).
ClassItem word_item() {
  ClassItem it;
  it.categories = kLetters | kMarks | category_bit(GC::Nd) | category_bit(GC::Nl) | category_bit(GC::Pc);
  it.ranges = {{0xB2, 0xB3}, {0xB9, 0xB9}, {0xBC, 0xBE}, {0x24B6, 0x24E9},
               {0x1F130, 0x1F149}, {0x1F150, 0x1F169}, {0x1F170, 0x1F189}};
  return it;
}


class Parser {
 public:
  Parser(std::string_view pattern, Program& prog) : pat_(pattern), prog_(prog) {}

  Node parse() {
    std::string_view body = pat_;
    // tokenizers' onig wrapper strips a trailing "(?i)" and matches the whole pattern
    // case-insensitively (tokenizers/src/utils/onig.rs).
    if (body.size() >= 4 && body.substr(body.size() - 4) == "(?i)") {
      end_ = body.size() - 4;
      icase_ = true;
    } else {
      end_ = body.size();
    }
    Node n = parse_alt(0);
    if (pos_ < end_) fail(pat_[pos_] == ')' ? "unmatched ')'" : "unexpected character", pos_);
    return n;
  }

 private:
  [[noreturn]] void fail(std::string_view what, std::size_t at) const {
    CRUCIBLE_FAIL("regex '", pat_, "': ", what, " at offset ", at);
  }
  bool more() const { return pos_ < end_; }
  unsigned char peek() const { return static_cast<unsigned char>(pat_[pos_]); }
  bool eat(char c) {
    if (more() && pat_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool starts_with(std::string_view s) const { return pat_.substr(pos_, s.size()) == s && pos_ + s.size() <= end_; }
  char32_t next_cp() {
    const std::size_t at = pos_;
    if (!more()) fail("unexpected end of pattern", at);
    const std::size_t bad = unicode::utf8_invalid_at(pat_.substr(pos_, std::min<std::size_t>(4, end_ - pos_)));
    if (bad == 0) fail("invalid UTF-8", at);
    char32_t cp;
    pos_ += static_cast<std::size_t>(unicode::utf8_decode(reinterpret_cast<const unsigned char*>(pat_.data() + pos_), cp));
    return cp;
  }

  std::uint32_t add_class(CharClass c) {
    c.finish();
    prog_.classes.push_back(std::move(c));
    return static_cast<std::uint32_t>(prog_.classes.size() - 1);
  }
  Node class_node(CharClass c) {
    Node n;
    n.kind = Node::Kind::Class;
    n.cls = add_class(std::move(c));
    return n;
  }
  Node single_item_node(ClassItem it) {
    CharClass c;
    c.items.push_back(std::move(it));
    return class_node(std::move(c));
  }

  // Under (?i): ASCII letters gain their other case and the code points folding onto them;
  // a non-ASCII cased letter is not supported.
  void fold_item(ClassItem& it, std::size_t at) {
    if (!icase_) return;
    if ((it.categories & kCased) != 0 && (it.categories & kCased) != kCased)
      fail("case-insensitive \\p{Lu}/\\p{Ll}/\\p{Lt} is not supported", at);
    std::vector<std::pair<char32_t, char32_t>> extra;
    for (const auto& r : it.ranges) {
      for (char32_t c = r.first; c <= r.second && c < 0x80; ++c) {
        char32_t other = 0;
        if (c >= 'a' && c <= 'z') other = c - 32;
        if (c >= 'A' && c <= 'Z') other = c + 32;
        if (other) extra.push_back({other, other});
        if (c == 's' || c == 'S') extra.push_back({0x17F, 0x17F});  // ſ folds to s
        if (c == 'k' || c == 'K') extra.push_back({0x212A, 0x212A});  // Kelvin sign folds to k
      }
      for (char32_t c = std::max<char32_t>(r.first, 0x80); c <= r.second; ++c) {
        const std::uint32_t bit = category_bit(unicode::general_category(c));
        if (bit & kCased) fail("case-insensitive matching of non-ASCII letters is not supported", at);
      }
    }
    it.ranges.insert(it.ranges.end(), extra.begin(), extra.end());
  }

  std::uint32_t parse_hex(std::size_t max_digits, bool braced) {
    const std::size_t at = pos_;
    std::uint32_t v = 0;
    std::size_t n = 0;
    while (more() && n < max_digits && std::isxdigit(peek())) {
      const unsigned char c = peek();
      v = v * 16 + static_cast<std::uint32_t>(std::isdigit(c) ? c - '0' : (std::tolower(c) - 'a' + 10));
      ++pos_;
      ++n;
      if (v > 0x10FFFF) fail("code point out of range", at);
    }
    if (n == 0 || (!braced && n != max_digits && max_digits == 4)) fail("bad hex escape", at);
    return v;
  }

  // After '\': fills either `item` (a class escape) or `literal`; returns true for an item.
  bool parse_escape(ClassItem& item, char32_t& literal, bool in_class) {
    const std::size_t at = pos_ - 1;
    if (!more()) fail("trailing backslash", at);
    const char c = static_cast<char>(peek());
    ++pos_;
    switch (c) {
      case 't': literal = '\t'; return false;
      case 'n': literal = '\n'; return false;
      case 'r': literal = '\r'; return false;
      case 'f': literal = '\f'; return false;
      case 'v': literal = '\v'; return false;
      case 'a': literal = 0x07; return false;
      case 'e': literal = 0x1B; return false;
      case 'x':
        if (eat('{')) {
          literal = parse_hex(8, true);
          if (!eat('}')) fail("missing '}' in \\x{...}", at);
        } else {
          literal = parse_hex(2, false);
        }
        return false;
      case 'u': literal = parse_hex(4, false); return false;
      case 's': item = space_item(); return true;
      case 'S': item = space_item(); item.negated = true; return true;
      case 'd': item = digit_item(); return true;
      case 'D': item = digit_item(); item.negated = true; return true;
      case 'w': item = word_item(); return true;
      case 'W': item = word_item(); item.negated = true; return true;
      case 'p':
      case 'P': {
        if (!eat('{')) fail("expected '{' after \\p", at);
        bool neg = c == 'P';
        if (eat('^')) neg = !neg;
        std::string name;
        while (more() && peek() != '}') {
          const char ch = static_cast<char>(std::tolower(peek()));
          if (ch != ' ' && ch != '_' && ch != '-') name.push_back(ch);
          ++pos_;
        }
        if (!eat('}')) fail("missing '}' in \\p{...}", at);
        for (const CategoryName& cn : kCategoryNames)
          if (name == cn.name) {
            item = ClassItem{};
            item.categories = cn.mask;
            item.negated = neg;
            return true;
          }
        fail("unsupported Unicode property '" + name + "' (general categories only)", at);
      }
      default: break;
    }
    const unsigned char uc = static_cast<unsigned char>(c);
    if (uc >= 0x80 || std::ispunct(uc) || c == ' ') {  // an escaped symbol stands for itself
      --pos_;
      literal = next_cp();
      return false;
    }
    (void)in_class;
    fail(std::string("unsupported escape '\\") + c + "'", at);
  }

  // After '[': one class (no nesting, no '&&').
  CharClass parse_class() {
    const std::size_t open = pos_ - 1;
    CharClass cls;
    if (eat('^')) cls.negated = true;
    ClassItem lits;  // literal code points and ranges, merged into one item
    bool first = true;
    while (true) {
      if (!more()) fail("missing ']'", open);
      const std::size_t at = pos_;
      if (peek() == ']' && !first) {
        ++pos_;
        break;
      }
      first = false;
      if (peek() == '[') fail("nested character classes are not supported", at);
      if (starts_with("&&")) fail("class intersection '&&' is not supported", at);
      char32_t lo;
      if (eat('\\')) {
        ClassItem item;
        if (parse_escape(item, lo, true)) {
          fold_item(item, at);
          cls.items.push_back(std::move(item));
          continue;
        }
      } else {
        lo = next_cp();
      }
      char32_t hi = lo;
      if (more() && peek() == '-' && pos_ + 1 < end_ && pat_[pos_ + 1] != ']') {
        ++pos_;
        const std::size_t hi_at = pos_;
        if (eat('\\')) {
          ClassItem item;
          if (parse_escape(item, hi, true)) fail("a class escape cannot end a range", hi_at);
        } else {
          if (peek() == '[') fail("nested character classes are not supported", hi_at);
          hi = next_cp();
        }
        if (hi < lo) fail("range out of order in character class", at);
      }
      lits.ranges.push_back({lo, hi});
    }
    if (!lits.ranges.empty()) {
      fold_item(lits, open);
      cls.items.insert(cls.items.begin(), std::move(lits));
    }
    return cls;
  }

  Node parse_alt(int depth) {
    if (depth > kMaxDepth) fail("groups nest too deep", pos_);
    std::vector<Node> alts;
    alts.push_back(parse_concat(depth));
    while (eat('|')) alts.push_back(parse_concat(depth));
    if (alts.size() == 1) return std::move(alts[0]);
    Node n;
    n.kind = Node::Kind::Alt;
    n.kids = std::move(alts);
    return n;
  }

  Node parse_concat(int depth) {
    Node seq;
    seq.kind = Node::Kind::Concat;
    while (more() && peek() != '|' && peek() != ')') {
      // "(?i)" / "(?-i)" in the middle: the option holds to the end of the enclosing group,
      // across its remaining alternatives (Oniguruma).
      if (starts_with("(?i)") || starts_with("(?-i)")) {
        const bool on = pat_[pos_ + 2] == 'i';
        pos_ += on ? 4 : 5;
        const bool saved = icase_;
        icase_ = on;
        seq.kids.push_back(parse_alt(depth + 1));
        icase_ = saved;
        break;
      }
      Node atom = parse_atom(depth);
      const std::size_t qat = pos_;
      std::uint32_t min, max;
      RepeatMode mode;
      while (parse_quantifier(min, max, mode)) {
        if (atom.kind == Node::Kind::Assert || atom.kind == Node::Kind::Look)
          fail("quantifier after an assertion", qat);
        Node r;
        r.kind = Node::Kind::Repeat;
        r.min = min;
        r.max = max;
        r.mode = mode;
        r.kids.push_back(std::move(atom));
        atom = std::move(r);
      }
      seq.kids.push_back(std::move(atom));
    }
    if (seq.kids.size() == 1) return std::move(seq.kids[0]);
    if (seq.kids.empty()) seq.kind = Node::Kind::Empty;
    return seq;
  }

  bool parse_count(std::uint32_t& v) {
    const std::size_t at = pos_;
    std::uint64_t x = 0;
    while (more() && std::isdigit(peek())) {
      x = x * 10 + (peek() - '0');
      if (x > kMaxRepeat) fail("repeat count too large (max 100000)", at);
      ++pos_;
    }
    v = static_cast<std::uint32_t>(x);
    return pos_ > at;
  }

  bool parse_quantifier(std::uint32_t& min, std::uint32_t& max, RepeatMode& mode) {
    if (!more()) return false;
    const std::size_t at = pos_;
    bool interval = false;
    switch (peek()) {
      case '?': min = 0, max = 1, ++pos_; break;
      case '*': min = 0, max = kUnbounded, ++pos_; break;
      case '+': min = 1, max = kUnbounded, ++pos_; break;
      case '{': {
        ++pos_;
        std::uint32_t a = 0, b = 0;
        const bool has_a = parse_count(a);
        bool ok = true;
        if (eat(',')) {
          const bool has_b = parse_count(b);
          ok = has_a || has_b;
          min = has_a ? a : 0;
          max = has_b ? b : kUnbounded;
        } else {
          ok = has_a;
          min = max = a;
        }
        if (!ok || !eat('}')) {  // not an interval: '{' is a literal (Oniguruma)
          pos_ = at;
          return false;
        }
        if (max < min) fail("repeat range out of order", at);
        interval = true;
        break;
      }
      default: return false;
    }
    mode = RepeatMode::Greedy;
    if (eat('?')) {
      mode = RepeatMode::Lazy;
    } else if (more() && peek() == '+') {
      if (interval) fail("'+' after an interval is not supported", pos_);
      ++pos_;
      mode = RepeatMode::Possessive;
    }
    return true;
  }

  Node parse_group(int depth) {
    const std::size_t open = pos_ - 1;
    Node n;
    bool saved = icase_;
    if (eat('?')) {
      if (eat(':')) {
        n = parse_alt(depth + 1);
      } else if (starts_with("i:") || starts_with("-i:")) {
        icase_ = peek() == 'i';
        pos_ += icase_ ? 2 : 3;
        n = parse_alt(depth + 1);
      } else if (eat('=') || (more() && peek() == '!')) {
        const bool neg = eat('!');
        n.kind = Node::Kind::Look;
        n.negate = neg;
        n.kids.push_back(parse_alt(depth + 1));
      } else if (eat('>')) {
        n.kind = Node::Kind::Atomic;
        n.kids.push_back(parse_alt(depth + 1));
      } else if (more() && peek() == '<' && pos_ + 1 < end_ && pat_[pos_ + 1] != '=' && pat_[pos_ + 1] != '!') {
        ++pos_;  // named group: the name is irrelevant, captures are not reported
        while (more() && peek() != '>') ++pos_;
        if (!eat('>')) fail("unterminated group name", open);
        n = parse_alt(depth + 1);
      } else if (starts_with("<=") || starts_with("<!")) {
        fail("lookbehind is not supported", open);
      } else {
        fail("unsupported group syntax '(?" + std::string(pat_.substr(pos_, 1)) + "'", open);
      }
    } else {
      n = parse_alt(depth + 1);  // capturing group: captures are not reported
    }
    icase_ = saved;
    if (!eat(')')) fail("missing ')'", open);
    return n;
  }

  Node assert_node(AssertKind k) {
    Node n;
    n.kind = Node::Kind::Assert;
    n.assert_kind = k;
    return n;
  }

  Node parse_atom(int depth) {
    const std::size_t at = pos_;
    const unsigned char c = peek();
    if (c == '(') {
      ++pos_;
      return parse_group(depth);
    }
    if (c == '[') {
      ++pos_;
      return class_node(parse_class());
    }
    if (c == '*' || c == '+' || c == '?') fail("quantifier without an operand", at);
    if (c == '{') {  // a literal '{' unless it reads as an interval
      std::uint32_t mn, mx;
      RepeatMode md;
      if (parse_quantifier(mn, mx, md)) fail("quantifier without an operand", at);
    }
    if (c == '.') {
      ++pos_;
      CharClass cls;
      cls.negated = true;
      ClassItem nl;
      nl.ranges = {{'\n', '\n'}};
      cls.items.push_back(nl);
      return class_node(std::move(cls));
    }
    if (c == '^') return ++pos_, assert_node(AssertKind::LineStart);
    if (c == '$') return ++pos_, assert_node(AssertKind::LineEnd);
    char32_t lit;
    if (c == '\\') {
      ++pos_;
      if (more()) {
        switch (peek()) {
          case 'A': return ++pos_, assert_node(AssertKind::TextStart);
          case 'z': return ++pos_, assert_node(AssertKind::TextEnd);
          case 'Z': return ++pos_, assert_node(AssertKind::TextEndNewline);
          case 'b': return ++pos_, assert_node(AssertKind::WordBoundary);
          case 'B': return ++pos_, assert_node(AssertKind::NotWordBoundary);
          default: break;
        }
        if (std::isdigit(peek()) && peek() != '0') fail("backreferences are not supported", at);
      }
      ClassItem item;
      if (parse_escape(item, lit, false)) {
        fold_item(item, at);
        return single_item_node(std::move(item));
      }
    } else {
      lit = next_cp();
    }
    ClassItem item;
    item.ranges = {{lit, lit}};
    fold_item(item, at);
    return single_item_node(std::move(item));
  }

  std::string_view pat_;
  Program& prog_;
  std::size_t pos_ = 0, end_ = 0;
  bool icase_ = false;
};

}  // namespace

bool is_word_char(char32_t cp) {
  static const ClassItem word = word_item();
  return word.contains(cp);
}

Node parse_pattern(std::string_view pattern, Program& prog) { return Parser(pattern, prog).parse(); }

}  // namespace regex_detail
}  // namespace crucible::data
