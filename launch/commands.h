// launch/commands.h: the subcommands of `crucible` (one file each).
#pragma once

#include <string>
#include <vector>

#include "dist/mpi_env.h"

namespace crucible::launch {

struct CommandContext {
  const dist::MpiEnv& mpi;
};

int cmd_inspect(const CommandContext& ctx, const std::vector<std::string>& args);
int cmd_config(const CommandContext& ctx, const std::vector<std::string>& args);
int cmd_info(const CommandContext& ctx, const std::vector<std::string>& args);
int cmd_import(const CommandContext& ctx, const std::vector<std::string>& args);
int cmd_logprobs(const CommandContext& ctx, const std::vector<std::string>& args);
int cmd_data(const CommandContext& ctx, const std::vector<std::string>& args);
int cmd_run(const CommandContext& ctx, const std::vector<std::string>& args);
int cmd_ablate(const CommandContext& ctx, const std::vector<std::string>& args);
int cmd_tokenizer(const CommandContext& ctx, const std::vector<std::string>& args);
int cmd_score(const CommandContext& ctx, const std::vector<std::string>& args);
int cmd_generate(const CommandContext& ctx, const std::vector<std::string>& args);

}  // namespace crucible::launch
