// core/json.h: a small, strict JSON (RFC 8259) reader and writer.
//
// Used for Hugging Face config.json, safetensors headers, tokenizer.json, JSONL
// data and the `--json` outputs. Objects keep their insertion order (safetensors
// and config.json are written back in a stable order). Every Value remembers the
// line it started on, so a caller can say where a bad value is. Parse errors are
// crucible::Error with "<source>:<line>:<col>: <what>".
//
// Numbers: integers that fit int64 keep their exact value (as_int64); all numbers
// are available as double. Strings are UTF-8; \uXXXX escapes (with surrogate
// pairs) decode to UTF-8; invalid UTF-8 or a lone surrogate is a parse error.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace crucible::json {

class Value;
using Array = std::vector<Value>;
using Member = std::pair<std::string, Value>;
using Object = std::vector<Member>;  // insertion order; lookups are linear (small objects)

enum class Kind : std::uint8_t { Null, Bool, Number, String, Array, Object };

std::string_view kind_name(Kind k);  // "null", "bool", "number", "string", "array", "object"

class Value {
 public:
  Value() = default;  // null
  Value(std::nullptr_t) {}
  Value(bool b);
  Value(int v) : Value(static_cast<std::int64_t>(v)) {}
  Value(std::int64_t v);
  Value(std::uint64_t v);  // must fit int64
  Value(double v);
  Value(const char* s) : Value(std::string(s)) {}
  Value(std::string_view s) : Value(std::string(s)) {}
  Value(std::string s);
  Value(Array a);
  Value(Object o);

  static Value array() { return Value(Array{}); }
  static Value object() { return Value(Object{}); }

  Kind kind() const { return kind_; }
  bool is_null() const { return kind_ == Kind::Null; }
  bool is_bool() const { return kind_ == Kind::Bool; }
  bool is_number() const { return kind_ == Kind::Number; }
  bool is_integer() const { return kind_ == Kind::Number && is_int_; }  // written without . or e and fits int64
  bool is_string() const { return kind_ == Kind::String; }
  bool is_array() const { return kind_ == Kind::Array; }
  bool is_object() const { return kind_ == Kind::Object; }

  // Checked accessors: throw crucible::Error naming the expected and actual kind
  // (and the line, when the value came from parse()).
  bool as_bool() const;
  double as_double() const;
  std::int64_t as_int64() const;  // integer values only
  const std::string& as_string() const;
  const Array& as_array() const;
  Array& as_array();
  const Object& as_object() const;
  Object& as_object();

  // Object access. find() returns nullptr when absent (or when not an object).
  const Value* find(std::string_view key) const;
  Value* find(std::string_view key);
  const Value& at(std::string_view key) const;  // throws when absent
  // Inserts or replaces; returns the stored value.
  Value& set(std::string key, Value v);
  // Array append.
  void push_back(Value v);
  std::size_t size() const;  // array or object size; 0 otherwise

  int line() const { return line_; }  // 1-based line in the parsed text; 0 when built in code

  // Value semantics: copying a Value copies its contents deeply; moving leaves null.
  Value(const Value& other);
  Value(Value&& other) noexcept;
  Value& operator=(const Value& other);
  Value& operator=(Value&& other) noexcept;
  ~Value();

 private:
  friend class Parser;
  void destroy() noexcept;
  void steal(Value& other) noexcept;  // *this must hold no resources
  void copy_from(const Value& other);  // *this must hold no resources
  [[noreturn]] void fail_kind(std::string_view expected) const;

  // 40 bytes: the string lives inline (SSO spares an allocation for short tokens);
  // arrays and objects are owned through one pointer so a Value stays small.
  Kind kind_ = Kind::Null;
  bool is_int_ = false;  // Number only: u_.i is active, else u_.d
  int line_ = 0;
  union Storage {
    Storage() : i(0) {}
    ~Storage() {}  // Value::destroy() ends the active member
    std::int64_t i;  // Number, is_int_
    double d;        // Number, !is_int_
    bool b;          // Bool
    std::string s;   // String
    Array* a;        // Array (owned, never null while kind_ == Array)
    Object* o;       // Object (owned, never null while kind_ == Object)
  } u_;
};

// Parses one JSON document (surrounding whitespace allowed, nothing else after it).
// `source` names the input in error messages (a path, "stdin", "line 12 of x.jsonl").
// Nesting deeper than 512 levels is an error (no stack overflow on hostile input).
// Columns in error messages count bytes from 1. A duplicate object key keeps the
// position of its first occurrence and the value of its last (as Python's json
// does). A leading UTF-8 byte order mark is skipped (RFC 8259 §8.1 allows it).
// Numbers whose magnitude exceeds a double's range are an error; those below it
// parse as (signed) zero.
Value parse(std::string_view text, std::string_view source = "<json>");

// Reads and parses a file; errors name the path.
Value parse_file(const std::string& path);

// Serializes. indent < 0: compact, one line; indent >= 0: pretty with that many
// spaces. Integers print exactly; doubles print with the shortest repr that
// round-trips (std::to_chars), with ".0" added when that form has no '.' or 'e' so
// that a double reads back as a double; NaN/Inf are not JSON and throw. Strings:
// '"' and '\\' escaped, \b \f \n \r \t short, other controls as \u00XX, the rest
// (UTF-8) as is; a string that is not valid UTF-8 throws (parse() would reject it).
std::string dump(const Value& v, int indent = -1);

// True when s is well-formed UTF-8 (what JSON strings must hold).
bool is_valid_utf8(std::string_view s);

// Escapes a string as a JSON string literal (with the quotes), as dump() does.
std::string quote(std::string_view s);

}  // namespace crucible::json
