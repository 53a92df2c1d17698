// trainer/run_context.h: what the stages of one run share.
//
// The model slots (loaded lazily: from the slot's last stage output, its init
// checkpoint, or a seeded random init), the task environment, reward scorers, the
// run directory (metrics.jsonl, report.json, checkpoints/, export/, data/) and the
// communicator. Only rank 0 writes files; every rank holds the same weights.
#pragma once

#include <map>
#include <memory>

#include "checkpoints/train_state.h"
#include "core/json.h"
#include "trainer/pipeline.h"

namespace crucible::trainer {

class RunContext {
 public:
  RunContext(const PipelineConfig& config, dist::Communicator& comm);

  const PipelineConfig& config() const { return config_; }
  dist::Communicator& comm() { return comm_; }
  bool root() const { return comm_.rank() == 0; }
  const TaskEnv& env() const { return *env_; }
  const Scorer& scorer(const std::string& spec);

  // The slot's model (trainable: with a gradient arena).
  Transformer& model(const std::string& slot);
  ModelWeights& weights(const std::string& slot);
  // Writes checkpoints/model-<slot>.h5 (the slot's output, read by later stages and on resume).
  void save_slot(const std::string& slot);
  std::string slot_path(const std::string& slot) const;

  // Appends one JSON object to metrics.jsonl (rank 0).
  void log_metrics(const json::Value& line);
  // report.json: {"stages": {name: summary}, "order": [...]}.
  bool stage_done(const std::string& stage) const;
  void finish_stage(const std::string& stage, json::Value summary);
  const json::Value& report() const { return report_; }

  // The stage's optimizer for the slot's weights, data parallel over this run's ranks
  // (ZeRO-1 when run.zero = 1); logs this rank's optimizer-state bytes.
  AdamW make_optimizer(const std::string& stage, ModelWeights& w, const OptimizerConfig& config);

  // Stage checkpoints: resume (returns steps done and the resume JSON; 0 and {} when
  // there is none) and save every config.checkpoint_every steps. Collective. A
  // checkpoint holds full-layout moments (ZeRO-1 gathers them to rank 0, which writes
  // the file atomically), so a stage resumes under any world size or run.zero; it
  // continues bit-identically under the world size that wrote it (the gradient
  // reduction order depends on the world).
  std::pair<std::int64_t, json::Value> resume(const std::string& stage, std::int64_t stage_index,
                                              ModelWeights& w, AdamW* opt);
  void checkpoint(const std::string& stage, std::int64_t stage_index, std::int64_t step, const ModelWeights& w,
                  AdamW* opt, const json::Value& resume, bool force = false);

  std::string path(const std::string& relative) const;  // inside the run directory

  // Held-out evaluation of the slot's current weights, scored for correctness, as
  // report JSON. A greedy evaluation (k = 1) is a function of the weights and the
  // eval settings only, so one of unchanged weights under the same settings is
  // reused (a stage's "before" is then the previous stage's "after") and marked
  // "reused": true. The key hashes every parameter byte, so any update misses.
  json::Value evaluate_slot(const std::string& slot, const EvalConfig& e, std::uint64_t seed);

 private:
  void write_report();

  PipelineConfig config_;
  dist::Communicator& comm_;
  std::unique_ptr<TaskEnv> env_;
  std::map<std::string, std::unique_ptr<Scorer>> scorers_;
  std::map<std::string, std::unique_ptr<ModelWeights>> weights_;
  std::map<std::string, std::unique_ptr<Transformer>> models_;
  json::Value report_ = json::Value::object();
  std::unique_ptr<checkpoints::CheckpointDir> ckpt_;
  std::map<std::string, std::pair<std::string, json::Value>> last_eval_;  // slot -> (key, result)
};

// Evaluation results as report JSON.
json::Value eval_json(const EvalResult& r);

}  // namespace crucible::trainer
