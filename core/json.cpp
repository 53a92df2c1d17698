// core/json.cpp: the strict JSON reader and writer declared in core/json.h.
//
// Invariant: parse() accepts exactly the RFC 8259 grammar (plus one leading BOM)
// with well-formed UTF-8 in strings, and dump() writes only text that parse()
// accepts and that reads back to an equal Value. The reader is a recursive descent
// over the bytes, at most 512 containers deep; every container collects its
// elements on a scratch stack shared by the whole parse and is then allocated
// once, at its final size (tokenizer.json holds ~150k two-element arrays).
// Reference: RFC 8259; Unicode §3.9 Table 3-7 (well-formed UTF-8 byte sequences).
#include "core/json.h"

#include <array>
#include <bit>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <iterator>
#include <limits>
#include <new>

#include "core/error.h"

namespace crucible::json {

std::string_view kind_name(Kind k) {
  switch (k) {
    case Kind::Null: return "null";
    case Kind::Bool: return "bool";
    case Kind::Number: return "number";
    case Kind::String: return "string";
    case Kind::Array: return "array";
    case Kind::Object: return "object";
  }
  return "?";
}

namespace {

constexpr int kMaxDepth = 512;

std::string_view kind_with_article(Kind k) {
  switch (k) {
    case Kind::Null: return "null";
    case Kind::Bool: return "a bool";
    case Kind::Number: return "a number";
    case Kind::String: return "a string";
    case Kind::Array: return "an array";
    case Kind::Object: return "an object";
  }
  return "?";
}

// Bytes that may appear in a string literal as they are: printable ASCII and DEL,
// except '"' and '\\'. Everything else needs a look (end, escape, control, UTF-8).
constexpr std::array<bool, 256> kPlain = [] {
  std::array<bool, 256> t{};
  for (int c = 0x20; c < 0x80; ++c) t[c] = c != '"' && c != '\\';
  return t;
}();

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Length of the well-formed UTF-8 sequence at p (lead byte >= 0x80), or 0 with
// *why set. Table 3-7: the second byte's range depends on the lead byte, which is
// what rules out overlong forms, encoded surrogates and code points > U+10FFFF.
int utf8_sequence_length(const unsigned char* p, std::size_t avail, const char** why) {
  const unsigned c = p[0];
  int len = 0;
  unsigned lo = 0x80, hi = 0xBF;
  if (c < 0xC0) {
    *why = "unexpected UTF-8 continuation byte";
    return 0;
  } else if (c < 0xC2) {
    *why = "overlong UTF-8 encoding";
    return 0;
  } else if (c < 0xE0) {
    len = 2;
  } else if (c < 0xF0) {
    len = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c < 0xF5) {
    len = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    *why = "byte that never appears in UTF-8";
    return 0;
  }
  for (int i = 1; i < len; ++i) {
    if (static_cast<std::size_t>(i) >= avail || (p[i] & 0xC0) != 0x80) {
      *why = "truncated UTF-8 sequence";
      return 0;
    }
  }
  if (p[1] < lo || p[1] > hi) {
    *why = c == 0xE0 || c == 0xF0 ? "overlong UTF-8 encoding"
           : c == 0xED           ? "UTF-16 surrogate encoded in UTF-8"
                                 : "UTF-8 sequence above U+10FFFF";
    return 0;
  }
  return len;
}

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::string hex_byte(unsigned char c) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  return {'0', 'x', kHex[c >> 4], kHex[c & 15]};
}

// For an out-of-range number (std::from_chars said so): is it too large (true) or
// too small (false)? Decides by the decimal exponent of the first non-zero digit.
bool magnitude_above_one(const char* p, const char* end) {
  if (*p == '-') ++p;
  bool found = false;   // a non-zero mantissa digit seen
  long long first = 0;  // decimal exponent of the first non-zero digit
  for (; p < end && is_digit(*p); ++p) {
    if (found) ++first;
    else if (*p != '0') found = true;
  }
  if (p < end && *p == '.') {
    long long k = 0;
    for (++p; p < end && is_digit(*p); ++p) {
      --k;
      if (!found && *p != '0') found = true, first = k;
    }
  }
  long long exp = 0;
  if (p < end && (*p == 'e' || *p == 'E')) {
    ++p;
    bool neg = *p == '-';
    if (*p == '+' || *p == '-') ++p;
    for (; p < end && is_digit(*p); ++p) exp = std::min(exp * 10 + (*p - '0'), 1'000'000'000LL);
    if (neg) exp = -exp;
  }
  return first + exp >= 0;
}

// Keeps the first position and the last value of each key (the object is small
// or indexed by a throwaway hash table), preserving the order of first occurrences.
void dedupe_keys(Object& o) {
  const std::size_t n = o.size();
  if (n < 2) return;
  std::size_t kept = 0;
  auto keep = [&](std::size_t i) {
    if (kept != i) o[kept] = std::move(o[i]);
    ++kept;
  };
  if (n <= 16) {
    for (std::size_t i = 0; i < n; ++i) {
      std::size_t j = 0;
      while (j < kept && o[j].first != o[i].first) ++j;
      if (j < kept) o[j].second = std::move(o[i].second);
      else keep(i);
    }
  } else {
    constexpr std::size_t kEmpty = std::numeric_limits<std::size_t>::max();
    const std::size_t mask = std::bit_ceil(2 * n) - 1;
    std::vector<std::size_t> slots(mask + 1, kEmpty);  // index into the kept prefix
    std::hash<std::string_view> hash;
    for (std::size_t i = 0; i < n; ++i) {
      std::size_t s = hash(o[i].first) & mask;
      while (slots[s] != kEmpty && o[slots[s]].first != o[i].first) s = (s + 1) & mask;
      if (slots[s] != kEmpty) {
        o[slots[s]].second = std::move(o[i].second);
      } else {
        slots[s] = kept;
        keep(i);
      }
    }
  }
  o.erase(o.begin() + static_cast<std::ptrdiff_t>(kept), o.end());
}

}  // namespace

// ---------------------------------------------------------------------------------
// Reader

class Parser {
 public:
  Parser(std::string_view text, std::string_view source)
      : begin_(text.data()), p_(text.data()), end_(text.data() + text.size()), source_(source) {
    values_.reserve(64);
    members_.reserve(64);
  }

  Value parse_document() {
    if (end_ - p_ >= 3 && std::memcmp(p_, "\xEF\xBB\xBF", 3) == 0) p_ += 3;
    skip_ws();
    if (p_ == end_) fail_at(p_, "expected a JSON value, found end of input (the document is empty)");
    Value v = parse_value();
    skip_ws();
    if (p_ != end_) fail_expected(p_, "end of input after the JSON document");
    return v;
  }

 private:
  // Error position: line and byte column of pos, counted from the start (cold path).
  [[noreturn]] void fail_at(const char* pos, std::string_view what) const {
    int line = 1;
    const char* line_start = begin_;
    for (const char* q = begin_; q < pos; ++q) {
      if (*q == '\n') ++line, line_start = q + 1;
    }
    CRUCIBLE_FAIL(source_, ':', line, ':', pos - line_start + 1, ": ", what);
  }

  [[noreturn]] void fail_expected(const char* pos, std::string_view expected) const {
    fail_at(pos, detail::concat("expected ", expected, ", found ", describe(pos)));
  }

  std::string describe(const char* pos) const {
    if (pos >= end_) return "end of input";
    const auto c = static_cast<unsigned char>(*pos);
    if (c >= 0x20 && c < 0x7F) return std::string{'\'', static_cast<char>(c), '\''};
    if (c < 0x20 || c == 0x7F) return "control character " + hex_byte(c);
    return "byte " + hex_byte(c);
  }

  void skip_ws() {
    while (p_ < end_) {
      const char c = *p_;
      if (c == ' ' || c == '\t' || c == '\r') {
        ++p_;
      } else if (c == '\n') {
        ++p_;
        ++line_;
      } else {
        break;
      }
    }
  }

  // p_ is at the first byte of a value (whitespace already skipped).
  Value parse_value() {
    if (p_ == end_) fail_expected(p_, "a value");
    switch (*p_) {
      case '{': return parse_object();
      case '[': return parse_array();
      case '"': {
        Value v;
        v.line_ = line_;
        new (&v.u_.s) std::string();
        v.kind_ = Kind::String;
        parse_string(v.u_.s);
        return v;
      }
      case 't': return parse_literal("true", Value(true));
      case 'f': return parse_literal("false", Value(false));
      case 'n': return parse_literal("null", Value());
      case '-': case '0': case '1': case '2': case '3': case '4':
      case '5': case '6': case '7': case '8': case '9':
        return parse_number();
      default: fail_expected(p_, "a value");
    }
  }

  Value parse_literal(std::string_view word, Value v) {
    std::size_t i = 0;
    while (i < word.size() && p_ + i < end_ && p_[i] == word[i]) ++i;
    if (i < word.size()) fail_expected(p_ + i, detail::concat("the literal ", word));
    p_ += word.size();
    v.line_ = line_;
    return v;
  }

  void enter(const char* open) {
    if (++depth_ > kMaxDepth)
      fail_at(open, detail::concat("nesting deeper than ", kMaxDepth, " arrays/objects"));
  }

  Value parse_array() {
    Value v;
    v.line_ = line_;
    enter(p_);
    ++p_;
    skip_ws();
    const std::size_t base = values_.size();
    if (p_ < end_ && *p_ == ']') {
      ++p_;
    } else {
      for (;;) {
        values_.push_back(parse_value());
        skip_ws();
        if (p_ < end_ && *p_ == ',') {
          ++p_;
          skip_ws();
          if (p_ < end_ && *p_ == ']')
            fail_at(p_, "expected a value after ',', found ']' (trailing commas are not JSON)");
          continue;
        }
        if (p_ < end_ && *p_ == ']') {
          ++p_;
          break;
        }
        fail_expected(p_, "',' or ']' after array element");
      }
    }
    const auto first = values_.begin() + static_cast<std::ptrdiff_t>(base);
    v.u_.a = new Array(std::make_move_iterator(first), std::make_move_iterator(values_.end()));
    v.kind_ = Kind::Array;
    values_.erase(first, values_.end());
    --depth_;
    return v;
  }

  Value parse_object() {
    Value v;
    v.line_ = line_;
    enter(p_);
    ++p_;
    skip_ws();
    const std::size_t base = members_.size();
    if (p_ < end_ && *p_ == '}') {
      ++p_;
    } else {
      for (bool first = true;; first = false) {
        if (p_ == end_ || *p_ != '"') {
          if (!first && p_ < end_ && *p_ == '}')
            fail_at(p_, "expected a string key after ',', found '}' (trailing commas are not JSON)");
          fail_expected(p_, first ? "a string key or '}'" : "a string key after ','");
        }
        std::string key;
        parse_string(key);
        skip_ws();
        if (p_ == end_ || *p_ != ':') fail_expected(p_, "':' after object key");
        ++p_;
        skip_ws();
        Value value = parse_value();
        members_.emplace_back(std::move(key), std::move(value));
        skip_ws();
        if (p_ < end_ && *p_ == ',') {
          ++p_;
          skip_ws();
          continue;
        }
        if (p_ < end_ && *p_ == '}') {
          ++p_;
          break;
        }
        fail_expected(p_, "',' or '}' after object member");
      }
    }
    const auto first = members_.begin() + static_cast<std::ptrdiff_t>(base);
    v.u_.o = new Object(std::make_move_iterator(first), std::make_move_iterator(members_.end()));
    v.kind_ = Kind::Object;
    members_.erase(first, members_.end());
    dedupe_keys(*v.u_.o);
    --depth_;
    return v;
  }

  // p_ is at the opening quote; appends the decoded contents to out.
  void parse_string(std::string& out) {
    const char* p = p_ + 1;
    const char* run = p;  // start of the bytes not yet copied to out
    for (;;) {
      while (p < end_ && kPlain[static_cast<unsigned char>(*p)]) ++p;
      if (p == end_) fail_expected(p, "'\"' to close the string");
      const auto c = static_cast<unsigned char>(*p);
      if (c == '"') break;
      if (c >= 0x80) {
        const char* why = nullptr;
        const int len = utf8_sequence_length(reinterpret_cast<const unsigned char*>(p),
                                             static_cast<std::size_t>(end_ - p), &why);
        if (len == 0) fail_at(p, detail::concat("invalid UTF-8 in string: ", why, " (byte ",
                                                hex_byte(c), ")"));
        p += len;
      } else if (c == '\\') {
        out.append(run, p);
        p = parse_escape(p, out);
        run = p;
      } else {
        const std::string hex = hex_byte(c);
        fail_at(p, detail::concat("unescaped control character ", hex, " in string (escape it as \\u00",
                                  std::string_view(hex).substr(2), ")"));
      }
    }
    out.append(run, p);
    p_ = p + 1;
  }

  // p is at a backslash; appends the decoded character and returns what follows.
  const char* parse_escape(const char* p, std::string& out) {
    if (p + 1 == end_) fail_expected(p + 1, "an escape character after '\\'");
    switch (p[1]) {
      case '"': out += '"'; return p + 2;
      case '\\': out += '\\'; return p + 2;
      case '/': out += '/'; return p + 2;
      case 'b': out += '\b'; return p + 2;
      case 'f': out += '\f'; return p + 2;
      case 'n': out += '\n'; return p + 2;
      case 'r': out += '\r'; return p + 2;
      case 't': out += '\t'; return p + 2;
      case 'u': break;
      default:
        fail_at(p, detail::concat("invalid escape in string: expected one of \"\\/bfnrtu after '\\', found ",
                                  describe(p + 1)));
    }
    std::uint32_t cp = read_hex4(p + 2);
    const char* next = p + 6;
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      const bool pair = end_ - next >= 2 && next[0] == '\\' && next[1] == 'u';
      const std::uint32_t low = pair ? read_hex4(next + 2) : 0;
      if (low < 0xDC00 || low > 0xDFFF)
        fail_at(p, detail::concat("lone surrogate \\u", std::string_view(p + 2, 4),
                                  " in string (a high surrogate must be followed by \\uDC00-\\uDFFF)"));
      cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
      next += 6;
    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
      fail_at(p, detail::concat("lone surrogate \\u", std::string_view(p + 2, 4),
                                " in string (a low surrogate must follow \\uD800-\\uDBFF)"));
    }
    append_utf8(out, cp);
    return next;
  }

  std::uint32_t read_hex4(const char* p) const {
    const std::ptrdiff_t avail = end_ - p;
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = i < avail ? p[i] : '\0';
      int d = c >= '0' && c <= '9'   ? c - '0'
              : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                     : -1;
      if (d < 0) fail_expected(p + i, "4 hex digits after '\\u'");
      v = v * 16 + static_cast<std::uint32_t>(d);
    }
    return v;
  }

  // Grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
  Value parse_number() {
    const char* start = p_;
    const char* p = p_;
    const bool negative = *p == '-';
    if (negative) ++p;
    if (p == end_ || !is_digit(*p)) fail_expected(p, "a digit after '-'");
    std::uint64_t mantissa = 0;
    int digits = 0;
    if (*p == '0') {
      ++p;
      if (p < end_ && is_digit(*p)) fail_at(start, "leading zeros are not allowed in numbers");
    } else {
      for (; p < end_ && is_digit(*p); ++p, ++digits) {
        if (digits < 19) mantissa = mantissa * 10 + static_cast<unsigned>(*p - '0');
      }
    }
    bool integer = true;
    if (p < end_ && *p == '.') {
      integer = false;
      ++p;
      if (p == end_ || !is_digit(*p)) fail_expected(p, "a digit after '.' in number");
      while (p < end_ && is_digit(*p)) ++p;
    }
    if (p < end_ && (*p == 'e' || *p == 'E')) {
      integer = false;
      ++p;
      if (p < end_ && (*p == '+' || *p == '-')) ++p;
      if (p == end_ || !is_digit(*p)) fail_expected(p, "a digit in the exponent of number");
      while (p < end_ && is_digit(*p)) ++p;
    }
    p_ = p;
    Value v;
    v.kind_ = Kind::Number;
    v.line_ = line_;
    // 19 digits stay below 2^64; INT64_MIN's magnitude is INT64_MAX + 1.
    constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    if (integer && digits <= 19 && mantissa <= kMax + (negative ? 1 : 0)) {
      v.is_int_ = true;
      v.u_.i = static_cast<std::int64_t>(negative ? 0 - mantissa : mantissa);  // modular (C++20)
      return v;
    }
    double d = 0;
    const auto r = std::from_chars(start, p, d);
    if (r.ec == std::errc::result_out_of_range) {
      if (magnitude_above_one(start, p))
        fail_at(start, detail::concat("number ", std::string_view(start, static_cast<std::size_t>(p - start)),
                                      " is out of the range of a double"));
      d = negative ? -0.0 : 0.0;  // underflow: below the smallest subnormal
    } else {
      CRUCIBLE_CHECK(r.ec == std::errc() && r.ptr == p, "from_chars disagrees with the JSON number grammar");
    }
    v.u_.d = d;
    return v;
  }

  const char* begin_;
  const char* p_;
  const char* end_;
  std::string_view source_;
  int line_ = 1;
  int depth_ = 0;
  std::vector<Value> values_;    // elements of the arrays being parsed, innermost last
  std::vector<Member> members_;  // members of the objects being parsed, innermost last
};

Value parse(std::string_view text, std::string_view source) {
  return Parser(text, source).parse_document();
}

Value parse_file(const std::string& path) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  CRUCIBLE_USER_CHECK(f != nullptr, "cannot open JSON file '", path, "': ", std::strerror(errno));
  std::string text;
  if (std::fseek(f.get(), 0, SEEK_END) == 0) {
    if (long size = std::ftell(f.get()); size > 0) text.reserve(static_cast<std::size_t>(size));
    std::rewind(f.get());
  }
  char buf[1 << 16];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, f.get())) text.append(buf, n);
  CRUCIBLE_USER_CHECK(!std::ferror(f.get()), "cannot read JSON file '", path, "': ", std::strerror(errno));
  return parse(text, path);
}

// ---------------------------------------------------------------------------------
// Value

Value::Value(bool b) : kind_(Kind::Bool) { u_.b = b; }
Value::Value(std::int64_t v) : kind_(Kind::Number), is_int_(true) { u_.i = v; }
Value::Value(std::uint64_t v) : kind_(Kind::Number), is_int_(true) {
  CRUCIBLE_CHECK(v <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()),
                 "json::Value(uint64_t): ", v, " does not fit int64");
  u_.i = static_cast<std::int64_t>(v);
}
Value::Value(double v) : kind_(Kind::Number) { u_.d = v; }
Value::Value(std::string s) : kind_(Kind::String) { new (&u_.s) std::string(std::move(s)); }
Value::Value(Array a) : kind_(Kind::Array) { u_.a = new Array(std::move(a)); }
Value::Value(Object o) : kind_(Kind::Object) { u_.o = new Object(std::move(o)); }

Value::Value(const Value& other) { copy_from(other); }
Value::Value(Value&& other) noexcept { steal(other); }
Value::~Value() { destroy(); }

// Both assignments build the new contents before releasing the old ones, so that
// assigning a Value's own element to it (v = v.as_array()[0]) is safe.
Value& Value::operator=(const Value& other) {
  if (this != &other) {
    Value copy(other);
    destroy();
    steal(copy);
  }
  return *this;
}

Value& Value::operator=(Value&& other) noexcept {
  if (this != &other) {
    Value moved(std::move(other));
    destroy();
    steal(moved);
  }
  return *this;
}

// destroy() and steal() run several times per parsed value (scratch stack, then the
// container): keep the resource-free kinds on a short path.
void Value::destroy() noexcept {
  switch (kind_) {
    case Kind::String: u_.s.~basic_string(); break;
    case Kind::Array: delete u_.a; break;
    case Kind::Object: delete u_.o; break;
    default: break;
  }
  kind_ = Kind::Null;
  is_int_ = false;
  u_.i = 0;
}

void Value::steal(Value& other) noexcept {
  kind_ = other.kind_;
  is_int_ = other.is_int_;
  line_ = other.line_;
  switch (other.kind_) {
    case Kind::String:
      new (&u_.s) std::string(std::move(other.u_.s));
      other.u_.s.~basic_string();
      break;
    case Kind::Array: u_.a = other.u_.a; break;
    case Kind::Object: u_.o = other.u_.o; break;
    case Kind::Bool: u_.b = other.u_.b; break;
    case Kind::Number: other.is_int_ ? void(u_.i = other.u_.i) : void(u_.d = other.u_.d); break;
    case Kind::Null: break;
  }
  other.kind_ = Kind::Null;
  other.is_int_ = false;
  other.u_.i = 0;
}

void Value::copy_from(const Value& other) {
  switch (other.kind_) {
    case Kind::String: new (&u_.s) std::string(other.u_.s); break;
    case Kind::Array: u_.a = new Array(*other.u_.a); break;
    case Kind::Object: u_.o = new Object(*other.u_.o); break;
    case Kind::Bool: u_.b = other.u_.b; break;
    case Kind::Number: other.is_int_ ? void(u_.i = other.u_.i) : void(u_.d = other.u_.d); break;
    case Kind::Null: break;
  }
  kind_ = other.kind_;  // set last: a throwing copy leaves *this null
  is_int_ = other.is_int_;
  line_ = other.line_;
}

void Value::fail_kind(std::string_view expected) const {
  const std::string where = line_ > 0 ? detail::concat("line ", line_, ": ") : std::string();
  if (kind_ == Kind::Number && !is_int_)
    CRUCIBLE_FAIL(where, "expected ", expected, ", got the number ", dump(*this));
  CRUCIBLE_FAIL(where, "expected ", expected, ", got ", kind_with_article(kind_));
}

bool Value::as_bool() const {
  if (kind_ != Kind::Bool) fail_kind("a bool");
  return u_.b;
}

double Value::as_double() const {
  if (kind_ != Kind::Number) fail_kind("a number");
  return is_int_ ? static_cast<double>(u_.i) : u_.d;  // int64 -> double rounds to nearest
}

std::int64_t Value::as_int64() const {
  if (!is_integer()) fail_kind("an integer that fits int64");
  return u_.i;
}

const std::string& Value::as_string() const {
  if (kind_ != Kind::String) fail_kind("a string");
  return u_.s;
}

const Array& Value::as_array() const {
  if (kind_ != Kind::Array) fail_kind("an array");
  return *u_.a;
}

Array& Value::as_array() {
  if (kind_ != Kind::Array) fail_kind("an array");
  return *u_.a;
}

const Object& Value::as_object() const {
  if (kind_ != Kind::Object) fail_kind("an object");
  return *u_.o;
}

Object& Value::as_object() {
  if (kind_ != Kind::Object) fail_kind("an object");
  return *u_.o;
}

const Value* Value::find(std::string_view key) const {
  if (kind_ != Kind::Object) return nullptr;
  for (const Member& m : *u_.o) {
    if (m.first == key) return &m.second;
  }
  return nullptr;
}

Value* Value::find(std::string_view key) {
  return const_cast<Value*>(static_cast<const Value*>(this)->find(key));
}

const Value& Value::at(std::string_view key) const {
  if (kind_ != Kind::Object) fail_kind("an object");
  if (const Value* v = find(key)) return *v;
  const std::string where = line_ > 0 ? detail::concat("line ", line_, ": ") : std::string();
  CRUCIBLE_FAIL(where, "missing key \"", key, "\" in object");
}

Value& Value::set(std::string key, Value v) {
  if (kind_ != Kind::Object) fail_kind("an object");
  if (Value* existing = find(key)) return *existing = std::move(v);
  return u_.o->emplace_back(std::move(key), std::move(v)).second;
}

void Value::push_back(Value v) {
  if (kind_ != Kind::Array) fail_kind("an array");
  u_.a->push_back(std::move(v));
}

std::size_t Value::size() const {
  if (kind_ == Kind::Array) return u_.a->size();
  if (kind_ == Kind::Object) return u_.o->size();
  return 0;
}

// ---------------------------------------------------------------------------------
// Writer

namespace {

// Appends s as a JSON string literal. Throws on invalid UTF-8 so that dump()
// never writes a document that parse() would reject.
void write_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  const auto* run = p;
  while (p < end) {
    if (kPlain[*p]) {
      ++p;
      continue;
    }
    out.append(reinterpret_cast<const char*>(run), reinterpret_cast<const char*>(p));
    const unsigned char c = *p;
    if (c >= 0x80) {
      const char* why = nullptr;
      const int len = utf8_sequence_length(p, static_cast<std::size_t>(end - p), &why);
      CRUCIBLE_USER_CHECK(len > 0, "cannot write a string as JSON: invalid UTF-8: ", why, " (byte ", hex_byte(c),
                          " at offset ", p - reinterpret_cast<const unsigned char*>(s.data()), ")");
      out.append(reinterpret_cast<const char*>(p), static_cast<std::size_t>(len));
      p += len;
    } else {
      out += '\\';
      switch (c) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '\b': out += 'b'; break;
        case '\f': out += 'f'; break;
        case '\n': out += 'n'; break;
        case '\r': out += 'r'; break;
        case '\t': out += 't'; break;
        default: out += "u00", out += kHex[c >> 4], out += kHex[c & 15]; break;
      }
      ++p;
    }
    run = p;
  }
  out.append(reinterpret_cast<const char*>(run), reinterpret_cast<const char*>(p));
  out += '"';
}

class Writer {
 public:
  explicit Writer(int indent) : indent_(indent) {}

  void write(const Value& v, int depth) {
    switch (v.kind()) {
      case Kind::Null: out_ += "null"; break;
      case Kind::Bool: out_ += v.as_bool() ? "true" : "false"; break;
      case Kind::Number: write_number(v); break;
      case Kind::String: write_string(out_, v.as_string()); break;
      case Kind::Array: {
        const Array& a = v.as_array();
        out_ += '[';
        for (std::size_t i = 0; i < a.size(); ++i) {
          if (i > 0) out_ += ',';
          newline(depth + 1);
          write(a[i], depth + 1);
        }
        if (!a.empty()) newline(depth);
        out_ += ']';
        break;
      }
      case Kind::Object: {
        const Object& o = v.as_object();
        out_ += '{';
        for (std::size_t i = 0; i < o.size(); ++i) {
          if (i > 0) out_ += ',';
          newline(depth + 1);
          write_string(out_, o[i].first);
          out_ += indent_ >= 0 ? ": " : ":";
          write(o[i].second, depth + 1);
        }
        if (!o.empty()) newline(depth);
        out_ += '}';
        break;
      }
    }
  }

  std::string take() { return std::move(out_); }

 private:
  void newline(int depth) {
    if (indent_ < 0) return;
    out_ += '\n';
    out_.append(static_cast<std::size_t>(depth) * static_cast<std::size_t>(indent_), ' ');
  }

  void write_number(const Value& v) {
    char buf[32];
    if (v.is_integer()) {
      const char* end = std::to_chars(buf, buf + sizeof buf, v.as_int64()).ptr;
      out_.append(buf, static_cast<std::size_t>(end - buf));
      return;
    }
    const double d = v.as_double();
    CRUCIBLE_USER_CHECK(std::isfinite(d), "cannot write ", d, " as JSON: NaN and infinities are not JSON numbers");
    const char* end = std::to_chars(buf, buf + sizeof buf, d).ptr;  // shortest round-trip form
    out_.append(buf, static_cast<std::size_t>(end - buf));
    // Keep doubles doubles: "1" would read back as an integer, so write "1.0".
    if (std::string_view(buf, static_cast<std::size_t>(end - buf)).find_first_of(".e") == std::string_view::npos)
      out_ += ".0";
  }

  int indent_;
  std::string out_;
};

}  // namespace

std::string dump(const Value& v, int indent) {
  Writer w(indent);
  w.write(v, 0);
  return w.take();
}

std::string quote(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  write_string(out, s);
  return out;
}

bool is_valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  for (std::size_t i = 0; i < n;) {
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    const char* why = nullptr;
    const int len = utf8_sequence_length(p + i, n - i, &why);
    if (len == 0) return false;
    i += static_cast<std::size_t>(len);
  }
  return true;
}

}  // namespace crucible::json
