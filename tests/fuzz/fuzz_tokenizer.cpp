// tests/fuzz/fuzz_tokenizer.cpp: libFuzzer target for the tokenizer.json loader and the
// BPE encoder/decoder (data/tokenizer_bpe.h, data/regex.h).
//
// Invariant: on any bytes, loading either gives a tokenizer or throws crucible::Error
// (never crashes, hangs or throws anything else); a loaded tokenizer encodes a fixed text
// (specials, digits, CJK, marks, emoji, whitespace runs) into ids below vocab_size() that
// decode and name their tokens, again throwing nothing but crucible::Error.
// Build (from the repository root):
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I. tests/fuzz/fuzz_tokenizer.cpp
//           data/tokenizer*.cpp data/regex*.cpp data/byte_tokenizer.cpp core/json.cpp core/error.cpp
// Seeds: tests/fuzz/corpus/tokenizer/ (small byte-level BPE files shaped like Qwen3,
// DeepSeek-V3, Llama 3 and GPT-2, and one with every split behavior).
// Reference: https://llvm.org/docs/LibFuzzer.html
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <string>
#include <string_view>

#include "core/error.h"
#include "core/log.h"
#include "data/tokenizer_bpe.h"

namespace {

const char kText[] =
    "Hello there, it's 2024-01-15: 12345678 apples --a <mask> <|endoftext|><think>x</think>\n\n"
    "  caf\xC3\xA9 e\xCC\x81 \xE4\xB8\xAD\xE6\x96\x87 \xF0\x9F\x98\x80 <\xEF\xBD\x9CUser\xEF\xBD\x9C> \t\r\n end";

[[noreturn]] void die(const char* what, const char* detail) {
  std::fprintf(stderr, "fuzz_tokenizer: %s\n%s\n", what, detail);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const bool quiet = [] {  // mutated files warn about added-token ids: keep the run readable
    crucible::configure_logging({crucible::LogLevel::Error, false}, -1, 1);
    return true;
  }();
  (void)quiet;
  const std::string_view doc(reinterpret_cast<const char*>(data), size);
  std::unique_ptr<crucible::data::BpeTokenizer> tok;
  try {
    tok = crucible::data::BpeTokenizer::from_json_text(doc, "fuzz.json");
  } catch (const crucible::Error&) {
    return 0;  // rejected input: the expected outcome for most mutations
  } catch (const std::exception& e) {
    die("loading threw something other than crucible::Error", e.what());
  }
  try {
    const auto ids = tok->encode(kText);
    for (std::int32_t id : ids) {
      if (id < 0 || id >= tok->vocab_size()) die("encode gave an id out of range", std::to_string(id).c_str());
      (void)tok->token_text(id);
      (void)tok->is_special(id);
    }
    (void)tok->decode(ids);
    (void)tok->decode(ids, true);
    if (tok->encode(kText) != ids) die("a second encode (through the cache) differs", "");
  } catch (const crucible::Error&) {
    return 0;  // e.g. a pattern that backtracks past the budget
  } catch (const std::exception& e) {
    die("encode/decode threw something other than crucible::Error", e.what());
  }
  return 0;
}
