// trainer/stages.h: one function per stage kind; each returns its report.json entry.
#pragma once

#include "core/json.h"
#include "trainer/pipeline.h"

namespace crucible::trainer {

class RunContext;

json::Value run_sft_stage(RunContext& ctx, const StageSpec& spec, std::int64_t index);      // pretrain, sft
json::Value run_grpo_stage(RunContext& ctx, const StageSpec& spec, std::int64_t index);     // grpo, sft_rl
json::Value run_rejection_stage(RunContext& ctx, const StageSpec& spec, std::int64_t index);
json::Value run_distill_stage(RunContext& ctx, const StageSpec& spec, std::int64_t index);
json::Value run_eval_stage(RunContext& ctx, const StageSpec& spec, std::int64_t index);
json::Value run_export_stage(RunContext& ctx, const StageSpec& spec, std::int64_t index);

}  // namespace crucible::trainer
