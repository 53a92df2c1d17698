// trainer/pipeline.cpp: stage order, skip-done, resume, the report.
#include "trainer/pipeline.h"

#include <chrono>
#include <set>

#include "core/log.h"
#include "trainer/run_context.h"
#include "trainer/stages.h"

namespace crucible::trainer {

const char* stage_kind_name(StageKind k) {
  switch (k) {
    case StageKind::Pretrain: return "pretrain";
    case StageKind::Sft: return "sft";
    case StageKind::Grpo: return "grpo";
    case StageKind::RejectionSample: return "rejection_sample";
    case StageKind::SftRl: return "sft_rl";
    case StageKind::Distill: return "distill";
    case StageKind::Eval: return "eval";
    case StageKind::Export: return "export";
  }
  return "?";
}

void PipelineConfig::validate() const {
  CRUCIBLE_USER_CHECK(!out_dir.empty(), "run.out_dir must not be empty");
  CRUCIBLE_USER_CHECK(keep_last >= 1, "run.keep_last must be >= 1");
  CRUCIBLE_USER_CHECK(checkpoint_every >= 0, "run.checkpoint_every must be >= 0");
  CRUCIBLE_USER_CHECK(!stages.empty(), "run.stages lists no stage");
  task.validate();
  std::set<std::string> slots, names;
  for (const ModelSlot& m : models) {
    CRUCIBLE_USER_CHECK(slots.insert(m.name).second, "model '", m.name, "' is defined twice");
    m.config.validate();
  }
  for (const StageSpec& s : stages) {
    CRUCIBLE_USER_CHECK(names.insert(s.name).second, "stage '", s.name, "' appears twice in run.stages");
    auto need = [&](const std::string& slot) {
      CRUCIBLE_USER_CHECK(slots.count(slot), "stage '", s.name, "' uses model '", slot,
                          "', which [models] does not define");
    };
    std::visit([&](const auto& b) {
      using T = std::decay_t<decltype(b)>;
      if constexpr (std::is_same_v<T, EvalStageConfig> || std::is_same_v<T, ExportStageConfig>) {
        for (const auto& m : b.models) need(m);
      } else if constexpr (std::is_same_v<T, DistillStageConfig>) {
        need(b.teacher);
        need(b.model);
        CRUCIBLE_USER_CHECK(b.kd_weight >= 0 && b.kd_weight <= 1, "stage '", s.name, "': kd_weight must be in [0, 1], got ",
                            b.kd_weight);
        CRUCIBLE_USER_CHECK(b.kd_temperature > 0, "stage '", s.name, "': kd_temperature must be > 0, got ",
                            b.kd_temperature);
        if (b.kd_weight > 0) {
          // Logit KD compares the two heads token by token: one vocabulary. (A slot whose
          // config comes from its init checkpoint is checked again when the stage starts.)
          const ModelConfig* t = nullptr;
          const ModelConfig* m = nullptr;
          for (const ModelSlot& slot : models) {
            if (slot.name == b.teacher) t = &slot.config;
            if (slot.name == b.model) m = &slot.config;
          }
          CRUCIBLE_USER_CHECK(!t || !m || t->vocab_size <= 0 || m->vocab_size <= 0 || t->vocab_size == m->vocab_size,
                              "stage '", s.name, "': kd_weight > 0 needs one vocabulary, but teacher '", b.teacher,
                              "' has vocab_size ", t ? t->vocab_size : 0, " and student '", b.model, "' ",
                              m ? m->vocab_size : 0, " (set kd_weight = 0 to distill by SFT on traces only)");
        }
      } else {
        need(b.model);
      }
    }, s.body);
  }
}

int run_pipeline(const PipelineConfig& config, dist::Communicator& comm) {
  config.validate();
  RunContext ctx(config, comm);
  const auto t0 = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < config.stages.size(); ++i) {
    const StageSpec& s = config.stages[i];
    if (ctx.stage_done(s.name)) {
      log_info("stage ", s.name, " (", stage_kind_name(s.kind), ") already done; skipping");
      continue;
    }
    log_info("stage ", s.name, " (", stage_kind_name(s.kind), ")");
    const auto idx = static_cast<std::int64_t>(i);
    json::Value summary;
    switch (s.kind) {
      case StageKind::Pretrain:
      case StageKind::Sft: summary = run_sft_stage(ctx, s, idx); break;
      case StageKind::Grpo:
      case StageKind::SftRl: summary = run_grpo_stage(ctx, s, idx); break;
      case StageKind::RejectionSample: summary = run_rejection_stage(ctx, s, idx); break;
      case StageKind::Distill: summary = run_distill_stage(ctx, s, idx); break;
      case StageKind::Eval: summary = run_eval_stage(ctx, s, idx); break;
      case StageKind::Export: summary = run_export_stage(ctx, s, idx); break;
    }
    ctx.finish_stage(s.name, std::move(summary));
  }
  log_info("run finished in ", format_duration(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()),
           "; report: ", ctx.path("report.json"));
  return 0;
}

}  // namespace crucible::trainer
