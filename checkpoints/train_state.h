// checkpoints/train_state.h: training-state checkpoints and the checkpoint folder.
//
// A training checkpoint is one HDF5 bundle (h5_bundle.h) holding the model config
// and FP32 weights (as a model file does, so any checkpoint also loads as a model),
// the optimizer moments, and the resume state: pipeline stage, step, the resolved
// run config and a JSON document of RNG positions and data cursors.
// CheckpointDir keeps the last K checkpoints of a run; on load it takes the newest
// one that verifies (complete, checksums good) and says which damaged ones it
// skipped, so a kill or a bad disk never costs more than one checkpoint.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/arena.h"
#include "dist/shard.h"
#include "model/weights.h"

namespace crucible::checkpoints {

struct TrainState {
  std::string stage;            // stage name in the pipeline ("sft", "grpo", ...)
  std::int64_t stage_index = 0; // position of the stage in the pipeline
  std::int64_t step = 0;        // optimizer steps completed in this stage
  std::string run_config;       // the resolved run config (TOML)
  std::string resume_json = "{}";  // RNG positions, data cursors, stage accumulators
};

struct Moments {
  Arena* m = nullptr;  // first moments (FP32 or BF16), same layout names as the params
  Arena* v = nullptr;
};

// A ZeRO-1 rank's part of the moments (trainer/optimizer.h): m and v are flat
// [shards->shard_elems()] tensors (FP32 or BF16) holding the FP32 parameter elements
// shards->padded_range(rank) of the parameter layout, padding zero. Checkpoints
// always store full-layout moments (a sharded run gathers them to rank 0 before
// writing), so a shard loads from a checkpoint of any world size or ZeRO setting.
struct MomentShard {
  const dist::FlatShards* shards = nullptr;
  int rank = 0;
  Tensor m, v;
};

void save_train_state(const std::string& path, const ModelWeights& weights, const Moments& moments,
                      const TrainState& state);

// Reads the state and the weights into `weights` (whose config must match the
// file's) and, when given, the moments.
TrainState load_train_state(const std::string& path, ModelWeights& weights, const Moments& moments);
// The same with the moments read into one rank's shard: only the tensors that
// overlap it are read (one at a time), so a rank never holds the full moments.
TrainState load_train_state(const std::string& path, ModelWeights& weights, const MomentShard& moments);
// Only the state part (cheap).
TrainState read_train_state(const std::string& path);

class CheckpointDir {
 public:
  CheckpointDir(std::string dir, std::int64_t keep_last);

  // Writes "<dir>/<stage>-step<NNNNNN>.h5" atomically and removes the oldest beyond
  // keep_last (of the same stage). Returns the path.
  std::string save(const ModelWeights& weights, const Moments& moments, const TrainState& state);
  // Checkpoints of a stage (or all with stage = ""), oldest first.
  std::vector<std::string> list(const std::string& stage = "") const;
  // The newest checkpoint of `stage` that verifies completely; damaged ones are
  // reported in `skipped` (path: reason). nullopt when none.
  std::optional<std::string> latest_good(const std::string& stage, std::vector<std::string>* skipped = nullptr) const;
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  std::int64_t keep_last_;
};

// Full verification: opens, checks completeness and reads every dataset (checksums).
bool verify_checkpoint(const std::string& path, std::string* reason = nullptr);

}  // namespace crucible::checkpoints
