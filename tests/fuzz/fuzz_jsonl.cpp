// tests/fuzz/fuzz_jsonl.cpp: libFuzzer target for the JSONL dataset loaders (data/jsonl,
// data/dataset) and the Countdown expression verifier (data/tasks).
//
// Invariants, on any bytes:
//   - the strict RL and SFT loaders return or throw crucible::Error, nothing else;
//   - with skip_bad_lines they never throw, lines = records + skipped, and they
//     return exactly `records` items, which are the strict loader's items when
//     nothing was skipped;
//   - loaded items written back with to_json() load again to the same fields;
//   - verify_countdown() never throws, and says "ok" exactly when it accepts.
// Build (from the repository root):
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I. tests/fuzz/fuzz_jsonl.cpp
//           data/jsonl.cpp data/dataset.cpp data/tasks.cpp data/task_*.cpp core/*.cpp -o fuzz_jsonl
// Reference: https://jsonlines.org; https://llvm.org/docs/LibFuzzer.html
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/json.h"
#include "data/dataset.h"
#include "data/jsonl.h"
#include "data/tasks.h"

namespace {

namespace data = crucible::data;
namespace json = crucible::json;

[[noreturn]] void die(const char* what, const std::string& detail) {
  std::fprintf(stderr, "fuzz_jsonl: %s\n%s\n", what, detail.c_str());
  std::abort();
}

bool same(const data::RlPrompt& a, const data::RlPrompt& b) {
  return a.id == b.id && a.prompt == b.prompt && a.answer == b.answer && json::dump(a.meta) == json::dump(b.meta);
}

bool same(const data::SftExample& a, const data::SftExample& b) {
  if (a.id != b.id || a.messages.size() != b.messages.size() || json::dump(a.meta) != json::dump(b.meta))
    return false;
  for (std::size_t i = 0; i < a.messages.size(); ++i)
    if (a.messages[i].role != b.messages[i].role || a.messages[i].content != b.messages[i].content) return false;
  return true;
}

// Strict vs skipping load of one kind, then a write/re-read round trip.
template <typename T, typename Load>
void check_loader(const std::string& text, Load load, const char* kind) {
  std::vector<T> strict;
  bool strict_ok = true;
  try {
    strict = load(text, data::JsonlOptions{}, nullptr);
  } catch (const crucible::Error&) {
    strict_ok = false;  // rejected: the expected outcome for most mutations
  }
  data::JsonlOptions skip;
  skip.skip_bad_lines = true;
  data::JsonlStats st;
  std::vector<T> kept;
  try {
    kept = load(text, skip, &st);
  } catch (const crucible::Error& e) {
    die("a skipping loader threw", std::string(kind) + ": " + e.what());
  }
  if (st.lines != st.records + st.skipped) die("lines != records + skipped", kind);
  if (static_cast<std::int64_t>(kept.size()) != st.records) die("item count != records", kind);
  if (strict_ok != (st.skipped == 0)) die("strict and skipping loaders disagree on bad lines", kind);
  if (strict_ok) {
    if (strict.size() != kept.size()) die("strict and skipping loaders differ in size", kind);
    for (std::size_t i = 0; i < kept.size(); ++i)
      if (!same(strict[i], kept[i])) die("strict and skipping loaders differ in an item", kind);
  }
  // Everything loaded is writable, and reads back the same.
  try {
    std::string out;
    for (const T& item : kept) out += data::jsonl_line(data::to_json(item));
    const std::vector<T> back = load(out, data::JsonlOptions{}, nullptr);
    if (back.size() != kept.size()) die("round trip changed the item count", kind);
    for (std::size_t i = 0; i < kept.size(); ++i)
      if (!same(back[i], kept[i])) die("round trip changed an item", std::string(kind) + ": " + out);
  } catch (const crucible::Error& e) {
    die("a loaded item failed to round-trip", std::string(kind) + ": " + e.what());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(bytes), size);
  check_loader<data::RlPrompt>(
      text, [](const std::string& t, const data::JsonlOptions& o, data::JsonlStats* s) {
        return data::parse_rl_prompts(t, "fuzz.jsonl", o, s);
      },
      "rl");
  check_loader<data::SftExample>(
      text, [](const std::string& t, const data::JsonlOptions& o, data::JsonlStats* s) {
        return data::parse_sft(t, "fuzz.jsonl", o, s);
      },
      "sft");
  // The same bytes as a Countdown answer (a model's \boxed{} content).
  static const std::vector<std::int64_t> kNumbers = {25, 5, 4, 3, 100, 7};
  try {
    for (std::int64_t target : {83, 0, -1}) {
      const data::CountdownVerdict v = data::verify_countdown(std::string_view(text).substr(0, 8192), kNumbers, target);
      if (v.ok != (v.reason == "ok") || v.reason.empty()) die("countdown verdict and reason disagree", v.reason);
    }
  } catch (...) {
    die("verify_countdown threw", text);
  }
  return 0;
}
