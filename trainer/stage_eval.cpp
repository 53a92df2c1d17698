// trainer/stage_eval.cpp: held-out evaluation of several models.
#include <chrono>
#include <filesystem>

#include "core/log.h"
#include "trainer/run_context.h"
#include "trainer/stages.h"

namespace crucible::trainer {

json::Value run_eval_stage(RunContext& ctx, const StageSpec& spec, std::int64_t index) {
  const auto& c = std::get<EvalStageConfig>(spec.body);
  const auto t0 = std::chrono::steady_clock::now();
  json::Value summary = json::Value::object();
  summary.set("kind", "eval");
  json::Value models = json::Value::object();
  for (const std::string& slot : c.models)
    models.set(slot, ctx.evaluate_slot(slot, c.eval, ctx.config().seed + 6000 + static_cast<std::uint64_t>(index)));
  summary.set("models", models);
  summary.set("seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return summary;
}

}  // namespace crucible::trainer
