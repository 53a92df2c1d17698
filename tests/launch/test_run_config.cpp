// Run configs: the embedded demo, base overlays (ablations), stage tables, errors
// that name the right file, line and key.
#include <filesystem>
#include <fstream>
#include <set>

#include "launch/run_config.h"
#include "tests/catch.h"

using namespace crucible;
using namespace crucible::launch;
namespace fs = std::filesystem;

namespace {
std::string write(const std::string& name, const std::string& text) {
  const fs::path dir = fs::temp_directory_path() / "crucible_run_config";
  fs::create_directories(dir);
  std::ofstream(dir / name) << text;
  return (dir / name).string();
}
}  // namespace

TEST_CASE("the embedded demo lists every stage kind over a teacher and two students", "[run_config]") {
  const LoadedRun run = load_run_config("demo", {});
  const auto& p = run.pipeline;
  REQUIRE(p.models.size() == 3);
  std::set<trainer::StageKind> kinds;
  for (const auto& s : p.stages) kinds.insert(s.kind);
  for (auto k : {trainer::StageKind::Sft, trainer::StageKind::Grpo, trainer::StageKind::RejectionSample,
                 trainer::StageKind::SftRl, trainer::StageKind::Distill, trainer::StageKind::Eval,
                 trainer::StageKind::Export})
    CHECK(kinds.count(k));
  // The resolved TOML reads back to the same pipeline.
  const std::string again = write("resolved.toml", run.resolved_toml);
  const LoadedRun back = load_run_config(again, {});
  CHECK(back.resolved_toml == run.resolved_toml);
}

TEST_CASE("ablation overlays change only what they say", "[run_config]") {
  const std::string root = std::string(CRUCIBLE_SOURCE_DIR) + "/configs/ablations/";
  const LoadedRun dapo = load_run_config(root + "dapo.toml", {});
  const LoadedRun dr = load_run_config(root + "dr_grpo.toml", {});
  REQUIRE(dapo.pipeline.stages.size() == 2);
  const auto& g1 = std::get<trainer::GrpoStageConfig>(dapo.pipeline.stages[1].body).grpo;
  const auto& g2 = std::get<trainer::GrpoStageConfig>(dr.pipeline.stages[1].body).grpo;
  CHECK(g1.dynamic_sampling);
  CHECK(g1.loss.clip_eps_high == 0.28);
  CHECK(g1.loss.aggregation == trainer::LossAggregation::TokenMean);
  CHECK_FALSE(g2.std_normalize);
  CHECK(g2.loss.aggregation == trainer::LossAggregation::ConstantNormalized);
  CHECK(g1.prompts_per_step == g2.prompts_per_step);  // from the base
  CHECK(dapo.pipeline.out_dir == "runs/ablations/dapo");
}

TEST_CASE("run config errors name the file, line and key", "[run_config]") {
  const std::string base = write("base.toml", "[run]\nstages = [\"s\"]\n[models.m]\npreset = \"tiny-qwen2\"\n"
                                              "[stages.s]\nkind = \"sft\"\nmodel = \"m\"\nsteps = 1\n");
  const std::string bad_key = write("bad_key.toml", "base = \"base.toml\"\n[stages.s]\nstpes = 3\n");
  REQUIRE_THROWS_WITH(load_run_config(bad_key, {}), Catch::Contains(bad_key + ":3") && Catch::Contains("stages.s.stpes") &&
                                                        Catch::Contains("steps"));
  const std::string bad_kind = write("bad_kind.toml", "base = \"base.toml\"\n[stages.s]\nkind = \"sfft\"\n");
  REQUIRE_THROWS_WITH(load_run_config(bad_kind, {}), Catch::Contains("stages.s.kind") && Catch::Contains("sft"));
  const std::string missing = write("missing.toml", "base = \"base.toml\"\n[run]\nstages = [\"s\", \"t\"]\n");
  REQUIRE_THROWS_WITH(load_run_config(missing, {}), Catch::Contains("[stages.t]"));
  const std::string bad_model = write("bad_model.toml", "base = \"base.toml\"\n[stages.s]\nmodel = \"nope\"\n");
  REQUIRE_THROWS_WITH(load_run_config(bad_model, {}), Catch::Contains("nope"));
  REQUIRE_THROWS_WITH(load_run_config(base, {"stages.s.steps=-1"}), Catch::Contains("--set stages.s.steps=-1"));
}

TEST_CASE("run.device and run.deterministic reach the pipeline and the communicator", "[run_config]") {
  const LoadedRun def = load_run_config("demo", {});
  CHECK(def.pipeline.device == Device::cpu());
  CHECK(comm_config(def.pipeline).reduction == dist::ReductionMode::Deterministic);
  const LoadedRun native = load_run_config("demo", {"run.deterministic=false", "run.device=cuda:1"});
  CHECK(native.pipeline.device == Device::cuda(1));
  CHECK(comm_config(native.pipeline).reduction == dist::ReductionMode::Native);
  REQUIRE_THROWS_WITH(load_run_config("demo", {"run.device=tpu"}), Catch::Contains("run.device"));
}

TEST_CASE("run.kv_cache reaches the pipeline: auto leaves the generator's default", "[run_config]") {
  CHECK_FALSE(load_run_config("demo", {}).pipeline.kv_cache.has_value());
  CHECK(load_run_config("demo", {"run.kv_cache=bf16"}).pipeline.kv_cache == DType::BF16);
  CHECK(load_run_config("demo", {"run.kv_cache=f32"}).pipeline.kv_cache == DType::F32);
  REQUIRE_THROWS_WITH(load_run_config("demo", {"run.kv_cache=fp16"}),
                      Catch::Contains("run.kv_cache") && Catch::Contains("bf16") &&
                          Catch::Contains("--set run.kv_cache=fp16"));
}
