// trainer/pipeline.h: the R1 recipe as a list of stages over named models.
//
// A run holds named model slots (the teacher, the students), a verifiable task seen
// through a tokenizer and chat format, and an ordered list of stages, each with its
// own config struct. Stages read and update slots; every completed stage stores the
// slots it changed (checkpoints/model-<slot>.h5) and its summary in report.json, so
// a restarted run skips finished stages and resumes the running one from its last
// good checkpoint. Randomness is keyed by (seed, stage, step), never by a running
// stream, so a resumed run draws exactly what the uninterrupted one drew.
// Reference: DESIGN.md §4, reference/r1_recipe.md.
#pragma once

#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "dist/communicator.h"
#include "model/model_config.h"
#include "trainer/evaluate.h"
#include "trainer/grpo.h"
#include "trainer/optimizer.h"
#include "trainer/task_env.h"

namespace crucible::trainer {

enum class StageKind : std::uint8_t { Pretrain, Sft, Grpo, RejectionSample, SftRl, Distill, Eval, Export };
const char* stage_kind_name(StageKind k);

struct SftStageConfig {  // also `pretrain` (loss on every token)
  std::string model = "teacher";
  std::int64_t steps = 100;
  std::int64_t batch = 16;          // sequences per step (global)
  std::int64_t max_tokens = 2048;   // tokens per packed forward
  std::string data;                 // "" = the task's programmatic CoT; else a JSONL file or a stage name
  OptimizerConfig optimizer;
  EvalConfig eval;
  bool eval_before = true;
};

struct GrpoStageConfig {
  std::string model = "teacher";
  GrpoConfig grpo;
  OptimizerConfig optimizer;
  EvalConfig eval;
  bool eval_before = true;
  // sft_rl only: the SFT data (a rejection_sample stage's name or a JSONL path),
  // examples per step and the weight of the SFT term.
  std::string sft_data;
  std::int64_t sft_batch = 8;
  double sft_weight = 0.5;
};

struct RejectionStageConfig {
  std::string model = "teacher";
  std::int64_t prompts = 64;
  std::int64_t samples_per_prompt = 4;
  double temperature = 0.8;
  std::int64_t max_new_tokens = 128;
  bool require_correct = true;
  bool require_format = true;
  double min_language_consistency = 0.0;  // 0 = no language filter
  std::int64_t min_tokens = 1, max_tokens = 1 << 20;
  std::int64_t first_prompt = 100000;     // train-split indices used (apart from SFT's)
};

struct DistillStageConfig {
  std::string teacher = "teacher";
  std::string model = "student";
  std::int64_t traces = 256;          // teacher generations (correct and well-formed kept)
  std::string data;                   // instead of generating: a JSONL file or a stage name
  double temperature = 0.7;
  std::int64_t max_new_tokens = 128;
  std::int64_t steps = 100;
  std::int64_t batch = 16;
  std::int64_t max_tokens = 2048;
  OptimizerConfig optimizer;
  EvalConfig eval;
  std::int64_t first_prompt = 200000;
  // Logit KD (off at 0): per response token (1 - kd_weight) * CE + kd_weight * tau^2 *
  // KL(teacher_tau || student_tau), tau = kd_temperature. Teacher and student must
  // share the vocabulary (checked when the config is loaded).
  double kd_weight = 0.0;
  double kd_temperature = 1.0;
};

struct EvalStageConfig {
  std::vector<std::string> models{"teacher"};
  EvalConfig eval;
};

struct ExportStageConfig {
  std::vector<std::string> models{"teacher"};
  std::vector<std::string> formats{"hf"};  // hf, gguf
  std::string dtype = "bf16";              // hf: f32, bf16, fp8 (deepseek_v3)
  std::string gguf_type = "f16";           // f32, f16, bf16, q8_0
};

using StageBody = std::variant<SftStageConfig, GrpoStageConfig, RejectionStageConfig, DistillStageConfig,
                               EvalStageConfig, ExportStageConfig>;

struct StageSpec {
  std::string name;
  StageKind kind = StageKind::Sft;
  StageBody body;
};

struct ModelSlot {
  std::string name;
  ModelConfig config;
  std::string init;        // "" = random init with `seed`; else a checkpoint or HF directory
  std::uint64_t seed = 0;
};

struct PipelineConfig {
  std::string out_dir = "runs/demo";
  std::uint64_t seed = 1234;
  Device device = Device::cpu();       // where the models live and train (run.device)
  bool deterministic = true;           // rank-ordered collectives (run.deterministic)
  std::int64_t checkpoint_every = 50;  // optimizer steps; 0 = only at stage end
  std::int64_t keep_last = 2;
  // run.zero: 0 = every rank holds all optimizer state; 1 = ZeRO-1, AdamW moments
  // and the update sharded over the ranks (trainer/zero.h). No effect on one rank.
  int zero_stage = 0;
  // run.overlap_reduce: without ZeRO, each layer's gradients are summed over the ranks
  // during the update's last backward (trainer/grad_overlap.h). No effect on one rank.
  bool overlap_reduce = true;
  // run.kv_cache: the KV cache dtype of every generation (F32 or BF16); unset = the
  // generator's default (rollout::default_cache_dtype).
  std::optional<DType> kv_cache;
  TaskConfig task;
  std::vector<ModelSlot> models;
  std::vector<StageSpec> stages;
  std::string resolved_toml;          // stored in run dir and checkpoints
  void validate() const;
};

// Runs (or resumes) the pipeline; returns the process exit code.
int run_pipeline(const PipelineConfig& config, dist::Communicator& comm);

}  // namespace crucible::trainer
