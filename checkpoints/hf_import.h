// checkpoints/hf_import.h: Hugging Face model directories -> ModelWeights.
//
// Reads config.json (both rotary dialects) and the safetensors weights (single file
// or sharded with model.safetensors.index.json) under the Hugging Face names of
// parameter_table(). FP8 checkpoints (DeepSeek-V3) store `X.weight` as E4M3 with a
// sibling `X.weight_scale_inv` of 128x128 block scales: those are dequantized to
// FP32 masters. MTP layers that the directory lacks (transformers does not save
// them) are dropped from the config with a warning; any other missing tensor is an
// error naming it.
#pragma once

#include <memory>
#include <string>

#include "model/weights.h"

namespace crucible::checkpoints {

std::unique_ptr<ModelWeights> import_hf_model(const std::string& dir, bool with_grads = false);

}  // namespace crucible::checkpoints
