// tests/data/test_jsonl.cpp: JSONL reading (file:line errors, skip-and-count), atomic
// writing, and the RL / SFT record loaders.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "data/dataset.h"
#include "data/jsonl.h"
#include "tests/catch.h"

using namespace crucible;
using namespace crucible::data;
using Catch::Contains;

namespace {

// A file under the temp directory, removed at scope end.
struct TempFile {
  std::string path;
  explicit TempFile(const std::string& name, const std::string& text = {})
      : path((std::filesystem::temp_directory_path() /
              ("crucible_test_jsonl_" + std::to_string(::getpid()) + "_" + name))
                 .string()) {
    if (!text.empty()) {
      std::ofstream out(path, std::ios::binary);
      out << text;
    }
  }
  ~TempFile() {
    std::filesystem::remove(path);
    std::filesystem::remove(path + ".tmp");
  }
};

std::string error_of(auto&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("jsonl: records, blank lines, CRLF and a last line without newline", "[jsonl]") {
  JsonlReader r = JsonlReader::from_string("{\"a\":1}\r\n\n   \n{\"a\":2}\n{\"a\":3}", "mem.jsonl");
  JsonlRecord rec;
  std::vector<std::int64_t> lines, values;
  while (r.next(rec)) {
    lines.push_back(rec.line);
    values.push_back(rec.value.at("a").as_int64());
  }
  CHECK(lines == std::vector<std::int64_t>{1, 4, 5});
  CHECK(values == std::vector<std::int64_t>{1, 2, 3});
  CHECK(r.stats().lines == 3);
  CHECK(r.stats().records == 3);
  CHECK(r.stats().skipped == 0);
}

TEST_CASE("jsonl: a bad line is an error naming file:line[:col]", "[jsonl]") {
  const std::string text = "{\"prompt\":\"p\",\"answer\":\"1\"}\n\n{\"prompt\": oops}\n";
  std::string msg = error_of([&] { parse_rl_prompts(text, "train.jsonl"); });
  CHECK_THAT(msg, Contains("train.jsonl:3:12:"));
  CHECK_THAT(msg, Contains("skip_bad_lines"));

  msg = error_of([&] { parse_rl_prompts("[1, 2]\n", "a.jsonl"); });
  CHECK_THAT(msg, Contains("a.jsonl:1: expected a JSON object, got array"));

  msg = error_of([&] { parse_rl_prompts("{\"prompt\":\"p\",\"answer\":\"1\"}\n{\"prompt\":\"q\"}\n", "b.jsonl"); });
  CHECK_THAT(msg, Contains("b.jsonl:2: key 'answer' is missing"));

  msg = error_of([&] { parse_rl_prompts("{\"prompt\":\"p\",\"answer\":[1]}\n", "c.jsonl"); });
  CHECK_THAT(msg, Contains("c.jsonl:1: key 'answer' must be a string or a number, got array"));

  msg = error_of([&] { parse_rl_prompts("{\"prompt\":7,\"answer\":\"1\"}\n", "d.jsonl"); });
  CHECK_THAT(msg, Contains("d.jsonl:1: key 'prompt' must be a string, got number"));

  msg = error_of([&] { parse_rl_prompts("{\"prompt\":\"p\",\"answer\":\"1\",\"meta\":3}\n", "e.jsonl"); });
  CHECK_THAT(msg, Contains("e.jsonl:1: key 'meta' must be an object"));

  // A file on disk names its path.
  TempFile f("bad.jsonl", "{\"prompt\":\"p\",\"answer\":\"1\"}\n{\"prompt\":\"p\",\"answer\":\"1\"\n");
  msg = error_of([&] { load_rl_prompts(f.path); });
  CHECK_THAT(msg, Contains(f.path + ":2:"));

  msg = error_of([&] { load_rl_prompts(f.path + ".missing"); });
  CHECK_THAT(msg, Contains("cannot open"));
}

TEST_CASE("jsonl: skip_bad_lines skips, counts and keeps the first reasons", "[jsonl]") {
  std::string text;
  for (int i = 0; i < 20; ++i) {
    if (i % 4 == 1) text += "{broken\n";
    else if (i % 4 == 3) text += "{\"prompt\":\"p\"}\n";
    else text += "{\"prompt\":\"p" + std::to_string(i) + "\",\"answer\":" + std::to_string(i) + "}\n";
  }
  JsonlOptions opts;
  opts.skip_bad_lines = true;
  opts.reasons_kept = 3;
  JsonlStats st;
  const auto prompts = parse_rl_prompts(text, "mixed.jsonl", opts, &st);
  CHECK(prompts.size() == 10);
  CHECK(st.lines == 20);
  CHECK(st.records == 10);
  CHECK(st.skipped == 10);
  REQUIRE(st.skip_reasons.size() == 3);
  CHECK_THAT(st.skip_reasons[0], Contains("mixed.jsonl:2:"));
  CHECK_THAT(st.skip_reasons[1], Contains("mixed.jsonl:4: key 'answer' is missing"));
  CHECK(prompts[1].prompt == "p2");
  CHECK(prompts[1].answer == "2");  // a number answer keeps its JSON text
  CHECK(prompts[1].id == "3");      // no id: the line number
}

TEST_CASE("jsonl: RL records keep id, meta and number answers", "[jsonl]") {
  const auto p = parse_rl_prompts(
      "{\"id\":\"q1\",\"prompt\":\"What is 1/2?\",\"answer\":0.5,\"meta\":{\"src\":\"x\"},\"extra\":1}\n"
      "{\"id\":17,\"prompt\":\"2+2\",\"answer\":\"4\"}\n",
      "rl.jsonl");
  REQUIRE(p.size() == 2);
  CHECK(p[0].id == "q1");
  CHECK(p[0].answer == "0.5");
  CHECK(p[0].meta.at("src").as_string() == "x");
  CHECK(p[1].id == "17");
  CHECK(p[1].meta.is_object());
  // to_json round-trips through the loader.
  const auto back = parse_rl_prompts(jsonl_line(to_json(p[0])), "rt.jsonl");
  REQUIRE(back.size() == 1);
  CHECK(back[0].prompt == p[0].prompt);
  CHECK(back[0].answer == p[0].answer);
  CHECK(json::dump(back[0].meta) == json::dump(p[0].meta));
}

TEST_CASE("jsonl: SFT records in both forms", "[jsonl]") {
  const auto ex = parse_sft(
      "{\"prompt\":\"hi\",\"response\":\"<think>\\nx\\n</think>\\n\\nhello\",\"system\":\"be brief\"}\n"
      "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"assistant\",\"content\":\"b\"},"
      "{\"role\":\"user\",\"content\":\"c\"},{\"role\":\"assistant\",\"content\":\"d\"}]}\n",
      "sft.jsonl");
  REQUIRE(ex.size() == 2);
  REQUIRE(ex[0].messages.size() == 3);
  CHECK(ex[0].messages[0].role == "system");
  CHECK(ex[0].messages[1].role == "user");
  CHECK(ex[0].messages[1].content == "hi");
  CHECK(ex[0].messages[2].role == "assistant");
  CHECK(ex[1].messages.size() == 4);
  CHECK(ex[1].messages[3].content == "d");
  const auto back = parse_sft(jsonl_line(to_json(ex[1])), "rt.jsonl");
  REQUIRE(back.size() == 1);
  CHECK(back[0].messages.size() == 4);

  auto err = [](const std::string& line) { return error_of([&] { parse_sft(line + "\n", "s.jsonl"); }); };
  CHECK_THAT(err("{\"prompt\":\"p\"}"), Contains("s.jsonl:1: key 'response' is missing"));
  CHECK_THAT(err("{\"messages\":{}}"), Contains("key 'messages' must be an array, got object"));
  CHECK_THAT(err("{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}]}"), Contains("no non-empty assistant"));
  CHECK_THAT(err("{\"messages\":[{\"role\":\"bot\",\"content\":\"a\"}]}"), Contains("messages[0]: role 'bot'"));
  CHECK_THAT(err("{\"messages\":[{\"role\":\"assistant\",\"content\":1}]}"),
             Contains("messages[0]: key 'content' must be a string (got number)"));
  CHECK_THAT(err("{\"messages\":[],\"prompt\":\"p\"}"), Contains("both 'messages' and 'prompt'"));
  CHECK_THAT(err("{}"), Contains("needs \"prompt\" + \"response\", or \"messages\""));
}

TEST_CASE("jsonl: the writer is atomic and round-trips", "[jsonl]") {
  TempFile f("out.jsonl");
  {
    JsonlWriter w(f.path);
    json::Value o = json::Value::object();
    o.set("prompt", "x \"quoted\" \n and ünïcode");
    o.set("answer", "1");
    w.write(o);
    CHECK(std::filesystem::exists(f.path + ".tmp"));
    CHECK(!std::filesystem::exists(f.path));  // nothing visible before commit
    w.commit();
  }
  CHECK(!std::filesystem::exists(f.path + ".tmp"));
  const auto p = load_rl_prompts(f.path);
  REQUIRE(p.size() == 1);
  CHECK(p[0].prompt == "x \"quoted\" \n and ünïcode");

  // A writer dropped before commit leaves the old file untouched.
  {
    JsonlWriter w(f.path);
    json::Value o = json::Value::object();
    o.set("prompt", "other");
    o.set("answer", "2");
    w.write(o);
  }
  CHECK(!std::filesystem::exists(f.path + ".tmp"));
  CHECK(load_rl_prompts(f.path)[0].prompt == p[0].prompt);
}
