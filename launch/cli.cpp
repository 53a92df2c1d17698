// launch/cli.cpp: the `crucible` command: global options, subcommand table, errors.
//
// Every subcommand here works fully; later stages add theirs to kCommands. Errors a
// user can meet print as one "error: ..." line and exit 1 (usage errors exit 2);
// under mpirun the failing rank's message is printed and MPI_Abort ends the job.
#include "launch/cli.h"

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/log.h"
#include "dist/mpi_env.h"
#include "launch/args.h"
#include "launch/commands.h"
#include "launch/config_fields.h"

#ifndef CRUCIBLE_VERSION
#define CRUCIBLE_VERSION "0.0.0"
#endif

namespace crucible::launch {

namespace {

struct Command {
  const char* name;
  const char* summary;
  int (*run)(const CommandContext&, const std::vector<std::string>&);
};

constexpr Command kCommands[] = {
    {"run", "run the R1 pipeline a config describes (default: the embedded demo)", cmd_run},
    {"ablate", "run a set of configs (reward ablations) and compare their held-out results", cmd_ablate},
    {"inspect", "print a model's sizes and per-layer shapes (TOML preset or HF config)", cmd_inspect},
    {"config", "validate a run config and print it back resolved, as TOML", cmd_config},
    {"import", "convert a Hugging Face model directory into a crucible checkpoint", cmd_import},
    {"logprobs", "score tokens: next-token log-probs and top-k at every position", cmd_logprobs},
    {"generate", "sample completions with a KV cache", cmd_generate},
    {"tokenizer", "encode or decode text with a tokenizer.json (or the byte tokenizer)", cmd_tokenizer},
    {"data", "make and check datasets: verifiable tasks (arithmetic, countdown), JSONL checks", cmd_data},
    {"score", "score completions offline with weighted rule rewards (reward ablations)", cmd_score},
    {"info", "print the build, the devices and the MPI ranks", cmd_info},
};

std::string top_help() {
  std::string s =
      "crucible " CRUCIBLE_VERSION ": the DeepSeek-R1 recipe end to end (SFT, GRPO, rejection\n"
      "sampling, SFT+RL, distillation, export) on CPU and CUDA.\n\n"
      "usage: crucible [--log-level L] [--all-ranks] COMMAND [ARGS]\n"
      "       mpirun -np N crucible COMMAND [ARGS]\n\ncommands:\n";
  char buf[256];
  for (const Command& c : kCommands) {
    std::snprintf(buf, sizeof buf, "  %-10s %s\n", c.name, c.summary);
    s += buf;
  }
  s += "\nglobal options:\n"
       "  --log-level L   debug, info, warn or error (default info)\n"
       "  --all-ranks     every MPI rank logs (default: rank 0 only)\n"
       "  --version       print the version\n"
       "  -h, --help      this help; 'crucible COMMAND --help' for a command\n";
  return s;
}

}  // namespace

int run_cli(int argc, char** argv) {
  std::unique_ptr<dist::MpiEnv> mpi;
  try {
    mpi = std::make_unique<dist::MpiEnv>(&argc, &argv);
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  std::vector<std::string> args(argv + 1, argv + argc);
  LogOptions log_opts;
  std::size_t i = 0;
  try {
    for (; i < args.size() && args[i].rfind("-", 0) == 0; ++i) {
      const std::string& a = args[i];
      if (a == "--version") {
        if (mpi->rank() == 0) std::printf("crucible %s\n", CRUCIBLE_VERSION);
        return 0;
      }
      if (a == "-h" || a == "--help") {
        if (mpi->rank() == 0) std::fputs(top_help().c_str(), stdout);
        return 0;
      }
      if (a == "--all-ranks") {
        log_opts.all_ranks = true;
        continue;
      }
      if (a == "--log-level" && i + 1 < args.size()) {
        const std::string& l = args[++i];
        if (l == "debug") log_opts.level = LogLevel::Debug;
        else if (l == "info") log_opts.level = LogLevel::Info;
        else if (l == "warn") log_opts.level = LogLevel::Warn;
        else if (l == "error") log_opts.level = LogLevel::Error;
        else throw UsageError("--log-level must be debug, info, warn or error; got '" + l + "'");
        continue;
      }
      throw UsageError("unknown global option '" + a + "'; see 'crucible --help'");
    }
    configure_logging(log_opts, mpi->active() ? mpi->rank() : -1, mpi->world());
    if (i == args.size()) {
      if (mpi->rank() == 0) std::fputs(top_help().c_str(), stdout);
      return 2;
    }
    const std::string name = args[i];
    const std::vector<std::string> rest(args.begin() + static_cast<std::ptrdiff_t>(i) + 1, args.end());
    for (const Command& c : kCommands) {
      if (name == c.name) {
        CommandContext ctx{*mpi};
        return c.run(ctx, rest);
      }
    }
    std::string best;
    std::size_t best_d = 3;
    for (const Command& c : kCommands)
      if (std::size_t d = edit_distance(name, c.name); d < best_d) best_d = d, best = c.name;
    throw UsageError("unknown command '" + name + "'" +
                     (best.empty() ? "" : " (did you mean '" + best + "'?)") +
                     "; see 'crucible --help'");
  } catch (const UsageError& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    if (mpi->active() && mpi->world() > 1) mpi->abort(2);
    return 2;
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    if (mpi->active() && mpi->world() > 1) mpi->abort(1);
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: internal: %s\n", e.what());
    if (mpi->active() && mpi->world() > 1) mpi->abort(1);
    return 1;
  }
}

}  // namespace crucible::launch
