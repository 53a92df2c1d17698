// The pipeline as a user runs it: every stage kind end to end on a tiny config, the
// run directory's files, bit-identical resume after SIGKILL, and mpirun -np 2
// against one rank on the same global batch.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "checkpoints/model_file.h"
#include "core/json.h"
#include "tests/catch.h"

using namespace crucible;
namespace fs = std::filesystem;

namespace {

const std::string kConfig = std::string(CRUCIBLE_SOURCE_DIR) + "/tests/trainer/pipeline_tiny.toml";

// A run directory of this test process (two test runs on one machine must not share one).
std::string temp_run(const std::string& name) {
  return (fs::temp_directory_path() / ("crucible_" + name + "_" + std::to_string(::getpid()))).string();
}

int run(const std::string& cmd, std::string* out = nullptr) {
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  std::string text;
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) text.append(buf, n);
  const int status = pclose(p);
  if (out) *out = text;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string crucible_run(const std::string& dir, const std::string& extra = "") {
  return std::string(CRUCIBLE_BINARY) + " run " + kConfig + " --set run.out_dir=" + dir + " " + extra;
}

std::vector<double> losses(const std::string& dir, const std::string& stage) {
  std::vector<double> out;
  std::ifstream in(dir + "/metrics.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    const json::Value j = json::parse(line, "metrics");
    if (j.at("stage").as_string() == stage && j.find("loss")) out.push_back(j.at("loss").as_double());
  }
  return out;
}

bool same_weights(const std::string& a, const std::string& b) {
  auto wa = checkpoints::load_model(a), wb = checkpoints::load_model(b);
  return wa->params().bytes() == wb->params().bytes() &&
         std::equal(wa->params().flat().data<std::uint8_t>(), wa->params().flat().data<std::uint8_t>() + wa->params().bytes(),
                    wb->params().flat().data<std::uint8_t>());
}

}  // namespace

TEST_CASE("a tiny pipeline runs every stage kind and writes the run directory", "[pipeline]") {
  const std::string dir = temp_run("pipeline_full");
  fs::remove_all(dir);
  std::string out;
  REQUIRE(run(crucible_run(dir), &out) == 0);
  INFO(out);
  for (const char* f : {"config.toml", "metrics.jsonl", "report.json", "checkpoints/model-teacher.h5",
                        "checkpoints/model-student.h5", "data/rejection.jsonl", "export/student/hf/config.json",
                        "export/student/hf/model.safetensors", "export/student/hf/tokenizer.json",
                        "export/student/model.gguf", "export/student/Modelfile", "export/teacher/hf/config.json"})
    CHECK(fs::exists(dir + "/" + f));
  const json::Value report = json::parse_file(dir + "/report.json");
  for (const char* s : {"sft", "grpo", "rejection", "sft_rl", "distill", "eval", "export"}) {
    INFO(s);
    REQUIRE(report.at("stages").find(s));
    CHECK(report.at("stages").at(s).at("done").as_bool());
  }
  const json::Value& sft = report.at("stages").at("sft");
  for (const char* k : {"kind", "seconds", "tokens_per_s", "before", "after"}) CHECK(sft.find(k));
  CHECK(sft.at("after").at("n").as_int64() == 4);
  CHECK(report.at("stages").at("rejection").find("acceptance_rate"));
  // GRPO logs what the issue lists, per step.
  std::ifstream in(dir + "/metrics.jsonl");
  std::string line;
  bool saw_grpo = false;
  while (std::getline(in, line)) {
    const json::Value j = json::parse(line, "metrics");
    if (j.at("stage").as_string() != "grpo") continue;
    saw_grpo = true;
    for (const char* k : {"reward", "reward_correctness", "accuracy", "format_rate", "response_length", "kl",
                          "clip_fraction", "entropy", "tokens_per_s", "sampler_trainer_gap"})
      CHECK(j.find(k));
    CHECK(j.at("sampler_trainer_gap").as_double() < 1e-4);  // fp32: the sampler and trainer agree
  }
  CHECK(saw_grpo);
  // SFT loss goes down.
  const auto l = losses(dir, "sft");
  REQUIRE(l.size() == 12);
  CHECK(l.back() < l.front());
  // A finished run started again does nothing and keeps its results.
  REQUIRE(run(crucible_run(dir), &out) == 0);
  CHECK_THAT(out, Catch::Contains("already done"));
}

TEST_CASE("a run killed with SIGKILL mid-stage resumes to the same result, bit for bit", "[pipeline][resume]") {
  const std::string a = temp_run("pipeline_a");
  const std::string b = temp_run("pipeline_b");
  fs::remove_all(a);
  fs::remove_all(b);
  const std::string only_sft = "--set 'run.stages=[\"sft\"]' --set stages.sft.steps=16";
  REQUIRE(run(crucible_run(a, only_sft)) == 0);
  // Start b, wait for its step-8 checkpoint, SIGKILL it, start it again.
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    const std::string cmd = crucible_run(b, only_sft) + " >/dev/null 2>&1";
    execl("/bin/sh", "sh", "-c", ("exec " + cmd).c_str(), nullptr);
    _exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (!fs::exists(b + "/checkpoints/sft-step000008.h5") && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  REQUIRE(fs::exists(b + "/checkpoints/sft-step000008.h5"));
  REQUIRE_FALSE(fs::exists(b + "/checkpoints/model-teacher.h5"));  // it really stopped mid-stage
  std::string out;
  REQUIRE(run(crucible_run(b, only_sft), &out) == 0);
  CHECK_THAT(out, Catch::Contains("resuming stage sft"));
  CHECK(losses(a, "sft") == losses(b, "sft"));
  CHECK(same_weights(a + "/checkpoints/model-teacher.h5", b + "/checkpoints/model-teacher.h5"));
  const json::Value ra = json::parse_file(a + "/report.json"), rb = json::parse_file(b + "/report.json");
  CHECK(ra.at("stages").at("sft").at("after").at("accuracy").as_double() ==
        rb.at("stages").at("sft").at("after").at("accuracy").as_double());
}

namespace {

std::vector<double> metric(const std::string& dir, const std::string& stage, const std::string& key) {
  std::vector<double> out;
  std::ifstream in(dir + "/metrics.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    const json::Value j = json::parse(line, "metrics");
    if (j.at("stage").as_string() == stage && j.find(key)) out.push_back(j.at(key).as_double());
  }
  return out;
}

}  // namespace

TEST_CASE("mpirun -np 2 gives the losses of one rank on the same global batch", "[pipeline][mpi]") {
  if (std::system("command -v mpirun >/dev/null 2>&1") != 0) {
    WARN("mpirun not found; skipped");
    return;
  }
  const std::string one = temp_run("pipeline_np1");
  const std::string two = temp_run("pipeline_np2");
  fs::remove_all(one);
  fs::remove_all(two);
  const std::string args = "--set 'run.stages=[\"sft\",\"grpo\"]' --set stages.sft.steps=6";
  REQUIRE(run(crucible_run(one, args)) == 0);
  std::string out;
  const int rc = run("OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout 300 mpirun --oversubscribe -np 2 " +
                         crucible_run(two, args), &out);
  INFO(out);
  REQUIRE(rc == 0);
  const auto l1 = losses(one, "sft"), l2 = losses(two, "sft");
  REQUIRE(l1.size() == 6);
  REQUIRE(l2.size() == 6);
  for (std::size_t i = 0; i < l1.size(); ++i) CHECK(l2[i] == Approx(l1[i]).epsilon(1e-5));
  // GRPO's gradient (the tiny teacher's rewards are all 0 here, so it is the KL and the
  // MoE balance terms): the same norm on 2 ranks as on one, each term counted once.
  const auto g1 = metric(one, "grpo", "grad_norm"), g2 = metric(two, "grpo", "grad_norm");
  REQUIRE(g1.size() == 2);
  REQUIRE(g2.size() == 2);
  for (std::size_t i = 0; i < g1.size(); ++i) CHECK(g2[i] == Approx(g1[i]).epsilon(1e-4));
}

// ZeRO-1 (run.zero = 1) end to end: SFT then GRPO (MoE teacher: router-bias rule) on 2
// ranks. Against the replicated 2-rank run the gradients reduce in the same order,
// so losses, grad norms and final weights are bit-identical here (they could differ
// only if a norm summed in parts rounded the float clip factor the other way); against
// one rank on the same global batch the reduction order differs (1e-5). A stage
// resumed from a ZeRO-1 checkpoint on 2 ranks continues bit for bit; the same
// checkpoint resumes on 1 rank too (moments re-sharded; reduction order differs).
TEST_CASE("mpirun -np 2 with run.zero = 1 matches the replicated run and one rank, and resumes", "[pipeline][mpi][zero]") {
  if (std::system("command -v mpirun >/dev/null 2>&1") != 0) {
    WARN("mpirun not found; skipped");
    return;
  }
  const std::string mpirun = "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout 300 mpirun --oversubscribe -np 2 ";
  const std::string rep = temp_run("zero_rep"), zero = temp_run("zero_on"), one = temp_run("zero_np1"),
                    res2 = temp_run("zero_res2"), res1 = temp_run("zero_res1");
  for (const auto& d : {rep, zero, one, res2, res1}) fs::remove_all(d);
  const std::string args = "--set 'run.stages=[\"sft\",\"grpo\"]' --set stages.sft.steps=8 --set run.checkpoint_every=4";
  std::string out;
  REQUIRE(run(mpirun + crucible_run(rep, args), &out) == 0);
  REQUIRE(run(mpirun + crucible_run(zero, args + " --set run.zero=1"), &out) == 0);
  INFO(out);
  CHECK_THAT(out, Catch::Contains("optimizer state") && Catch::Contains("per rank (ZeRO-1:"));
  REQUIRE(run(crucible_run(one, args + " --set run.zero=1"), &out) == 0);  // zero = 1 on one rank: replicated

  const auto l_rep = losses(rep, "sft"), l_zero = losses(zero, "sft"), l_one = losses(one, "sft");
  REQUIRE(l_zero.size() == 8);
  CHECK(l_zero == l_rep);
  CHECK(metric(zero, "sft", "grad_norm") == metric(rep, "sft", "grad_norm"));
  CHECK(metric(zero, "grpo", "grad_norm") == metric(rep, "grpo", "grad_norm"));
  CHECK(metric(zero, "grpo", "reward") == metric(rep, "grpo", "reward"));
  CHECK(same_weights(zero + "/checkpoints/model-teacher.h5", rep + "/checkpoints/model-teacher.h5"));
  REQUIRE(l_one.size() == 8);
  for (std::size_t i = 0; i < l_one.size(); ++i) CHECK(l_zero[i] == Approx(l_one[i]).epsilon(1e-5));

  // Resume the SFT stage from the step-4 checkpoint of the ZeRO-1 run: on 2 ranks
  // (bit for bit), and on 1 rank (works; last bits differ).
  for (const auto& d : {res2, res1}) {
    fs::create_directories(d + "/checkpoints");
    fs::copy_file(zero + "/checkpoints/sft-step000004.h5", d + "/checkpoints/sft-step000004.h5");
  }
  REQUIRE(run(mpirun + crucible_run(res2, args + " --set run.zero=1"), &out) == 0);
  CHECK_THAT(out, Catch::Contains("resuming stage sft at step 4"));
  const auto l_res2 = losses(res2, "sft");
  REQUIRE(l_res2.size() == 4);
  CHECK(l_res2 == std::vector<double>(l_zero.begin() + 4, l_zero.end()));
  CHECK(same_weights(res2 + "/checkpoints/model-teacher.h5", zero + "/checkpoints/model-teacher.h5"));
  REQUIRE(run(crucible_run(res1, args + " --set run.zero=1"), &out) == 0);
  CHECK_THAT(out, Catch::Contains("written by 2 rank(s) with run.zero = 1, resumed by 1"));
  const auto l_res1 = losses(res1, "sft");
  REQUIRE(l_res1.size() == 4);
  for (std::size_t i = 0; i < 4; ++i) CHECK(l_res1[i] == Approx(l_zero[4 + i]).epsilon(1e-5));
  for (const auto& d : {rep, zero, one, res2, res1}) fs::remove_all(d);
}
