// tests/core/test_json.cpp: the strict JSON reader and writer (core/json.h).
//
// Invariant under test: parse() accepts exactly RFC 8259 documents, rejects each
// class of malformed input at the right line:col, and parse(dump(v)) equals v for
// compact and pretty output. Real inputs: the Qwen3, DeepSeek-V3 and Llama 3.1
// tokenizer.json files. Reference: RFC 8259; Unicode §3.9 Table 3-7.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <string>

#include "core/error.h"
#include "core/json.h"
#include "tests/catch.h"

namespace json = crucible::json;
using json::Kind;
using json::Value;

namespace {

// Semantic equality: same kinds, exact integers, bit-identical doubles (so -0.0 and
// 0.0 differ), same strings, same member order. Lines are not compared.
bool same(const Value& a, const Value& b) {
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Kind::Null: return true;
    case Kind::Bool: return a.as_bool() == b.as_bool();
    case Kind::Number: {
      if (a.is_integer() != b.is_integer()) return false;
      if (a.is_integer()) return a.as_int64() == b.as_int64();
      const double x = a.as_double(), y = b.as_double();
      return std::memcmp(&x, &y, sizeof x) == 0;
    }
    case Kind::String: return a.as_string() == b.as_string();
    case Kind::Array: {
      const json::Array &x = a.as_array(), &y = b.as_array();
      if (x.size() != y.size()) return false;
      for (std::size_t i = 0; i < x.size(); ++i)
        if (!same(x[i], y[i])) return false;
      return true;
    }
    case Kind::Object: {
      const json::Object &x = a.as_object(), &y = b.as_object();
      if (x.size() != y.size()) return false;
      for (std::size_t i = 0; i < x.size(); ++i)
        if (x[i].first != y[i].first || !same(x[i].second, y[i].second)) return false;
      return true;
    }
  }
  return false;
}

// The message of the crucible::Error that f throws ("" when it throws none).
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const crucible::Error& e) {
    return e.what();
  }
  return "";
}

std::string tokenizer_path(const char* model) {
  const char* dir = std::getenv("CRUCIBLE_TOKENIZER_DIR");
  return std::string(dir ? dir : "/work/shared/data/tokenizers") + "/" + model + "/tokenizer.json";
}

// A random Value for round trips: every kind, odd strings (controls, quotes,
// multi-byte UTF-8 up to U+10FFFF), doubles from random bit patterns.
Value random_value(std::mt19937_64& rng, int depth) {
  std::uniform_int_distribution<int> pick(0, depth > 3 ? 5 : 7);
  switch (pick(rng)) {
    case 0: return Value();
    case 1: return Value(rng() % 2 == 0);
    case 2: return Value(static_cast<std::int64_t>(rng()));
    case 3: {
      double d;
      do {
        const std::uint64_t bits = rng();
        std::memcpy(&d, &bits, sizeof d);
      } while (!std::isfinite(d));
      return Value(d);
    }
    case 4:
    case 5: {
      std::string s;
      const int n = static_cast<int>(rng() % 12);
      for (int i = 0; i < n; ++i) {
        std::uint32_t cp = 0;
        switch (rng() % 4) {
          case 0: cp = static_cast<std::uint32_t>(rng() % 0x80); break;
          case 1: cp = 0x80 + static_cast<std::uint32_t>(rng() % 0x780); break;
          case 2: cp = 0x800 + static_cast<std::uint32_t>(rng() % 0xF800); break;
          default: cp = 0x10000 + static_cast<std::uint32_t>(rng() % 0x100000); break;
        }
        if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;
        if (cp < 0x80) {
          s += static_cast<char>(cp);
        } else if (cp < 0x800) {
          s += static_cast<char>(0xC0 | (cp >> 6));
          s += static_cast<char>(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
          s += static_cast<char>(0xE0 | (cp >> 12));
          s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
          s += static_cast<char>(0x80 | (cp & 0x3F));
        } else {
          s += static_cast<char>(0xF0 | (cp >> 18));
          s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
          s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
          s += static_cast<char>(0x80 | (cp & 0x3F));
        }
      }
      return Value(s);
    }
    case 6: {
      Value a = Value::array();
      const int n = static_cast<int>(rng() % 5);
      for (int i = 0; i < n; ++i) a.push_back(random_value(rng, depth + 1));
      return a;
    }
    default: {
      Value o = Value::object();
      const int n = static_cast<int>(rng() % 5);
      for (int i = 0; i < n; ++i) o.set("k" + std::to_string(rng() % 8), random_value(rng, depth + 1));
      return o;
    }
  }
}

}  // namespace

TEST_CASE("json: every value kind", "[json]") {
  CHECK(json::parse("null").is_null());
  CHECK(json::parse(" true ").as_bool() == true);
  CHECK(json::parse("false").as_bool() == false);
  CHECK(json::parse("0").as_int64() == 0);
  CHECK(json::parse("-12").as_int64() == -12);
  CHECK(json::parse("-12").as_double() == -12.0);
  const Value x = json::parse("3.25");
  CHECK(x.is_number());
  CHECK_FALSE(x.is_integer());
  CHECK(x.as_double() == 3.25);
  CHECK(json::parse("1E2").as_double() == 100.0);
  CHECK_FALSE(json::parse("1e2").is_integer());  // an exponent makes it a double
  CHECK(json::parse("\"hi\"").as_string() == "hi");
  CHECK(json::parse("[]").as_array().empty());
  CHECK(json::parse("{}").as_object().empty());
  CHECK(json::parse("\t\r\n [ ]\n").is_array());
  CHECK(json::parse("\xEF\xBB\xBF{}").is_object());  // a leading BOM is skipped

  CHECK(json::kind_name(Kind::Null) == "null");
  CHECK(json::kind_name(Kind::Bool) == "bool");
  CHECK(json::kind_name(Kind::Number) == "number");
  CHECK(json::kind_name(Kind::String) == "string");
  CHECK(json::kind_name(Kind::Array) == "array");
  CHECK(json::kind_name(Kind::Object) == "object");

  // Built in code.
  CHECK(Value().is_null());
  CHECK(Value(nullptr).is_null());
  CHECK(Value(7).as_int64() == 7);
  CHECK(Value(std::uint64_t{1} << 62).as_int64() == std::int64_t{1} << 62);
  CHECK_THROWS_AS(Value(std::numeric_limits<std::uint64_t>::max()), crucible::Error);
  CHECK(Value(2.5).as_double() == 2.5);
  CHECK_FALSE(Value(2.0).is_integer());
  CHECK(Value("abc").as_string() == "abc");
  CHECK(Value(std::string_view("sv")).as_string() == "sv");
  CHECK(Value(json::Array{1, "a"}).size() == 2);
  CHECK(Value(json::Object{{"a", 1}}).at("a").as_int64() == 1);
  CHECK(Value(3).size() == 0);
}

TEST_CASE("json: nesting, lookups and lines", "[json]") {
  const Value v = json::parse(
      "{\n"
      "  \"model\": {\"type\": \"BPE\", \"dropout\": null},\n"
      "  \"ids\": [1, [2, [3, {\"deep\": true}]]],\n"
      "  \"name\": \"x\"\n"
      "}\n",
      "cfg.json");
  CHECK(v.line() == 1);
  CHECK(v.size() == 3);
  CHECK(v.at("model").at("type").as_string() == "BPE");
  CHECK(v.at("model").at("dropout").is_null());
  CHECK(v.at("model").line() == 2);
  CHECK(v.at("ids").line() == 3);
  CHECK(v.at("name").line() == 4);
  const json::Array& ids = v.at("ids").as_array();
  CHECK(ids[1].as_array()[1].as_array()[1].at("deep").as_bool());
  CHECK(v.find("missing") == nullptr);
  CHECK(ids[0].find("x") == nullptr);  // not an object
  CHECK(Value().line() == 0);

  const std::string missing = error_of([&] { v.at("vocab"); });
  CHECK(missing.find("line 1: missing key \"vocab\" in object") == 0);
}

TEST_CASE("json: accessor errors name expected and actual kinds", "[json]") {
  const Value v = json::parse("{\n\"a\": \"text\",\n\"b\": 1.5,\n\"c\": [1]}");
  CHECK(error_of([&] { v.at("a").as_double(); }).find("line 2: expected a number, got a string") == 0);
  CHECK(error_of([&] { v.at("b").as_int64(); }).find("line 3: expected an integer that fits int64, got the number 1.5") == 0);
  CHECK(error_of([&] { v.at("c").as_object(); }).find("line 4: expected an object, got an array") == 0);
  CHECK(error_of([&] { v.at("c").as_array()[0].as_string(); }).find("line 4: expected a string, got a number") == 0);
  CHECK(error_of([&] { v.as_bool(); }).find("line 1: expected a bool, got an object") == 0);
  CHECK(error_of([&] { Value().as_array(); }).find("expected an array, got null") == 0);  // no line: built in code
  CHECK(error_of([&] { json::parse("9223372036854775808").as_int64(); }).find("expected an integer") != std::string::npos);
  Value s("x");
  CHECK_THROWS_AS(s.set("k", 1), crucible::Error);
  CHECK_THROWS_AS(s.push_back(1), crucible::Error);
}

TEST_CASE("json: escapes and UTF-8", "[json]") {
  CHECK(json::parse(R"("\" \\ \/ \b \f \n \r \t")").as_string() == "\" \\ / \b \f \n \r \t");
  CHECK(json::parse(R"("\u0041\u00e9\u00E9\u20AC")").as_string() == "A\xC3\xA9\xC3\xA9\xE2\x82\xAC");
  CHECK(json::parse(R"("\uD83D\uDE00")").as_string() == "\xF0\x9F\x98\x80");  // U+1F600
  CHECK(json::parse(R"("\udbff\udfff")").as_string() == "\xF4\x8F\xBF\xBF");  // U+10FFFF
  CHECK(json::parse(R"("a\u0000b")").as_string() == std::string("a\0b", 3));
  // Raw UTF-8 of every length passes through, including the Table 3-7 edges.
  const std::string raw = "\xC2\x80 \xDF\xBF \xE0\xA0\x80 \xED\x9F\xBF \xEE\x80\x80 \xF0\x90\x80\x80 \xF4\x8F\xBF\xBF \x7F";
  CHECK(json::parse("\"" + raw + "\"").as_string() == raw);
  CHECK(json::parse("\"\xC4\xA0the\"").as_string() == "\xC4\xA0the");  // byte-level BPE "Ġthe"
}

TEST_CASE("json: malformed documents are rejected at the right line:col", "[json]") {
  struct Bad {
    std::string text;
    int line, col;
    const char* what;  // a piece of the message
  };
  const std::string deep = std::string(600, '[') + std::string(600, ']');
  const Bad cases[] = {
      {"", 1, 1, "the document is empty"},
      {"  \n ", 2, 2, "the document is empty"},
      {"[1,2,]", 1, 6, "trailing commas are not JSON"},
      {"{\"a\":1,}", 1, 8, "trailing commas are not JSON"},
      {"[1,,2]", 1, 4, "expected a value, found ','"},
      {"01", 1, 1, "leading zeros"},
      {"-01", 1, 1, "leading zeros"},
      {"[1.]", 1, 4, "a digit after '.'"},
      {"1e", 1, 3, "exponent"},
      {"1e+", 1, 4, "exponent"},
      {"-", 1, 2, "a digit after '-'"},
      {"+1", 1, 1, "expected a value, found '+'"},
      {".5", 1, 1, "expected a value, found '.'"},
      {"NaN", 1, 1, "expected a value, found 'N'"},
      {"-Infinity", 1, 2, "a digit after '-'"},
      {"1e400", 1, 1, "out of the range of a double"},
      {"tru", 1, 4, "the literal true, found end of input"},
      {"nulL", 1, 4, "the literal null, found 'L'"},
      {"['a']", 1, 2, "expected a value, found '''"},
      {"{a:1}", 1, 2, "a string key or '}'"},
      {"{\"a\" 1}", 1, 6, "':' after object key, found '1'"},
      {"[1 2]", 1, 4, "',' or ']' after array element, found '2'"},
      {"{\n  \"a\": 1,\n  \"b\": [1, 2]]\n}", 3, 14, "expected ',' or '}' after object member, found ']'"},
      {"[\r\n1,\r\n]", 3, 1, "trailing commas"},
      {"\"\\x\"", 1, 2, "invalid escape in string"},
      {"\"\\", 1, 3, "an escape character after '\\', found end of input"},
      {"\"\\u12\"", 1, 6, "4 hex digits after '\\u', found '\"'"},
      {"\"\\u12G4\"", 1, 6, "4 hex digits"},
      {"\"\\uD800\"", 1, 2, "lone surrogate \\uD800"},
      {"\"\\uDC00\"", 1, 2, "lone surrogate \\uDC00"},
      {"\"\\uD800\\u0041\"", 1, 2, "lone surrogate"},
      {"\"\\uD800\\n\"", 1, 2, "lone surrogate"},
      {"\"a\xFF\"", 1, 3, "invalid UTF-8 in string: byte that never appears in UTF-8 (byte 0xFF)"},
      {"\"\xF5\x80\x80\x80\"", 1, 2, "never appears in UTF-8"},
      {"\"\xC0\xAF\"", 1, 2, "overlong"},
      {"\"\xE0\x80\xAF\"", 1, 2, "overlong"},
      {"\"\xF0\x80\x80\xAF\"", 1, 2, "overlong"},
      {"\"\xED\xA0\x80\"", 1, 2, "surrogate encoded in UTF-8"},
      {"\"\xF4\x90\x80\x80\"", 1, 2, "above U+10FFFF"},
      {"\"\xC3\"", 1, 2, "truncated UTF-8 sequence"},
      {"\"\xE2\x82\"", 1, 2, "truncated UTF-8 sequence"},
      {"\"\x80\"", 1, 2, "continuation byte"},
      {"[\xEF\xBB\xBF" "1]", 1, 2, "expected a value, found byte 0xEF"},
      {"\"a\nb\"", 1, 3, "unescaped control character 0x0A"},
      {"\"\t\"", 1, 2, "unescaped control character 0x09"},
      {std::string("[\0]", 3), 1, 2, "found control character 0x00"},
      {"[1, 2", 1, 6, "',' or ']' after array element, found end of input"},
      {"\"abc", 1, 5, "'\"' to close the string, found end of input"},
      {"{\"a\":", 1, 6, "expected a value, found end of input"},
      {"[", 1, 2, "expected a value, found end of input"},
      {"{", 1, 2, "a string key or '}', found end of input"},
      {"{} x", 1, 4, "end of input after the JSON document, found 'x'"},
      {"1 2", 1, 3, "end of input after the JSON document"},
      {"[1] // c", 1, 5, "end of input after the JSON document, found '/'"},
      {"/* c */ 1", 1, 1, "expected a value, found '/'"},
      {deep, 1, 513, "nesting deeper than 512"},
  };
  for (const Bad& bad : cases) {
    INFO("document: " << bad.text.substr(0, 40));
    const std::string msg = error_of([&] { json::parse(bad.text, "config.json"); });
    const std::string where = "config.json:" + std::to_string(bad.line) + ":" + std::to_string(bad.col) + ": ";
    CHECK(msg.rfind(where, 0) == 0);
    CHECK(msg.find(bad.what) != std::string::npos);
    if (msg.rfind(where, 0) != 0 || msg.find(bad.what) == std::string::npos) WARN("message: " << msg);
  }
}

TEST_CASE("json: the depth limit is 512", "[json]") {
  const std::string ok = std::string(512, '[') + std::string(512, ']');
  CHECK(json::parse(ok).is_array());
  const std::string objects = [] {
    std::string s;
    for (int i = 0; i < 513; ++i) s += "{\"a\":";
    return s + "1" + std::string(513, '}');
  }();
  CHECK(error_of([&] { json::parse(objects); }).find("nesting deeper than 512") != std::string::npos);
}

TEST_CASE("json: integers are exact in int64, the rest are doubles", "[json]") {
  const Value max = json::parse("9223372036854775807");
  CHECK(max.is_integer());
  CHECK(max.as_int64() == std::numeric_limits<std::int64_t>::max());
  const Value min = json::parse("-9223372036854775808");
  CHECK(min.is_integer());
  CHECK(min.as_int64() == std::numeric_limits<std::int64_t>::min());
  CHECK(json::dump(max) == "9223372036854775807");
  CHECK(json::dump(min) == "-9223372036854775808");
  const Value over = json::parse("9223372036854775808");
  CHECK_FALSE(over.is_integer());
  CHECK(over.as_double() == 9223372036854775808.0);
  CHECK_FALSE(json::parse("-9223372036854775809").is_integer());
  CHECK_FALSE(json::parse("123456789012345678901234567890").is_integer());
  CHECK(json::parse("9007199254740993").as_int64() == 9007199254740993);  // above 2^53: still exact
  CHECK(json::parse("-0").is_integer());
  CHECK(json::parse("1.0").as_double() == 1.0);
  CHECK_FALSE(json::parse("1.0").is_integer());
}

TEST_CASE("json: doubles round-trip through the shortest form", "[json]") {
  for (double d : {0.1, 1e-300, 5e-324, 1.7976931348623157e308, -2.2250738585072014e-308, 123456.789,
                   1e22, 1e16, 0.30000000000000004, 1.0, -0.0, 10000.0}) {
    INFO(d);
    const std::string text = json::dump(Value(d));
    const Value back = json::parse(text);
    CHECK_FALSE(back.is_integer());  // "1.0", not "1"
    CHECK(same(back, Value(d)));
  }
  CHECK(json::dump(Value(0.1)) == "0.1");
  CHECK(json::dump(Value(1.0)) == "1.0");
  CHECK(json::dump(Value(-0.0)) == "-0.0");
  CHECK(json::dump(Value(5e-324)) == "5e-324");
  CHECK(json::dump(Value(1e300)) == "1e+300");
  CHECK(json::parse("0.1").as_double() == 0.1);
  CHECK(json::parse("1.7976931348623157e308").as_double() == 1.7976931348623157e308);
  CHECK(json::parse("2.4703282292062328e-324").as_double() == 5e-324);  // rounds up to the smallest subnormal
  CHECK(json::parse("1e-400").as_double() == 0.0);                      // underflow: zero, not an error
  CHECK(std::signbit(json::parse("-1e-400").as_double()));
  CHECK(json::parse("0e999999999").as_double() == 0.0);
  CHECK_THROWS_AS(json::parse("-1.8e308"), crucible::Error);
  CHECK_THROWS_AS(json::dump(Value(std::nan(""))), crucible::Error);
  CHECK_THROWS_AS(json::dump(Value(std::numeric_limits<double>::infinity())), crucible::Error);
  CHECK_THROWS_AS(json::dump(json::Array{1, -std::numeric_limits<double>::infinity()}), crucible::Error);
}

TEST_CASE("json: writer output, compact and pretty", "[json]") {
  Value v = Value::object();
  v.set("b", 1);
  v.set("a", json::Array{true, nullptr, "x\ty", Value::object(), Value::array()});
  v.set("c", Value(json::Object{{"n", 1.5}}));
  CHECK(json::dump(v) == R"({"b":1,"a":[true,null,"x\ty",{},[]],"c":{"n":1.5}})");
  CHECK(json::dump(v, 2) ==
        "{\n"
        "  \"b\": 1,\n"
        "  \"a\": [\n"
        "    true,\n"
        "    null,\n"
        "    \"x\\ty\",\n"
        "    {},\n"
        "    []\n"
        "  ],\n"
        "  \"c\": {\n"
        "    \"n\": 1.5\n"
        "  }\n"
        "}");
  CHECK(json::dump(json::Array{1, 2}, 0) == "[\n1,\n2\n]");
  CHECK(json::quote("a\"b\\c") == R"("a\"b\\c")");
  CHECK(json::quote(std::string("\x01\x1f\n\r\b\f\x7f", 7)) == "\"\\u0001\\u001f\\n\\r\\b\\f\x7f\"");
  CHECK(json::quote("\xC3\xA9/\xF0\x9F\x98\x80") == "\"\xC3\xA9/\xF0\x9F\x98\x80\"");  // UTF-8 as is, '/' unescaped
  CHECK(json::quote(std::string("\0", 1)) == "\"\\u0000\"");
  // A string that is not UTF-8 would make a document parse() rejects: refuse it.
  CHECK(error_of([] { json::quote("ok\xFF"); }).find("invalid UTF-8") != std::string::npos);
  CHECK_THROWS_AS(json::dump(Value("\xC0\xAF")), crucible::Error);
}

TEST_CASE("json: parse(dump(v)) == v, compact and pretty", "[json]") {
  const Value doc = json::parse(R"({"s": "a\u0000\"\\\n\u001f\u00e9\ud83d\ude00", "i": -9223372036854775808,
      "d": [0.1, -0.0, 5e-324, 1e308], "n": null, "t": true, "f": false,
      "nested": {"a": [[], {}, [[{"x": []}]]], "": ""}})");
  for (int indent : {-1, 0, 1, 2, 4}) {
    INFO("indent " << indent);
    CHECK(same(json::parse(json::dump(doc, indent)), doc));
  }
  std::mt19937_64 rng(20240601);
  for (int i = 0; i < 300; ++i) {
    const Value v = random_value(rng, 0);
    const std::string compact = json::dump(v);
    const Value back = json::parse(compact);
    REQUIRE(same(back, v));
    CHECK(json::dump(back) == compact);
    REQUIRE(same(json::parse(json::dump(v, 2)), v));
  }
}

TEST_CASE("json: insertion order and duplicate keys", "[json]") {
  const Value v = json::parse(R"({"z": 1, "a": 2, "m": 3, "a": 4})");
  const json::Object& o = v.as_object();
  REQUIRE(o.size() == 3);  // the last value wins, at the first key's place
  CHECK(o[0].first == "z");
  CHECK(o[1].first == "a");
  CHECK(o[1].second.as_int64() == 4);
  CHECK(o[2].first == "m");
  CHECK(json::dump(v) == R"({"z":1,"a":4,"m":3})");

  // Large objects take the hashed path: same rule.
  std::string text = "{";
  for (int i = 0; i < 100; ++i) text += "\"k" + std::to_string(i) + "\": " + std::to_string(i) + ",";
  text += "\"k7\": \"last\", \"k99\": [], \"end\": 0}";
  const Value big = json::parse(text);
  REQUIRE(big.size() == 101);
  CHECK(big.as_object()[7].first == "k7");
  CHECK(big.at("k7").as_string() == "last");
  CHECK(big.as_object()[99].second.is_array());
  CHECK(big.as_object()[100].first == "end");

  Value w = Value::object();
  w.set("b", 1);
  w.set("a", 2);
  w.set("b", 3);
  CHECK(json::dump(w) == R"({"b":3,"a":2})");
}

TEST_CASE("json: copies are independent", "[json]") {
  const Value original = json::parse(R"({"a": [1, {"b": "x"}], "s": "long enough to live on the heap, surely"})");
  Value copy = original;
  copy.as_object()[0].second.as_array()[1].set("b", "changed");
  copy.as_object()[0].second.push_back(2);
  copy.set("s", "short");
  CHECK(original.at("a").size() == 2);
  CHECK(original.at("a").as_array()[1].at("b").as_string() == "x");
  CHECK(original.at("s").as_string() == "long enough to live on the heap, surely");

  Value assigned;
  assigned = original;
  assigned.find("a")->as_array().clear();
  CHECK(original.at("a").size() == 2);
  CHECK(same(Value(original), original));
  CHECK(Value(original).at("a").line() == original.at("a").line());

  Value moved = std::move(assigned);
  CHECK(assigned.is_null());  // NOLINT: moved-from is documented as null
  CHECK(moved.at("a").size() == 0);

  Value self = original;
  self = self;  // self-assignment keeps the value
  CHECK(same(self, original));
  self = self.at("a");  // assigning a part of itself
  CHECK(self.size() == 2);
  Value parent = json::parse("[[1, 2], 3]");
  parent = std::move(parent.as_array()[0]);
  CHECK(json::dump(parent) == "[1,2]");
}

TEST_CASE("json: parse_file names the path", "[json]") {
  const std::string missing = "/nonexistent/dir/config.json";
  const std::string msg = error_of([&] { json::parse_file(missing); });
  CHECK(msg.find("cannot open JSON file '/nonexistent/dir/config.json'") == 0);

  const std::string path = (std::filesystem::temp_directory_path() / "crucible_test_json.json").string();
  {
    std::ofstream f(path, std::ios::binary);
    f << "{\n  \"a\": [1,\n  2,]\n}\n";
  }
  const std::string bad = error_of([&] { json::parse_file(path); });
  CHECK(bad.find(path + ":3:5: ") == 0);
  {
    std::ofstream f(path, std::ios::binary);
    f << R"({"ok": true})";
  }
  CHECK(json::parse_file(path).at("ok").as_bool());
  std::filesystem::remove(path);
}

// The vocab sizes were counted with
//   python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["model"]["vocab"]))' <tokenizer.json>
// (Python also keeps the last of duplicate keys; none of these files has any.)
TEST_CASE("json: real tokenizer.json files", "[json]") {
  struct Tokenizer {
    const char* model;
    std::size_t vocab;
    const char* last_token;  // the token with id vocab - 1
  };
  for (const Tokenizer& t : {Tokenizer{"qwen3", 151643, "\xC3\xA2\xC2\xBD\xC4\xB9"},
                             Tokenizer{"deepseek_v3", 128000, "\xC3\xA5\xC2\xB1\xC4\xAD\xC3\xA6\xC2\xAA\xC4\xB2"},
                             Tokenizer{"llama3_1", 128000, "\xC3\xA9\xC4\xB6\xC2\xA6"}}) {
    const std::string path = tokenizer_path(t.model);
    INFO(path);
    if (!std::filesystem::exists(path)) {
      WARN("skipped: " << path << " not found (set CRUCIBLE_TOKENIZER_DIR)");
      continue;
    }
    const Value tok = json::parse_file(path);
    const Value& model = tok.at("model");
    CHECK(model.at("type").as_string() == "BPE");
    const json::Object& vocab = model.at("vocab").as_object();
    REQUIRE(vocab.size() == t.vocab);
    for (std::size_t id = 0; id < vocab.size(); ++id) {  // ids are 0..n-1 in file order
      if (vocab[id].second.as_int64() != static_cast<std::int64_t>(id)) FAIL("vocab id " << id << " out of order");
    }
    CHECK(vocab.front().second.as_int64() == 0);
    CHECK(vocab.back().first == t.last_token);
    CHECK(model.at("merges").size() > 100000);
    CHECK(same(json::parse(json::dump(tok)), tok));
  }
}

// Not run by default: ./test_core "[json-bench]" prints parse and dump speed.
TEST_CASE("json: parse speed on Qwen3 tokenizer.json", "[.][json-bench]") {
  const std::string path = tokenizer_path("qwen3");
  std::ifstream f(path, std::ios::binary);
  REQUIRE(f);
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string text = ss.str();
  double best = 1e30;
  for (int rep = 0; rep < 10; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    const Value v = json::parse(text, path);
    const auto t1 = std::chrono::steady_clock::now();
    best = std::min(best, std::chrono::duration<double>(t1 - t0).count());
  }
  const Value v = json::parse(text, path);
  const auto t0 = std::chrono::steady_clock::now();
  const std::string out = json::dump(v);
  const double dump_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("json parse %s: %.1f MB in %.1f ms (best of 10) = %.0f MB/s; dump %.0f MB/s\n", path.c_str(),
              static_cast<double>(text.size()) / 1e6, best * 1e3, static_cast<double>(text.size()) / 1e6 / best,
              static_cast<double>(out.size()) / 1e6 / dump_s);
}

TEST_CASE("is_valid_utf8 accepts well-formed text and rejects broken sequences", "[json]") {
  CHECK(crucible::json::is_valid_utf8("plain ascii"));
  CHECK(crucible::json::is_valid_utf8("\xE4\xB8\x96\xE7\x95\x8C \xF0\x9F\x98\x80"));  // 世界 😀
  CHECK_FALSE(crucible::json::is_valid_utf8("\x89tail"));          // lone continuation byte
  CHECK_FALSE(crucible::json::is_valid_utf8("\xC0\xAF"));          // overlong
  CHECK_FALSE(crucible::json::is_valid_utf8("\xE4\xB8"));          // truncated
  CHECK_FALSE(crucible::json::is_valid_utf8("\xED\xA0\x80"));      // encoded surrogate
}
