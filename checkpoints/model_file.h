// checkpoints/model_file.h: crucible model checkpoints (HDF5).
//
// One HDF5 file holds a model: the attribute /config (the Hugging Face config.json
// text of the model, v4 keys) and one FP32 dataset per parameter under /weights,
// named by its Hugging Face name, chunked with the Fletcher-32 checksum filter so
// that a flipped byte is detected on read. Files are written to "<path>.tmp",
// flushed and renamed: an existing checkpoint is never left half-written.
// The training state of issue 5 (optimizer moments, step, RNG, cursors) extends
// this layout with more groups in the same file.
#pragma once

#include <memory>
#include <string>

#include "model/weights.h"

namespace crucible::checkpoints {

// Writes config + weights atomically.
void save_model(const std::string& path, const ModelWeights& weights);

// Reads a crucible checkpoint (HDF5) or a Hugging Face model directory (config.json
// + safetensors); errors name the file and the tensor.
std::unique_ptr<ModelWeights> load_model(const std::string& path, bool with_grads = false);

// True when `path` looks like a crucible HDF5 checkpoint (by its signature).
bool is_model_file(const std::string& path);

// What a checkpoint or HF directory holds, without loading its weights.
struct StoredModel {
  ModelConfig config;             // as the importer would build it (MTP dropped if absent)
  std::string format;             // "crucible-hdf5" or "hf-safetensors"
  std::int64_t tensors = 0;       // stored weight tensors (FP8 scale tensors not counted)
  std::int64_t params = 0;        // elements of those tensors
  std::int64_t fp8_tensors = 0;   // weights stored as FP8 with block scales
};
StoredModel describe_stored(const std::string& path);

class H5Reader;
// The model config and the weights stored in a crucible HDF5 file (model files and
// training-state checkpoints share this part of the layout).
ModelConfig read_model_config(const H5Reader& r);
void read_weights(const H5Reader& r, ModelWeights& w);

}  // namespace crucible::checkpoints
