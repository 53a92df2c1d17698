// tests/data/test_tokenizer.cpp: BpeTokenizer on the real Qwen3, DeepSeek-V3 and Llama 3.1
// tokenizer.json files against Hugging Face `tokenizers`.
//
// Invariant checked: encode() gives tokenizers' ids on every golden text (code, math,
// LaTeX, CJK, emoji, whitespace runs, long numbers, contractions, specials inside text,
// combining marks, RTL, random mixes); decode() gives its text; random valid UTF-8
// round-trips (up to NFC where the file normalizes); the cache and threads change nothing.
// Goldens: tools/make_tokenizer_goldens.py goldens -> tests/data/tokenizer_golden/golden.json.
// The tokenizer files come from $CRUCIBLE_TOKENIZER_DIR (default /work/shared/data/tokenizers);
// without them these tests warn and skip.
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "core/json.h"
#include "data/tokenizer.h"
#include "data/tokenizer_bpe.h"
#include "data/tokenizer_unicode.h"
#include "tests/catch.h"

using namespace crucible;
using Catch::Contains;

namespace {

const char* const kModels[] = {"qwen3", "deepseek_v3", "llama3_1"};

std::string tokenizer_dir(const std::string& model) {
  const char* dir = std::getenv("CRUCIBLE_TOKENIZER_DIR");
  return std::string(dir ? dir : "/work/shared/data/tokenizers") + "/" + model;
}

const json::Value& golden() {
  static const json::Value g =
      json::parse_file(std::string(CRUCIBLE_SOURCE_DIR) + "/tests/data/tokenizer_golden/golden.json");
  return g;
}

// Each real tokenizer is loaded once for this file; nullptr when its directory is absent.
const data::Tokenizer* real(const std::string& model) {
  static std::map<std::string, std::unique_ptr<data::Tokenizer>> cache;
  auto it = cache.find(model);
  if (it == cache.end()) {
    std::unique_ptr<data::Tokenizer> t;
    if (std::filesystem::exists(tokenizer_dir(model) + "/tokenizer.json")) {
      const auto t0 = std::chrono::steady_clock::now();
      t = data::load_tokenizer(tokenizer_dir(model));
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      CHECK(s < 3.0);  // well under a second in optimized builds; generous for debug builds
    }
    it = cache.emplace(model, std::move(t)).first;
  }
  return it->second.get();
}

std::vector<std::int32_t> ids_of(const json::Value& arr) {
  std::vector<std::int32_t> v;
  for (const json::Value& x : arr.as_array()) v.push_back(static_cast<std::int32_t>(x.as_int64()));
  return v;
}

// What decode(encode(text)) must give: the text after the file's normalizer (Qwen3: NFC).
std::string normalized(const std::string& model, const std::string& text) {
  if (model != "qwen3") return text;
  std::string out;
  data::unicode::nfc_append(text, out);
  return out;
}

std::string show(const std::vector<std::int32_t>& ids) {
  std::string s;
  for (std::int32_t id : ids) s += (s.empty() ? "" : " ") + std::to_string(id);
  return s;
}

// Random valid UTF-8: mostly text-like code points, some from anywhere in Unicode.
std::string random_text(std::mt19937_64& rng) {
  std::string s;
  const int n = static_cast<int>(rng() % 64);
  for (int i = 0; i < n; ++i) {
    char32_t cp;
    switch (rng() % 10) {
      case 0: case 1: case 2: cp = 0x20 + static_cast<char32_t>(rng() % 95); break;          // printable ASCII
      case 3: cp = " \t\n\r\v\f"[rng() % 6]; break;                                            // whitespace
      case 4: cp = 0xA0 + static_cast<char32_t>(rng() % 0x200); break;                         // Latin
      case 5: cp = 0x300 + static_cast<char32_t>(rng() % 0x70); break;                         // combining marks
      case 6: cp = 0x4E00 + static_cast<char32_t>(rng() % 0x5200); break;                      // CJK
      case 7: cp = 0x1F300 + static_cast<char32_t>(rng() % 0x800); break;                      // emoji
      case 8: cp = 0x1100 + static_cast<char32_t>(rng() % 0x100); break;                       // Hangul jamo
      default:                                                                                 // anything
        do cp = static_cast<char32_t>(rng() % 0x110000); while (cp >= 0xD800 && cp <= 0xDFFF);
    }
    data::unicode::utf8_append(s, cp);
  }
  return s;
}

}  // namespace

TEST_CASE("tokenizer: ids equal Hugging Face tokenizers' on the golden corpus", "[tokenizer]") {
  const json::Array& corpus = golden().at("corpus").as_array();
  REQUIRE(corpus.size() > 150);
  for (const char* model : kModels) {
    const data::Tokenizer* tok = real(model);
    if (!tok) {
      WARN("skipped: " << tokenizer_dir(model) << " not found (set CRUCIBLE_TOKENIZER_DIR)");
      continue;
    }
    const json::Array& expected = golden().at("expected_ids").at(model).as_array();
    REQUIRE(expected.size() == corpus.size());
    int mismatches = 0;
    for (std::size_t i = 0; i < corpus.size(); ++i) {
      const std::vector<std::int32_t> got = tok->encode(corpus[i].as_string());
      const std::vector<std::int32_t> want = ids_of(expected[i]);
      if (got != want && mismatches++ < 3)
        FAIL_CHECK(model << " case " << i << ": " << json::quote(corpus[i].as_string()) << "\n  got:  " << show(got)
                         << "\n  want: " << show(want));
    }
    INFO(model << ": " << corpus.size() << " texts");
    CHECK(mismatches == 0);
  }
}

TEST_CASE("tokenizer: decode(encode(text)) gives the normalized text back", "[tokenizer]") {
  for (const char* model : kModels) {
    const data::Tokenizer* tok = real(model);
    if (!tok) continue;
    for (const json::Value& t : golden().at("corpus").as_array()) {
      const std::string& text = t.as_string();
      INFO(model << ": " << json::quote(text));
      CHECK(tok->decode(tok->encode(text)) == normalized(model, text));
    }
  }
}

TEST_CASE("tokenizer: decode matches tokenizers (specials skipped, unknown ids, split characters)", "[tokenizer]") {
  for (const char* model : kModels) {
    const data::Tokenizer* tok = real(model);
    if (!tok) continue;
    for (const json::Value& c : golden().at("decode").at(model).as_array()) {
      const std::vector<std::int32_t> ids = ids_of(c.at("ids"));
      INFO(model << ": ids " << show(ids));
      CHECK(tok->decode(ids) == c.at("text").as_string());
      CHECK(tok->decode(ids, true) == c.at("text_skip_special").as_string());
    }
  }
}

TEST_CASE("tokenizer: random valid UTF-8 round-trips through every real tokenizer", "[tokenizer]") {
  std::mt19937_64 rng(20240601);
  for (const char* model : kModels) {
    const data::Tokenizer* tok = real(model);
    if (!tok) continue;
    for (int i = 0; i < 300; ++i) {
      const std::string text = random_text(rng);
      const std::vector<std::int32_t> ids = tok->encode(text);
      INFO(model << ": " << json::quote(text));
      for (std::int32_t id : ids) REQUIRE((id >= 0 && id < tok->vocab_size()));
      CHECK(tok->decode(ids) == normalized(model, text));
      CHECK(tok->encode(text) == ids);  // the second encode comes from the cache
    }
  }
}

TEST_CASE("tokenizer: specials, BOS/EOS from tokenizer_config.json and vocabulary lookups", "[tokenizer]") {
  struct Expect {
    const char* model;
    std::int64_t vocab;
    std::optional<std::int32_t> bos, eos;
    const char* special;
    std::int32_t special_id;
  };
  const Expect table[] = {
      {"qwen3", 151669, std::nullopt, 151645, "<|im_start|>", 151644},
      {"deepseek_v3", 128815, 0, 1, "<｜▁pad▁｜>", 2},
      {"llama3_1", 128256, 128000, 128009, "<|eot_id|>", 128009},
  };
  for (const Expect& e : table) {
    const data::Tokenizer* tok = real(e.model);
    if (!tok) continue;
    INFO(e.model);
    CHECK(tok->vocab_size() == e.vocab);
    CHECK(tok->bos_id() == e.bos);
    CHECK(tok->eos_id() == e.eos);
    CHECK(tok->token_id(e.special) == e.special_id);
    CHECK(tok->token_text(e.special_id) == e.special);
    CHECK(tok->is_special(e.special_id));
    CHECK(tok->encode(std::string("a") + e.special + "b").size() == 3);
    CHECK(tok->decode(tok->encode(std::string("x") + e.special), true) == "x");
    CHECK_FALSE(tok->is_special(100));
    CHECK(tok->token_text(*tok->token_id("Ġthe")) == "Ġthe");  // raw vocabulary strings
    CHECK_FALSE(tok->token_id("no such token at all").has_value());
    CHECK_THROWS_WITH(tok->token_text(static_cast<std::int32_t>(e.vocab)), Contains("names no token"));
    CHECK_THROWS_WITH(tok->encode("bad \xC3\x28 utf8"), Contains("not valid UTF-8 (byte 4"));
    CHECK(tok->decode(std::vector<std::int32_t>{-1, 1 << 30}).empty());
  }
  if (const data::Tokenizer* qwen = real("qwen3")) {
    // <think> is an added, non-special token in Qwen3: matched in text, kept by skip_special.
    const auto think = qwen->token_id("<think>");
    REQUIRE(think.has_value());
    CHECK_FALSE(qwen->is_special(*think));
    CHECK(qwen->decode(qwen->encode("<think>hi</think>"), true) == "<think>hi</think>");
  }
  if (const data::Tokenizer* ds = real("deepseek_v3")) {
    // <｜User｜> is added but not special in DeepSeek-V3 (normalized: true, special: false).
    CHECK(ds->encode("<｜User｜>") == std::vector<std::int32_t>{128803});
    CHECK_FALSE(ds->is_special(128803));
  }
}

TEST_CASE("tokenizer: concurrent encodes give the same ids", "[tokenizer]") {
  const data::Tokenizer* tok = real("llama3_1");
  if (!tok) return;
  const json::Array& corpus = golden().at("corpus").as_array();
  std::vector<std::vector<std::int32_t>> want;
  for (const json::Value& t : corpus) want.push_back(tok->encode(t.as_string()));
  std::vector<int> bad(4, 0);
  std::vector<std::thread> threads;
  for (int th = 0; th < 4; ++th)
    threads.emplace_back([&, th] {
      for (int round = 0; round < 3; ++round)
        for (std::size_t i = 0; i < corpus.size(); ++i)
          bad[static_cast<std::size_t>(th)] += tok->encode(corpus[(i + static_cast<std::size_t>(th) * 7) % corpus.size()].as_string()) !=
                                               want[(i + static_cast<std::size_t>(th) * 7) % corpus.size()];
    });
  for (auto& t : threads) t.join();
  CHECK(bad == std::vector<int>(4, 0));
}

TEST_CASE("tokenizer: load_tokenizer takes a directory, a tokenizer.json or 'byte'", "[tokenizer]") {
  CHECK(data::load_tokenizer("byte")->name() == "byte");
  CHECK_THROWS_WITH(data::load_tokenizer("/no/such/dir"), Contains("/no/such/dir") && Contains("not found"));
  const std::string tmp = std::filesystem::temp_directory_path().string();
  CHECK_THROWS_WITH(data::load_tokenizer(tmp), Contains("has no tokenizer.json"));
  if (!real("deepseek_v3")) return;
  const auto by_file = data::load_tokenizer(tokenizer_dir("deepseek_v3") + "/tokenizer.json");
  CHECK(by_file->bos_id() == 0);  // tokenizer_config.json beside the file is read too
  CHECK(by_file->encode("Hello world") == real("deepseek_v3")->encode("Hello world"));
  CHECK_THAT(by_file->name(), Contains("deepseek_v3/tokenizer.json"));
}
