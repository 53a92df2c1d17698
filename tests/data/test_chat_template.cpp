// tests/data/test_chat_template.cpp: chat templates against transformers' renderings.
//
// Every case of tests/data/chat_golden/*.json (apply_chat_template output, made by
// tools/make_chat_goldens.py) must render byte for byte; the stored template texts must
// equal the goldens' and the shared tokenizer_config.json files'; detection and the errors
// for unsupported conversations are checked on real and made-up files.
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/json.h"
#include "data/chat_template.h"
#include "tests/catch.h"

using crucible::data::ChatFormat;
using crucible::data::ChatMessage;
using crucible::data::ChatTemplateOptions;
namespace data = crucible::data;
namespace json = crucible::json;
namespace fs = std::filesystem;

namespace {

const std::string kGoldens = std::string(CRUCIBLE_SOURCE_DIR) + "/tests/data/chat_golden/";

std::string tokenizer_config(const char* model) {
  const char* dir = std::getenv("CRUCIBLE_TOKENIZER_DIR");
  return std::string(dir ? dir : "/work/shared/data/tokenizers") + "/" + model + "/tokenizer_config.json";
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

ChatTemplateOptions options_of(const json::Value& o) {
  ChatTemplateOptions opts;
  opts.add_generation_prompt = o.at("add_generation_prompt").as_bool();
  if (const json::Value* v = o.find("think_prefill")) opts.think_prefill = v->as_bool();
  if (const json::Value* v = o.find("enable_thinking")) opts.enable_thinking = v->as_bool();
  if (const json::Value* v = o.find("bos_token")) opts.bos_token = v->as_string();
  return opts;
}

// A readable diff position for a failed comparison.
std::string first_difference(const std::string& a, const std::string& b) {
  std::size_t i = 0;
  while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
  return "first difference at byte " + std::to_string(i) + ": got " + json::quote(a.substr(i, 40)) + ", want " +
         json::quote(b.substr(i, 40));
}

struct GoldenFile {
  const char* file;
  ChatFormat format;
};

constexpr GoldenFile kGoldenFiles[] = {
    {"deepseek_v3.json", ChatFormat::R1},
    {"deepseek_r1.json", ChatFormat::R1},
    {"qwen3.json", ChatFormat::ChatML},
    {"llama3_1.json", ChatFormat::Llama3},
};

// A fresh directory under the temp dir, removed at the end of the scope.
struct TempDir {
  fs::path path;
  TempDir() {
    std::random_device rd;
    path = fs::temp_directory_path() / ("crucible_chat_" + std::to_string(rd()) + std::to_string(rd()));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(path / name, std::ios::binary) << text;
    return (path / name).string();
  }
};

}  // namespace

TEST_CASE("chat templates render every transformers golden byte for byte", "[chat]") {
  int total = 0;
  for (const GoldenFile& g : kGoldenFiles) {
    const json::Value doc = json::parse_file(kGoldens + g.file);
    const json::Array& cases = doc.at("cases").as_array();
    REQUIRE(cases.size() >= 30);
    bool saw_prefill = false;
    for (const json::Value& c : cases) {
      const std::string name = std::string(g.file) + " / " + c.at("name").as_string() + " / " +
                               json::dump(c.at("options"));
      INFO(name);
      const std::vector<ChatMessage> messages = data::chat_messages_from_json(c.at("messages"), name);
      const ChatTemplateOptions opts = options_of(c.at("options"));
      saw_prefill = saw_prefill || opts.think_prefill;
      const std::string got = data::render_chat(g.format, messages, opts);
      const std::string& want = c.at("rendered").as_string();
      INFO(first_difference(got, want));
      CHECK(got == want);
      // The template an exporter writes for these options is the one that made the golden.
      CHECK(data::chat_template_source(g.format, opts) == doc.at("chat_template").as_string());
      ++total;
    }
    CHECK(saw_prefill == (std::string(g.file) == "deepseek_r1.json"));
    CHECK(data::is_stock_chat_template(g.format, doc.at("chat_template").as_string()));
    CHECK(data::chat_format_of_template(doc.at("chat_template").as_string()) == g.format);
  }
  CHECK(total == 39 + 39 + 72 + 39);
}

TEST_CASE("stored templates are the real tokenizer_config.json texts and are detected", "[chat]") {
  struct Real {
    const char* model;
    ChatFormat format;
  };
  for (const Real r : {Real{"deepseek_v3", ChatFormat::R1}, Real{"qwen3", ChatFormat::ChatML},
                       Real{"llama3_1", ChatFormat::Llama3}}) {
    const std::string path = tokenizer_config(r.model);
    if (!fs::exists(path)) {
      WARN("skipped: " << path << " not found (set CRUCIBLE_TOKENIZER_DIR)");
      continue;
    }
    INFO(path);
    CHECK(data::detect_chat_format(path) == r.format);
    const json::Value config = json::parse_file(path);
    ChatTemplateOptions opts;  // think_prefill false: DeepSeek-V3's template for R1
    CHECK(data::chat_template_source(r.format, opts) == config.at("chat_template").as_string());
  }
  // R1 with the prefill is DeepSeek-R1's template: V3's plus the reasoning cut and "<think>\n".
  ChatTemplateOptions r1;
  r1.think_prefill = true;
  const std::string_view src = data::chat_template_source(ChatFormat::R1, r1);
  CHECK(src.find("content.split('</think>')[-1]") != std::string_view::npos);
  CHECK(src.ends_with("{{'<｜Assistant｜><think>\\n'}}{% endif %}"));
}

TEST_CASE("R1 prefill, Qwen3 thinking switch and Llama BOS on a small conversation", "[chat]") {
  const std::vector<ChatMessage> conv = {{"system", "S"}, {"user", "Q"}};
  ChatTemplateOptions o;
  CHECK(data::render_chat(ChatFormat::R1, conv, o) == "<｜begin▁of▁sentence｜>S<｜User｜>Q<｜Assistant｜>");
  o.think_prefill = true;
  CHECK(data::render_chat(ChatFormat::R1, conv, o) == "<｜begin▁of▁sentence｜>S<｜User｜>Q<｜Assistant｜><think>\n");
  o.bos_token = "";
  CHECK(data::render_chat(ChatFormat::R1, conv, o) == "S<｜User｜>Q<｜Assistant｜><think>\n");
  o = {};
  o.enable_thinking = false;
  CHECK(data::render_chat(ChatFormat::ChatML, conv, o) ==
        "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
  o = {};
  o.add_generation_prompt = false;
  o.bos_token = "<B>";
  CHECK(data::render_chat(ChatFormat::Llama3, conv, o) ==
        "<B><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nQ<|eot_id|>");
  CHECK(data::chat_end_of_turn(ChatFormat::R1) == "<｜end▁of▁sentence｜>");
  CHECK(data::chat_end_of_turn(ChatFormat::ChatML) == "<|im_end|>");
  CHECK(data::chat_end_of_turn(ChatFormat::Llama3) == "<|eot_id|>");
  CHECK(data::default_bos_token(ChatFormat::ChatML).empty());
}

TEST_CASE("Llama trim follows Python str.strip on odd UTF-8", "[chat]") {
  ChatTemplateOptions o;
  o.add_generation_prompt = false;
  o.bos_token = "";
  const auto body = [&](const std::string& content) {
    const std::vector<ChatMessage> m = {{"user", content}};
    const std::string r = data::render_chat(ChatFormat::Llama3, m, o);
    const std::string head = "<|start_header_id|>user<|end_header_id|>\n\n";
    return r.substr(head.size(), r.size() - head.size() - std::string("<|eot_id|>").size());
  };
  CHECK(body("\xE3\x80\x80 a\xC2\xA0") == "a");          // U+3000, U+00A0 are whitespace
  CHECK(body("\xE2\x80\x8B a \xE2\x80\x8B") == "\xE2\x80\x8B a \xE2\x80\x8B");  // U+200B is not
  CHECK(body(" \xFF ") == "\xFF");                       // invalid byte: kept, never stripped
  CHECK(body("  \xE3\x80") == "\xE3\x80");               // truncated U+3000: kept
  CHECK(body("\xC0\xA0x") == "\xC0\xA0x");               // overlong space: not a space
  CHECK(body(" \t\r\n\x0B\x0C\x1C\x1D\x1E\x1F") == "");
}

TEST_CASE("unsupported conversations are clear errors", "[chat]") {
  const std::vector<ChatMessage> empty;
  CHECK(error_of([&] { data::render_chat(ChatFormat::R1, empty); }).find("empty") != std::string::npos);
  const std::vector<ChatMessage> tool = {{"user", "q"}, {"tool", "42"}};
  for (ChatFormat f : {ChatFormat::R1, ChatFormat::ChatML, ChatFormat::Llama3}) {
    const std::string e = error_of([&] { data::render_chat(f, tool); });
    CHECK(e.find("message 1") != std::string::npos);
    CHECK(e.find("tool calls") != std::string::npos);
  }
  const std::vector<ChatMessage> dev = {{"developer", "x"}};
  CHECK(error_of([&] { data::render_chat(ChatFormat::ChatML, dev); }).find("\"developer\"") != std::string::npos);

  struct Bad {
    const char* json;
    const char* says;
  };
  const Bad bad[] = {
      {R"({"role":"user","content":"q"})", "JSON array"},
      {R"([{"role":"assistant","content":null,"tool_calls":[{"type":"function"}]}])", "tool_calls"},
      {R"([{"role":"assistant","content":null}])", "content of type null"},
      {R"([{"role":"user","content":[{"type":"image"},{"type":"text","text":"what is this?"}]}])", "list of parts"},
      {R"([{"role":"assistant","content":"a","reasoning_content":"r"}])", "reasoning_content"},
      {R"([{"content":"q"}])", "string \"role\""},
      {R"([{"role":"user"}])", "no \"content\""},
      {R"([{"role":"tool","content":"42","tool_call_id":"c1"}])", "tool_call_id"},
      {R"([{"role":"function","content":"42"}])", "tool calls"},
      {R"([])", "empty"},
      {R"(["hi"])", "expected an object"},
  };
  for (const Bad& b : bad) {
    INFO(b.json);
    const std::string e = error_of([&] { data::chat_messages_from_json(json::parse(b.json), "set.jsonl:3"); });
    CHECK(e.rfind("set.jsonl:3: ", 0) == 0);
    CHECK(e.find(b.says) != std::string::npos);
  }
  // Extra keys (names, dataset metadata) are ignored.
  const auto ok = data::chat_messages_from_json(json::parse(R"([{"role":"user","content":"q","name":"ann","weight":1}])"), "x");
  REQUIRE(ok.size() == 1);
  CHECK(ok[0].content == "q");
}

TEST_CASE("chat format names and detection from made-up files", "[chat]") {
  for (ChatFormat f : {ChatFormat::R1, ChatFormat::ChatML, ChatFormat::Llama3})
    CHECK(data::parse_chat_format(data::chat_format_name(f)) == f);
  CHECK(data::parse_chat_format("r1") == ChatFormat::R1);
  CHECK(data::parse_chat_format("chatml") == ChatFormat::ChatML);
  CHECK(data::parse_chat_format("llama3") == ChatFormat::Llama3);
  CHECK_FALSE(data::parse_chat_format("R1").has_value());
  CHECK_FALSE(data::parse_chat_format("plain").has_value());

  const TempDir dir;
  // A list of named templates: the "default" one counts.
  const std::string list = dir.write("list.json", R"({"chat_template":[{"name":"tool_use","template":"<|start_header_id|>"},)"
                                                  R"({"name":"default","template":"{{'<|im_start|>' + m}}"}]})");
  CHECK(data::detect_chat_format(list) == ChatFormat::ChatML);  // not stock: detected, with a warning
  // No chat_template key: chat_template.jinja beside the file.
  fs::create_directories(dir.path / "sub");
  const std::string sub = dir.write("sub/tokenizer_config.json", R"({"bos_token":null})");
  const std::string missing = error_of([&] { data::detect_chat_format(sub); });
  CHECK(missing.find("no chat_template") != std::string::npos);
  dir.write("sub/chat_template.jinja", std::string(data::chat_template_source(ChatFormat::Llama3, {})));
  CHECK(data::detect_chat_format(sub) == ChatFormat::Llama3);
  // Unknown and ambiguous templates.
  const std::string unknown = dir.write("unknown.json", R"({"chat_template":"{{ '[INST] ' + m + ' [/INST]' }}"})");
  CHECK(error_of([&] { data::detect_chat_format(unknown); }).find("not recognized") != std::string::npos);
  const std::string both = dir.write("both.json", R"({"chat_template":"<|im_start|><|start_header_id|>"})");
  CHECK(error_of([&] { data::detect_chat_format(both); }).find("not recognized") != std::string::npos);
  const std::string nodefault = dir.write("nodefault.json", R"({"chat_template":[{"name":"rag","template":"x"}]})");
  CHECK(error_of([&] { data::detect_chat_format(nodefault); }).find("\"default\"") != std::string::npos);
  CHECK(error_of([&] { data::detect_chat_format((dir.path / "absent.json").string()); }) != "");
}
