// tests/rewards/test_score_cli.cpp: `crucible score` as a user meets it (runs the binary).
//
// Invariant under test: every input line comes back with "reward" and every
// component with its reason; data errors are counted and fail the run unless
// --allow-data-errors; a bad line names file:line (or is skipped and counted);
// the output is written whole or not at all.
// Needs `score` registered in launch/cli.cpp (kCommands) and launch/commands.h.
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/json.h"
#include "tests/catch.h"

namespace fs = std::filesystem;
namespace json = crucible::json;

namespace {

struct Result {
  int code;
  std::string out;
};

Result run_crucible(const std::string& args) {
  const std::string cmd = std::string(CRUCIBLE_BINARY) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  std::string out;
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

fs::path temp_dir() {
  fs::path d = fs::temp_directory_path() / "crucible_test_score";
  fs::create_directories(d);
  return d;
}

std::string write_file(const std::string& name, const std::string& text) {
  const fs::path p = temp_dir() / name;
  std::ofstream(p) << text;
  return p.string();
}

std::vector<json::Value> read_jsonl(const std::string& path) {
  std::ifstream in(path);
  std::vector<json::Value> out;
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(json::parse(line, path));
  return out;
}

const char* kGood =
    R"({"id": 1, "completion": "<think>2+2</think>\n\nThe answer is $\\boxed{4}$.", "answer": "4", "completion_tokens": 10})"
    "\n"
    R"({"id": 2, "completion": "<think>hmm</think>\n\n\\boxed{5}", "answer": "4", "completion_tokens": 95})"
    "\n"
    R"({"id": 3, "completion": "no think block \\boxed{4}", "answer": "\\frac{8}{2}", "completion_tokens": 500})"
    "\n";

}  // namespace

TEST_CASE("score writes every line back with the reward and each component's reason", "[cli][score]") {
  const std::string in = write_file("in.jsonl", kGood);
  const std::string out = (temp_dir() / "out.jsonl").string();
  fs::remove(out);
  const Result r = run_crucible("score --rewards correctness=1,format=0.5,length=1 --in " + in + " --out " + out +
                                " --options '{\"length\": {\"max_tokens\": 100, \"cache\": 10}}'");
  INFO(r.out);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("scored 3 lines") && Catch::Contains("data errors: 0") &&
                        Catch::Contains("correctness") && Catch::Contains("mean reward"));
  const std::vector<json::Value> lines = read_jsonl(out);
  REQUIRE(lines.size() == 3);
  CHECK(lines[0].at("id").as_int64() == 1);  // input fields are kept
  CHECK(lines[0].at("reward").as_double() == 1.5);
  const json::Value& c0 = lines[0].at("reward_components");
  CHECK(c0.at("correctness").at("score").as_double() == 1.0);
  CHECK(c0.at("format").at("weight").as_double() == 0.5);
  CHECK_FALSE(c0.at("format").at("reason").as_string().empty());
  CHECK(lines[1].at("reward_components").at("length").at("score").as_double() == -0.5);
  CHECK(lines[1].at("reward").as_double() == 0.0 + 0.5 - 0.5);
  CHECK(lines[2].at("reward_components").at("correctness").at("score").as_double() == 0.0);  // no </think>
  CHECK(lines[2].at("reward_components").at("length").at("score").as_double() == -1.0);
  CHECK_FALSE(lines[2].at("reward_data_error").as_bool());

  const Result j = run_crucible("score --rewards correctness=1 --in " + in + " --out " + out + " --json");
  REQUIRE(j.code == 0);
  const json::Value summary = json::parse(j.out, "score --json");
  CHECK(summary.at("lines").as_int64() == 3);
  CHECK(summary.at("mean_reward").as_double() == Approx(1.0 / 3));
  CHECK(summary.at("components").at("correctness").at("weight").as_double() == 1.0);
}

TEST_CASE("score counts data errors and fails unless they are allowed", "[cli][score]") {
  const std::string in = write_file(
      "bad_gold.jsonl", R"({"completion": "<think>x</think>\\boxed{1}", "answer": "\\frac{1}{"})"
                        "\n"
                        R"({"completion": "<think>x</think>\\boxed{1}", "answer": "1"})"
                        "\n");
  const std::string out = (temp_dir() / "bad_gold_out.jsonl").string();
  const Result r = run_crucible("score --rewards correctness=1 --in " + in + " --out " + out);
  INFO(r.out);
  CHECK(r.code == 1);
  CHECK_THAT(r.out, Catch::Contains("1 of 2 samples have data errors") && Catch::Contains("bad_gold.jsonl:1") &&
                        Catch::Contains("is not parseable") && Catch::Contains("--allow-data-errors"));
  const std::vector<json::Value> lines = read_jsonl(out);
  REQUIRE(lines.size() == 2);
  CHECK(lines[0].at("reward_data_error").as_bool());
  CHECK(lines[0].at("reward").as_double() == 0.0);  // never 1 for an unusable reference
  const Result ok = run_crucible("score --rewards correctness=1 --in " + in + " --out " + out + " --allow-data-errors");
  CHECK(ok.code == 0);
  CHECK_THAT(ok.out, Catch::Contains("data errors: 1"));
}

TEST_CASE("score names the file and line of a bad line, or skips and counts it", "[cli][score]") {
  const std::string in = write_file("bad_line.jsonl", std::string(kGood) + "{not json\n" +
                                                          R"({"completion": 3, "answer": "1"})" "\n");
  const std::string out = (temp_dir() / "bad_line_out.jsonl").string();
  fs::remove(out);
  const Result r = run_crucible("score --rewards correctness=1 --in " + in + " --out " + out);
  INFO(r.out);
  CHECK(r.code == 1);
  CHECK_THAT(r.out, Catch::Contains("bad_line.jsonl:4"));
  CHECK_FALSE(fs::exists(out));  // nothing half-written
  const Result s = run_crucible("score --rewards correctness=1 --in " + in + " --out " + out + " --skip-bad-lines");
  CHECK(s.code == 0);
  CHECK_THAT(s.out, Catch::Contains("2 bad lines skipped") && Catch::Contains("'completion' must be a string"));
  CHECK(read_jsonl(out).size() == 3);
}

TEST_CASE("score usage errors", "[cli][score]") {
  const std::string in = write_file("in2.jsonl", kGood);
  const std::string out = (temp_dir() / "o2.jsonl").string();
  CHECK(run_crucible("score --in " + in + " --out " + out).code == 2);
  const Result unknown = run_crucible("score --rewards corectness=1 --in " + in + " --out " + out);
  CHECK(unknown.code == 1);
  CHECK_THAT(unknown.out, Catch::Contains("unknown reward 'corectness'"));
  const Result opt = run_crucible("score --rewards correctness=1 --in " + in + " --out " + out +
                                  " --options '{\"correctness\": {\"tol\": 1}}'");
  CHECK(opt.code == 1);
  CHECK_THAT(opt.out, Catch::Contains("reward 'correctness': unknown option 'tol'"));
  const Result missing = run_crucible("score --rewards correctness=1 --in /nonexistent/x.jsonl --out " + out);
  CHECK(missing.code == 1);
  CHECK_THAT(missing.out, Catch::Contains("/nonexistent/x.jsonl"));
  CHECK(run_crucible("score --help").code == 0);
}
