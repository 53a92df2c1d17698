// launch/cmd_config.cpp: `crucible config FILE [--set k=v]...`: validate, print resolved TOML.
// A pipeline config ([task], [models], [stages]: what `crucible run` takes) resolves as
// `crucible run --print-config` does; otherwise FILE is a single-model config
// ([run], [log], [model]).
#include <toml++/toml.h>

#include <cstdio>

#include "core/error.h"
#include "launch/args.h"
#include "launch/commands.h"
#include "launch/model_config_fields.h"
#include "launch/run_config.h"
#include "launch/run_options.h"

namespace crucible::launch {

int cmd_config(const CommandContext& ctx, const std::vector<std::string>& args) {
  std::string file;
  std::vector<std::string> sets;
  ArgParser p("config", "Validate a config (every key, type and range) and print it back resolved, as TOML:\n"
                        "a pipeline config ([task], [models], [stages], as `crucible run` takes) or a\n"
                        "single-model config ([run], [log], [model]).");
  p.positional("FILE", &file, "config (TOML)")
      .multi("--set", &sets, "KEY=VALUE", "override any key, e.g. --set model.hidden_size=256")
      .epilog("Unknown keys, wrong types and out-of-range values are errors naming file, line and key.");
  if (!p.parse(args)) return 0;
  TomlSource doc = parse_toml_file(file);
  if (doc.table->contains("stages") || doc.table->contains("models") || doc.table->contains("task")) {
    const LoadedRun run = load_run_config(file, sets);
    if (ctx.mpi.rank() == 0) std::fputs(run.resolved_toml.c_str(), stdout);
    return 0;
  }
  for (const std::string& s : sets) apply_override(doc, s);
  static constexpr std::string_view kTop[] = {"run", "log", "model"};
  check_known_keys(doc, "", kTop);
  RunOptions run;
  LogOptions log;
  ModelConfig model;
  read_toml(doc, "run", [&](Fields& f) { describe(f, run); });
  read_toml(doc, "log", [&](Fields& f) { describe(f, log); });
  read_toml(doc, "model", [&](Fields& f) { describe(f, model); });
  run.validate();
  try {
    model.validate();
  } catch (const Error& e) {
    CRUCIBLE_USER_CHECK(false, file, ": [model]: ", e.what());
  }
  if (ctx.mpi.rank() != 0) return 0;
  std::string out = "# resolved from " + file + "\n";
  out += write_toml("run", [&](Fields& f) { describe(f, run); });
  out += "\n" + write_toml("log", [&](Fields& f) { describe(f, log); });
  out += "\n" + write_toml("model", [&](Fields& f) { describe(f, model); });
  std::fputs(out.c_str(), stdout);
  return 0;
}

}  // namespace crucible::launch
