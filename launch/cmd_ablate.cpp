// launch/cmd_ablate.cpp: `crucible ablate CONFIG...`: run a set of configs (reward
// and objective ablations) and print one comparison table from their report.json.
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "core/json.h"
#include "core/log.h"
#include "dist/communicator.h"
#include "launch/args.h"
#include "launch/commands.h"
#include "launch/run_config.h"

namespace crucible::launch {

namespace {

const json::Value* find_path(const json::Value& v, std::initializer_list<const char*> keys) {
  const json::Value* cur = &v;
  for (const char* k : keys) {
    if (!cur || !cur->is_object()) return nullptr;
    cur = cur->find(k);
  }
  return cur;
}

double num(const json::Value* v) { return v && v->is_number() ? v->as_double() : std::nan(""); }

}  // namespace

int cmd_ablate(const CommandContext& ctx, const std::vector<std::string>& args) {
  std::vector<std::string> files, sets;
  bool report_only = false;
  std::string stage = "grpo";
  ArgParser p("ablate", "Run several configs (e.g. configs/ablations/*.toml) one after the other and print a\n"
                        "table of their held-out results, read from each run's report.json.");
  p.multi("--config", &files, "FILE", "a run config (repeat); positional FILEs work too")
      .multi("--set", &sets, "KEY=VALUE", "override applied to every config")
      .option("--stage", &stage, "NAME", "the stage whose before/after results are compared (default grpo)")
      .flag("--report-only", &report_only, "do not run: tabulate existing run directories");
  std::vector<std::string> rest;
  for (const std::string& a : args) (a.ends_with(".toml") ? files : rest).push_back(a);
  if (!p.parse(rest)) return 0;
  if (files.empty()) throw UsageError("crucible ablate: give at least one config file");
  std::vector<std::pair<std::string, std::string>> runs;  // name, out_dir
  for (const std::string& f : files) {
    LoadedRun run = load_run_config(f, sets);
    runs.emplace_back(std::filesystem::path(f).stem().string(), run.pipeline.out_dir);
    if (report_only) continue;
    configure_logging(run.log, ctx.mpi.active() ? ctx.mpi.rank() : -1, ctx.mpi.world());
    log_info("ablation ", runs.back().first, " -> ", run.pipeline.out_dir);
    run.pipeline.device = dist::rank_device(ctx.mpi, run.pipeline.device);
    auto comm = dist::make_communicator(ctx.mpi, run.pipeline.device, comm_config(run.pipeline));
    const int rc = trainer::run_pipeline(run.pipeline, *comm);
    if (rc != 0) return rc;
  }
  if (ctx.mpi.rank() != 0) return 0;
  std::printf("%-18s %9s %15s %9s %9s %9s %9s\n", "ablation", "n", "acc before", "acc after", "+/- se", "format",
              "length");
  for (const auto& [name, dir] : runs) {
    const std::string path = dir + "/report.json";
    if (!std::filesystem::exists(path)) {
      std::printf("%-18s (no report at %s)\n", name.c_str(), path.c_str());
      continue;
    }
    const json::Value r = json::parse_file(path);
    const json::Value* s = find_path(r, {"stages", stage.c_str()});
    std::printf("%-18s %9.0f %15.3f %9.3f %9.3f %9.3f %9.1f\n", name.c_str(), num(find_path(*s, {"after", "n"})),
                num(find_path(*s, {"before", "accuracy"})), num(find_path(*s, {"after", "accuracy"})),
                num(find_path(*s, {"after", "accuracy_se"})), num(find_path(*s, {"after", "format_rate"})),
                num(find_path(*s, {"after", "mean_length"})));
  }
  return 0;
}

}  // namespace crucible::launch
