// tests/fuzz/fuzz_json.cpp: libFuzzer target for core/json (parse, dump, re-parse).
//
// Invariant: on any bytes, parse() either returns a Value or throws crucible::Error
// (never crashes, never throws anything else); a parsed Value dumps, compact and
// pretty, to text that parses back to an equal Value and dumps to the same text.
// Build (from the repository root):
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I. tests/fuzz/fuzz_json.cpp
//           core/json.cpp core/error.cpp -o fuzz_json
// Reference: RFC 8259; https://llvm.org/docs/LibFuzzer.html
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "core/error.h"
#include "core/json.h"

namespace {

namespace json = crucible::json;

// Same kinds, exact integers, bit-identical doubles, same strings and member order.
bool same(const json::Value& a, const json::Value& b) {
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case json::Kind::Null: return true;
    case json::Kind::Bool: return a.as_bool() == b.as_bool();
    case json::Kind::Number: {
      if (a.is_integer() != b.is_integer()) return false;
      if (a.is_integer()) return a.as_int64() == b.as_int64();
      const double x = a.as_double(), y = b.as_double();
      return std::memcmp(&x, &y, sizeof x) == 0;
    }
    case json::Kind::String: return a.as_string() == b.as_string();
    case json::Kind::Array: {
      const json::Array &x = a.as_array(), &y = b.as_array();
      if (x.size() != y.size()) return false;
      for (std::size_t i = 0; i < x.size(); ++i)
        if (!same(x[i], y[i])) return false;
      return true;
    }
    case json::Kind::Object: {
      const json::Object &x = a.as_object(), &y = b.as_object();
      if (x.size() != y.size()) return false;
      for (std::size_t i = 0; i < x.size(); ++i)
        if (x[i].first != y[i].first || !same(x[i].second, y[i].second)) return false;
      return true;
    }
  }
  return false;
}

[[noreturn]] void die(const char* what, const std::string& detail) {
  std::fprintf(stderr, "fuzz_json: %s\n%s\n", what, detail.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  json::Value v;
  try {
    v = json::parse(text, "fuzz");
  } catch (const crucible::Error&) {
    return 0;  // rejected input: the expected outcome for most mutations
  }
  // From here on nothing may throw: a parsed Value is always writable.
  try {
    const json::Value copy = v;
    if (!same(copy, v)) die("a copy differs from its original", json::dump(v));
    for (int indent : {-1, 2}) {
      const std::string out = json::dump(v, indent);
      const json::Value back = json::parse(out, "dump");
      if (!same(back, v)) die("parse(dump(v)) != v", out);
      if (json::dump(back, indent) != out) die("dump is not stable across a round trip", out);
    }
  } catch (const crucible::Error& e) {
    die("a parsed document failed to round-trip", e.what());
  }
  return 0;
}
