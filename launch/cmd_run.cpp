// launch/cmd_run.cpp: `crucible run [CONFIG.toml] [--set k=v]...`: the pipeline.
#include <cstdio>

#include "core/log.h"
#include "dist/communicator.h"
#include "launch/args.h"
#include "launch/commands.h"
#include "launch/run_config.h"

namespace crucible::launch {

int cmd_run(const CommandContext& ctx, const std::vector<std::string>& args) {
  std::string file = "demo";
  std::vector<std::string> sets;
  bool print_config = false;
  ArgParser p("run", "Run the stages a config lists (SFT, GRPO, rejection sampling, SFT+RL, distillation,\n"
                     "eval, export), resuming a run directory that already holds some of them.");
  p.positional("CONFIG", &file, "run config (TOML); default: the embedded configs/demo.toml", false)
      .multi("--set", &sets, "KEY=VALUE", "override any key, e.g. --set stages.grpo.steps=10")
      .flag("--print-config", &print_config, "print the resolved config and exit")
      .epilog("The run directory ([run] out_dir) gets config.toml, metrics.jsonl, report.json,\n"
              "checkpoints/ and export/. Under mpirun, prompts and batches are sharded over ranks.");
  if (!p.parse(args)) return 0;
  LoadedRun run = load_run_config(file, sets);
  configure_logging(run.log, ctx.mpi.active() ? ctx.mpi.rank() : -1, ctx.mpi.world());
  if (print_config) {
    if (ctx.mpi.rank() == 0) std::fputs(run.resolved_toml.c_str(), stdout);
    return 0;
  }
  // Several ranks on CUDA: each its own GPU, and NCCL between them (dist/mpi_env.h).
  run.pipeline.device = dist::rank_device(ctx.mpi, run.pipeline.device);
  std::unique_ptr<dist::Communicator> comm = dist::make_communicator(ctx.mpi, run.pipeline.device, comm_config(run.pipeline));
  return trainer::run_pipeline(run.pipeline, *comm);
}

}  // namespace crucible::launch
