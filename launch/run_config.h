// launch/run_config.h: a run config (TOML) -> trainer::PipelineConfig.
//
//   [run]      out_dir, seed, stages = ["sft", "grpo", ...], checkpoint_every, keep_last
//   [log]      level, all_ranks
//   [task]     task, difficulty, tokenizer, chat_format, think_prefill, seed
//   [models.<slot>]  preset = "configs/models/x.toml" (relative to the config file),
//              or init = checkpoint / HF directory; seed; plus any [model] key to override
//   [stages.<name>]  kind = sft | pretrain | grpo | rejection_sample | sft_rl |
//              distill | eval | export, and that kind's keys ([stages.<name>.optimizer],
//              [stages.<name>.eval] sub-tables)
// Every key is validated (unknown keys with did-you-mean, types, ranges), errors name
// file, line and key, and the resolved config prints back as TOML.
#pragma once

#include <string>
#include <vector>

#include "core/log.h"
#include "dist/communicator.h"
#include "trainer/pipeline.h"

namespace crucible::launch {

struct LoadedRun {
  trainer::PipelineConfig pipeline;
  LogOptions log;
  std::string resolved_toml;
};

// `path` may be "demo" for the embedded configs/demo.toml.
LoadedRun load_run_config(const std::string& path, const std::vector<std::string>& overrides);

// The communicator settings a run asks for: run.deterministic picks the rank-ordered
// reduction (default) or the backend's native one.
dist::CommunicatorConfig comm_config(const trainer::PipelineConfig& p);

}  // namespace crucible::launch
