// The `crucible` command as a user meets it: exit codes and messages.
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "core/device_memory.h"
#include "core/json.h"
#include "tests/catch.h"

namespace fs = std::filesystem;

namespace {

struct Result {
  int code;
  std::string out;
};

// Runs crucible with the given arguments (stdout + stderr captured together).
Result run_crucible(const std::string& args, bool merge_stderr = true) {
  std::string cmd = std::string(CRUCIBLE_BINARY) + " " + args + (merge_stderr ? " 2>&1" : " 2>/dev/null");
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  std::string out;
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

std::string write_temp(const std::string& name, const std::string& text) {
  fs::path dir = fs::temp_directory_path() / "crucible_test_cli";
  fs::create_directories(dir);
  fs::path p = dir / name;
  std::ofstream(p) << text;
  return p.string();
}

const std::string kPresets = std::string(CRUCIBLE_SOURCE_DIR) + "/configs/models/";

}  // namespace

TEST_CASE("inspect --json prints the DeepSeek-V3 figures", "[cli]") {
  Result r = run_crucible("inspect " + kPresets + "deepseek-v3.toml --json", false);
  REQUIRE(r.code == 0);
  auto j = crucible::json::parse(r.out, "inspect output");
  REQUIRE(j.at("arch").as_string() == "deepseek_v3");
  REQUIRE(j.at("layers").as_int64() == 61);
  REQUIRE(j.at("kv_cache_bytes_per_token").as_int64() == 70272);
  REQUIRE(std::abs(j.at("params_total").as_double() / 671.03e9 - 1) < 0.005);
  REQUIRE(std::abs(j.at("params_active").as_double() / 37.55e9 - 1) < 0.005);
}

TEST_CASE("inspect without --json prints the per-layer shape table", "[cli]") {
  Result r = run_crucible("inspect " + kPresets + "deepseek-v3.toml");
  REQUIRE(r.code == 0);
  REQUIRE_THAT(r.out, Catch::Contains("layers 0-2 (3 x dense)") && Catch::Contains("layers 3-60 (58 x moe)") &&
                          Catch::Contains("mlp.experts.{e}.gate_proj.weight") &&
                          Catch::Contains("[2048, 7168]") && Catch::Contains("x256") &&
                          Catch::Contains("self_attn.kv_b_proj.weight") && Catch::Contains("[32768, 512]") &&
                          Catch::Contains("layers 61-61 (1 x mtp)"));
}

TEST_CASE("inspect reads a Hugging Face config.json too", "[cli]") {
  const std::string path = write_temp("config.json", R"({
    "model_type": "llama", "vocab_size": 128256, "hidden_size": 4096, "num_hidden_layers": 32,
    "num_attention_heads": 32, "num_key_value_heads": 8, "intermediate_size": 14336,
    "rms_norm_eps": 1e-5, "rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0,
    "factor": 8.0, "original_max_position_embeddings": 8192, "low_freq_factor": 1.0,
    "high_freq_factor": 4.0}, "tie_word_embeddings": false})");
  Result r = run_crucible("inspect " + path + " --json", false);
  REQUIRE(r.code == 0);
  auto j = crucible::json::parse(r.out, "inspect output");
  REQUIRE(j.at("params_total").as_int64() == 8030261248);
}

TEST_CASE("config errors name the file, the line and the key", "[cli]") {
  SECTION("unknown key, with a suggestion") {
    const std::string path = write_temp("unknown.toml", "[model]\narch = \"llama\"\nhiden_size = 64\n");
    Result r = run_crucible("config " + path);
    REQUIRE(r.code != 0);
    REQUIRE_THAT(r.out, Catch::Contains(path + ":3") && Catch::Contains("model.hiden_size") &&
                            Catch::Contains("hidden_size"));
  }
  SECTION("wrong type") {
    const std::string path = write_temp("type.toml", "[model]\narch = \"llama\"\n\nnum_hidden_layers = \"four\"\n");
    Result r = run_crucible("config " + path);
    REQUIRE(r.code != 0);
    REQUIRE_THAT(r.out, Catch::Contains(path + ":4") && Catch::Contains("model.num_hidden_layers") &&
                            Catch::Contains("integer"));
  }
  SECTION("out of range") {
    const std::string path = write_temp("range.toml", "[run]\nseed = 1\n[model]\nrms_norm_eps = -0.5\n");
    Result r = run_crucible("config " + path);
    REQUIRE(r.code != 0);
    REQUIRE_THAT(r.out, Catch::Contains(path + ":4") && Catch::Contains("model.rms_norm_eps") &&
                            Catch::Contains("must be > 0"));
  }
  SECTION("unknown top-level table") {
    const std::string path = write_temp("top.toml", "[modle]\narch = \"llama\"\n");
    Result r = run_crucible("config " + path);
    REQUIRE(r.code != 0);
    REQUIRE_THAT(r.out, Catch::Contains(path + ":1") && Catch::Contains("modle") && Catch::Contains("model"));
  }
  SECTION("an inconsistent model is rejected after the keys parse") {
    Result r = run_crucible("inspect " + kPresets + "tiny-llama.toml --set model.num_key_value_heads=3");
    REQUIRE(r.code != 0);
    REQUIRE_THAT(r.out, Catch::Contains("num_key_value_heads"));
  }
}

TEST_CASE("config prints the resolved TOML, with --set applied, and it reads back", "[cli]") {
  Result r = run_crucible("config " + kPresets + "tiny-deepseek-v3.toml --set model.hidden_size=256 --set run.seed=7", false);
  REQUIRE(r.code == 0);
  REQUIRE_THAT(r.out, Catch::Contains("hidden_size = 256") && Catch::Contains("seed = 7") &&
                          Catch::Contains("[model.rope]"));
  const std::string again = write_temp("resolved.toml", r.out);
  Result r2 = run_crucible("config " + again, false);
  REQUIRE(r2.code == 0);
  // The resolved document is a fixed point (apart from the comment naming its source).
  REQUIRE(r2.out.substr(r2.out.find('\n')) == r.out.substr(r.out.find('\n')));
  Result bad = run_crucible("config " + kPresets + "tiny-deepseek-v3.toml --set model.hidden_size=abc");
  REQUIRE(bad.code != 0);
  REQUIRE_THAT(bad.out, Catch::Contains("--set model.hidden_size=abc"));
}

TEST_CASE("config resolves a pipeline config as run --print-config does", "[cli]") {
  const std::string cfg = std::string(CRUCIBLE_SOURCE_DIR) + "/configs/h100.toml";
  Result r = run_crucible("config " + cfg + " --set stages.grpo.steps=7", false);
  REQUIRE(r.code == 0);
  REQUIRE_THAT(r.out, Catch::Contains("[stages.grpo]") && Catch::Contains("steps = 7") &&
                          Catch::Contains("name = \"h100-teacher\""));
  Result same = run_crucible("run " + cfg + " --set stages.grpo.steps=7 --print-config", false);
  REQUIRE(same.code == 0);
  REQUIRE(same.out == r.out);
  Result bad = run_crucible("config " + cfg + " --set stages.sft.steps=-1");
  REQUIRE(bad.code != 0);
  REQUIRE_THAT(bad.out, Catch::Contains("stages.sft.steps") && Catch::Contains(">= 0"));
}

TEST_CASE("help, version and usage errors", "[cli]") {
  REQUIRE(run_crucible("--version").code == 0);
  REQUIRE_THAT(run_crucible("--version").out, Catch::Contains("crucible 0."));
  Result top = run_crucible("--help");
  REQUIRE(top.code == 0);
  for (const char* cmd : {"inspect", "config", "info"}) {
    REQUIRE_THAT(top.out, Catch::Contains(cmd));
    Result h = run_crucible(std::string(cmd) + " --help");
    REQUIRE(h.code == 0);
    REQUIRE_THAT(h.out, Catch::Contains(std::string("usage: crucible ") + cmd));
  }
  Result typo = run_crucible("inspekt x");
  REQUIRE(typo.code == 2);
  REQUIRE_THAT(typo.out, Catch::Contains("did you mean 'inspect'"));
  Result missing = run_crucible("inspect");
  REQUIRE(missing.code == 2);
  REQUIRE_THAT(missing.out, Catch::Contains("missing FILE"));
  Result no_file = run_crucible("inspect /nonexistent/model.toml");
  REQUIRE(no_file.code == 1);
  REQUIRE_THAT(no_file.out, Catch::Contains("/nonexistent/model.toml"));
}

TEST_CASE("info reports a single process without mpirun", "[cli]") {
  Result r = run_crucible("info --json", false);
  REQUIRE(r.code == 0);
  auto j = crucible::json::parse(r.out, "info output");
  REQUIRE(j.at("world").as_int64() == 1);
  REQUIRE(j.at("mpi").as_bool() == false);
}

TEST_CASE("run.device = cuda without a usable GPU fails before writing anything", "[cli]") {
  // Without a GPU, a CPU-only build says how to rebuild, a CUDA build that no device is
  // visible. Either way the run directory is never created.
  if (crucible::cuda_device_count() > 0) {
    WARN("a CUDA device is visible; skipped");
    return;
  }
  const fs::path out = fs::temp_directory_path() / "crucible_test_cli" / "cuda_run";
  fs::remove_all(out);
  const Result r = run_crucible("run --set run.device=cuda --set run.out_dir=" + out.string());
  INFO(r.out);
  CHECK(r.code != 0);
  CHECK(r.out.find("run.device is cuda:0") != std::string::npos);
  CHECK((r.out.find("built without CUDA") != std::string::npos ||
         r.out.find("no visible CUDA device") != std::string::npos));
  CHECK_FALSE(fs::exists(out));
}

TEST_CASE("generate --kv-cache: bf16 keeps the greedy tokens here; a bad value is a usage error", "[cli]") {
  const std::string base = "generate --checkpoint " + std::string(CRUCIBLE_SOURCE_DIR) +
                           "/tests/data/models/llama3 --prompt-tokens 1,2,3 --max-tokens 5 --temperature 0 --json";
  const Result f32 = run_crucible(base + " --kv-cache f32", false), bf16 = run_crucible(base + " --kv-cache bf16", false);
  REQUIRE(f32.code == 0);
  REQUIRE(bf16.code == 0);
  namespace json = crucible::json;
  const json::Value a = json::parse(f32.out, "generate output"), b = json::parse(bf16.out, "generate output");
  CHECK(json::dump(a.as_array().at(0).at("tokens")) == json::dump(b.as_array().at(0).at("tokens")));
  CHECK(f32.out != bf16.out);  // the log-probs move with the rounded cache
  const Result bad = run_crucible(base + " --kv-cache fp16");
  CHECK(bad.code == 2);
  CHECK(bad.out.find("--kv-cache: 'fp16' is not one of auto, f32, bf16") != std::string::npos);
}
