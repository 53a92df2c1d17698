// tests/data/test_tokenizer_files.cpp: tokenizer.json features beyond the three real files
// (against tokenizers' ids on a tiny trained BPE), errors for bad files, ByteTokenizer.
//
// Invariant checked: split behaviors (Removed, Isolated, MergedWithPrevious, MergedWithNext,
// Contiguous, invert, String patterns, empty matches), ByteLevel add_prefix_space/use_regex,
// added tokens with lstrip/rstrip/single_word/normalized under NFC, ignore_merges, unk with
// and without fuse_unk, merges as strings and as pairs all give tokenizers' ids and decode;
// every bad or unsupported file is an Error naming the file and the JSON path.
// Goldens: tools/make_tokenizer_goldens.py goldens ("synthetic" section).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include <unistd.h>

#include "core/error.h"
#include "core/json.h"
#include "data/byte_tokenizer.h"
#include "data/tokenizer.h"
#include "data/tokenizer_bpe.h"
#include "tests/catch.h"

using namespace crucible;
using Catch::Contains;

namespace {

const json::Value& synthetic() {
  static const json::Value g =
      json::parse_file(std::string(CRUCIBLE_SOURCE_DIR) + "/tests/data/tokenizer_golden/golden.json").at("synthetic");
  return g;
}

json::Value with_overrides(const json::Value& base, const json::Value& over) {
  json::Value doc = base;
  for (const auto& [key, value] : over.as_object()) {
    if (key == "model") {
      json::Value& model = *doc.find("model");
      for (const auto& [k, v] : value.as_object()) model.set(k, v);
    } else {
      doc.set(key, value);
    }
  }
  return doc;
}

std::vector<std::int32_t> ids_of(const json::Value& arr) {
  std::vector<std::int32_t> v;
  for (const json::Value& x : arr.as_array()) v.push_back(static_cast<std::int32_t>(x.as_int64()));
  return v;
}

std::string load_error(const std::string& text) {
  try {
    data::BpeTokenizer::from_json_text(text, "bad.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::string load_error_doc(const json::Value& doc) { return load_error(json::dump(doc)); }

// A directory under the temp directory, removed at scope end.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& name)
      : path(std::filesystem::temp_directory_path() / ("crucible_test_tok_" + std::to_string(::getpid()) + "_" + name)) {
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  void write(const std::string& name, const std::string& text) const { std::ofstream(path / name) << text; }
};

}  // namespace

TEST_CASE("tokenizer files: features beyond the real files match tokenizers", "[tokenizer]") {
  const json::Value& syn = synthetic();
  const json::Array& cases = syn.at("cases").as_array();
  for (const auto& [name, variant] : syn.at("variants").as_object()) {
    const auto tok = data::BpeTokenizer::from_json_text(json::dump(with_overrides(syn.at("base"), variant.at("overrides"))),
                                                        "synthetic:" + name);
    const json::Array& ids = variant.at("ids").as_array();
    const json::Array& decoded = variant.at("decoded").as_array();
    for (std::size_t i = 0; i < cases.size(); ++i) {
      INFO(name << " case " << i << ": " << json::quote(cases[i].as_string()));
      const std::vector<std::int32_t> got = tok->encode(cases[i].as_string());
      CHECK(got == ids_of(ids[i]));
      CHECK(tok->decode(got) == decoded[i].as_string());
    }
  }
}

TEST_CASE("tokenizer files: merges as strings and as pairs are the same table", "[tokenizer]") {
  const json::Value& base = synthetic().at("base");
  json::Value pairs = base;
  json::Value list = json::Value::array();
  for (const json::Value& m : base.at("model").at("merges").as_array()) {
    json::Value pair = json::Value::array();
    if (m.is_string()) {
      const std::string& s = m.as_string();
      pair.push_back(s.substr(0, s.find(' ')));
      pair.push_back(s.substr(s.find(' ') + 1));
    } else {
      pair = m;
    }
    list.push_back(std::move(pair));
  }
  pairs.find("model")->set("merges", std::move(list));
  const auto a = data::BpeTokenizer::from_json_text(json::dump(base), "strings");
  const auto b = data::BpeTokenizer::from_json_text(json::dump(pairs), "pairs");
  for (const json::Value& t : synthetic().at("cases").as_array()) CHECK(a->encode(t.as_string()) == b->encode(t.as_string()));
}

TEST_CASE("tokenizer files: bad and unsupported files name the file and the JSON path", "[tokenizer]") {
  const json::Value& base = synthetic().at("base");
  auto mutate = [&](auto&& edit) {
    json::Value doc = base;
    edit(doc);
    return load_error_doc(doc);
  };
  auto model = [](json::Value& d) -> json::Value& { return *d.find("model"); };
  auto ok = [](json::Value&) {};
  CHECK(mutate(ok).empty());

  CHECK_THAT(load_error("{not json"), Contains("bad.json:1:"));
  CHECK_THAT(load_error("[]"), Contains("bad.json: <root>") && Contains("expected an object"));
  CHECK_THAT(mutate([](json::Value& d) { d = json::Value::object(); }), Contains("missing key 'model'"));
  CHECK_THAT(mutate([&](json::Value& d) { model(d).set("vocab", json::Value::array()); }),
             Contains("bad.json: model.vocab") && Contains("expected an object, found array"));
  CHECK_THAT(mutate([&](json::Value& d) { model(d).find("vocab")->set("a", -1); }),
             Contains("model.vocab[\"a\"]") && Contains("expected a token id"));
  CHECK_THAT(mutate([&](json::Value& d) { model(d).find("vocab")->set("zz", 0); }), Contains("given to two tokens"));
  CHECK_THAT(mutate([&](json::Value& d) { model(d).find("merges")->push_back("zz qq"); }),
             Contains("model.merges[") && Contains("'zz' is not in model.vocab"));
  CHECK_THAT(mutate([&](json::Value& d) { model(d).find("merges")->push_back("abc"); }),
             Contains("two tokens separated by one space"));
  CHECK_THAT(mutate([&](json::Value& d) { model(d).find("merges")->push_back(json::Array{json::Value("a")}); }),
             Contains("a merge pair must have two tokens"));
  CHECK_THAT(mutate([&](json::Value& d) { model(d).find("merges")->push_back(json::Value(5)); }),
             Contains("expected a merge"));
  CHECK_THAT(mutate([&](json::Value& d) { model(d).find("merges")->push_back("Ā ā"); }),
             Contains("the merged token 'Āā' is not in model.vocab"));
  CHECK_THAT(mutate([&](json::Value& d) { model(d).set("type", "WordPiece"); }),
             Contains("model.type") && Contains("'WordPiece' is not supported"));
  CHECK_THAT(mutate([&](json::Value& d) { model(d).set("byte_fallback", true); }), Contains("byte_fallback is not supported"));
  CHECK_THAT(mutate([&](json::Value& d) { model(d).set("dropout", 0.1); }), Contains("model.dropout"));
  CHECK_THAT(mutate([&](json::Value& d) { model(d).set("continuing_subword_prefix", "##"); }),
             Contains("model.continuing_subword_prefix"));
  CHECK_THAT(mutate([&](json::Value& d) { model(d).set("unk_token", "<nope>"); }),
             Contains("model.unk_token") && Contains("not in model.vocab"));
  CHECK_THAT(mutate([](json::Value& d) { d.set("normalizer", json::parse(R"({"type":"NFKC"})")); }),
             Contains("normalizer.type") && Contains("'NFKC' is not supported"));
  CHECK_THAT(mutate([](json::Value& d) { d.set("pre_tokenizer", json::parse(R"({"type":"Whitespace"})")); }),
             Contains("pre_tokenizer.type") && Contains("'Whitespace' is not supported"));
  CHECK_THAT(mutate([](json::Value& d) { d.set("pre_tokenizer", json::Value()); }),
             Contains("needs a ByteLevel pre_tokenizer"));
  const char* byte_level = R"({"type":"ByteLevel","add_prefix_space":false,"trim_offsets":false})";
  CHECK_THAT(mutate([&](json::Value& d) {
               d.set("pre_tokenizer", json::parse(std::string(R"({"type":"Sequence","pretokenizers":[)") + byte_level +
                                                  R"(,{"type":"Split","pattern":{"Regex":"a"},"behavior":"Isolated","invert":false}]})"));
             }),
             Contains("pre_tokenizer.pretokenizers[0]") && Contains("ByteLevel must be the last"));
  auto with_split = [&](const std::string& split) {
    return mutate([&](json::Value& d) {
      d.set("pre_tokenizer", json::parse(R"({"type":"Sequence","pretokenizers":[)" + split + "," + byte_level + "]}"));
    });
  };
  CHECK_THAT(with_split(R"({"type":"Split","pattern":{"Regex":"(?<=a)b"},"behavior":"Isolated","invert":false})"),
             Contains("pre_tokenizer.pretokenizers[0].pattern") && Contains("lookbehind is not supported"));
  CHECK_THAT(with_split(R"({"type":"Split","pattern":{"Regex":"\\p{Han}"},"behavior":"Isolated","invert":false})"),
             Contains("unsupported Unicode property 'han'"));
  CHECK_THAT(with_split(R"({"type":"Split","pattern":{"Regex":"a"},"behavior":"Sideways","invert":false})"),
             Contains("unknown split behavior 'Sideways'"));
  CHECK_THAT(with_split(R"({"type":"Split","pattern":{"Regex":"a"},"behavior":"Isolated"})"), Contains("missing key 'invert'"));
  CHECK_THAT(with_split(R"({"type":"Split","pattern":{"Glob":"a"},"behavior":"Isolated","invert":false})"),
             Contains(R"(expected {"Regex": ...} or {"String": ...})"));
  CHECK_THAT(mutate([](json::Value& d) { d.set("pre_tokenizer", json::parse(R"({"type":"ByteLevel","trim_offsets":true})")); }),
             Contains("missing key 'add_prefix_space'"));
  CHECK_THAT(mutate([](json::Value& d) { d.set("decoder", json::Value()); }), Contains("needs the ByteLevel decoder"));
  CHECK_THAT(mutate([](json::Value& d) { d.set("decoder", json::parse(R"({"type":"WordPiece"})")); }),
             Contains("decoder.type") && Contains("'WordPiece' is not supported"));
  CHECK_THAT(mutate([](json::Value& d) { d.set("added_tokens", json::parse(R"([{"id":420}])")); }),
             Contains("added_tokens[0]") && Contains("missing key 'content'"));
  CHECK_THAT(mutate([](json::Value& d) { d.set("truncation", json::parse(R"({"max_length":8})")); }),
             Contains("truncation is not supported"));
  // The line of the offending value is named for files read from text.
  CHECK_THAT(load_error("{\n\"model\": {\n\"type\": \"Unigram\"}}"), Contains("model.type (line 3)"));
}

TEST_CASE("tokenizer files: added tokens get the ids tokenizers assigns", "[tokenizer]") {
  // A new token takes the next id after the vocabulary whatever the file says (tokenizers
  // only warns), a token already in the vocabulary keeps its vocabulary id.
  json::Value doc = synthetic().at("base");
  doc.set("added_tokens", json::parse(R"([{"id":5,"content":"<x>","special":true,"normalized":false},
                                          {"id":7,"content":"Ġthe","special":true,"normalized":false},
                                          {"id":9,"content":"<y>","special":false}])"));
  const auto tok = data::BpeTokenizer::from_json_text(json::dump(doc), "ids.json");
  CHECK(tok->token_id("<x>") == 420);
  CHECK(tok->token_id("<y>") == 421);
  CHECK(tok->vocab_size() == 422);
  const auto the = tok->token_id("Ġthe");
  REQUIRE(the.has_value());
  CHECK(*the < 420);
  CHECK(tok->is_special(*the));
  CHECK(tok->encode("a<x> the<y>") == std::vector<std::int32_t>{*tok->token_id("a"), 420, *the, 421});
}

TEST_CASE("tokenizer files: missing files and tokenizer_config.json specials", "[tokenizer]") {
  CHECK_THROWS_WITH(data::BpeTokenizer::load("/no/such/tokenizer.json"), Contains("cannot open tokenizer file"));
  TempDir dir("cfg");
  dir.write("tokenizer.json", json::dump(synthetic().at("base")));
  dir.write("tokenizer_config.json", R"({"bos_token": {"__type": "AddedToken", "content": "Ġthe"}, "eos_token": "!"})");
  const auto tok = data::load_tokenizer(dir.path.string());
  CHECK(tok->bos_id() == tok->token_id("Ġthe"));
  CHECK(tok->eos_id() == tok->token_id("!"));
  dir.write("tokenizer_config.json", R"({"bos_token": "<nope>"})");
  CHECK_THROWS_WITH(data::load_tokenizer(dir.path.string()),
                    Contains("tokenizer_config.json: bos_token") && Contains("'<nope>' is not a token"));
  dir.write("tokenizer_config.json", R"({"bos_token": null, "eos_token": 7})");
  CHECK_THROWS_WITH(data::load_tokenizer(dir.path.string()), Contains("eos_token") && Contains("expected a string"));
}

TEST_CASE("byte tokenizer: bytes, specials as whole tokens, exact round trips", "[tokenizer]") {
  const data::ByteTokenizer tok;
  CHECK(tok.vocab_size() == 272);
  CHECK(tok.bos_id() == 256);
  CHECK(tok.eos_id() == 257);
  CHECK(tok.encode("Hi!") == std::vector<std::int32_t>{72, 105, 33});
  const std::string chat = "<｜begin▁of▁sentence｜><｜User｜>2+2?<｜Assistant｜><think>\nsum</think>4<｜end▁of▁sentence｜><｜pad｜>";
  const std::vector<std::int32_t> ids = tok.encode(chat);
  CHECK(ids == std::vector<std::int32_t>{256, 258, 50, 43, 50, 63, 259, 260, 10, 115, 117, 109, 261, 52, 257, 262});
  CHECK(tok.decode(ids) == chat);
  CHECK(tok.decode(ids, true) == "2+2?\nsum4");
  CHECK(tok.encode("<｜reserved_8｜>") == std::vector<std::int32_t>{271});
  CHECK(tok.encode("<｜User").size() == std::string("<｜User").size());  // a cut special is bytes
  CHECK(tok.encode("<thinking>").size() == 10);
  const std::string raw = "\xFF\xFE\xC3(\x80 ok";  // not UTF-8: encodes and decodes as is
  CHECK(tok.decode(tok.encode(raw)) == raw);
  CHECK(tok.token_text(32) == "Ġ");
  CHECK(tok.token_text(97) == "a");
  CHECK(tok.token_text(260) == "<think>");
  CHECK(tok.token_id("Ġ") == 32);
  CHECK(tok.token_id(" ") == 32);
  CHECK(tok.token_id("</think>") == 261);
  CHECK_FALSE(tok.token_id("ab").has_value());
  CHECK(tok.is_special(262));
  CHECK_FALSE(tok.is_special(255));
  CHECK_THROWS_WITH(tok.token_text(272), Contains("names no token"));
  CHECK(tok.decode(std::vector<std::int32_t>{72, -5, 9999, 105}) == "Hi");
  for (std::int32_t id = 0; id < 272; ++id) CHECK(tok.token_id(tok.token_text(id)) == id);
}

TEST_CASE("tokenizer CLI: crucible tokenizer encode and decode", "[tokenizer]") {
  auto run = [](const std::string& args) {
    std::string out;
    FILE* f = popen((std::string(CRUCIBLE_BINARY) + " " + args + " 2>&1").c_str(), "r");
    REQUIRE(f);
    char buf[4096];
    while (std::size_t n = std::fread(buf, 1, sizeof buf, f)) out.append(buf, n);
    return std::make_pair(pclose(f), out);
  };
  if (!std::filesystem::exists(CRUCIBLE_BINARY)) {
    WARN("skipped: " << CRUCIBLE_BINARY << " not built");
    return;
  }
  CHECK(run("tokenizer encode --tokenizer byte --text 'Hi<think>'") == std::make_pair(0, std::string("72,105,260\n")));
  CHECK(run("tokenizer decode --tokenizer byte --ids 72,105,257 --skip-special") == std::make_pair(0, std::string("Hi\n")));
  TempDir dir("cli");
  dir.write("tokenizer.json", json::dump(synthetic().at("base")));
  const auto tok = data::load_tokenizer(dir.path.string());
  const std::vector<std::int32_t> ids = tok->encode("Hello world");
  const auto [rc, out] = run("tokenizer encode --json --tokenizer " + dir.path.string() + " --text 'Hello world'");
  REQUIRE(rc == 0);
  const json::Value j = json::parse(out);
  CHECK(ids_of(j.at("ids")) == ids);
  CHECK(j.at("tokens").as_array()[1].as_string() == tok->token_text(ids[1]));
  const auto [rc2, err] = run("tokenizer encode --tokenizer byte");
  CHECK(rc2 != 0);
  CHECK_THAT(err, Contains("give exactly one of --text or --file"));
}
