// checkpoints/hf_config.h: Hugging Face config.json <-> ModelConfig.
//
// Reads both dialects of rotary settings: transformers v4 (`rope_theta` +
// `rope_scaling` with `type` or `rope_type`) and v5 (`rope_parameters`, possibly
// keyed by layer type). Writes the v4 keys, which every loader understands.
// model_type deepseek_v3 and deepseek_v2 map to Arch::DeepseekV3, qwen2 and llama
// to their own. Reference: reference/checkpoint_formats.md, HF configuration_*.py.
#pragma once

#include <string>

#include "core/json.h"
#include "model/model_config.h"

namespace crucible::checkpoints {

// `source` names the document in errors ("DIR/config.json").
ModelConfig model_config_from_hf(const json::Value& config, const std::string& source);
// Reads DIR/config.json or a config.json path.
ModelConfig read_hf_config(const std::string& path);
// The config.json a transformers loader expects (v4 keys, architectures, torch_dtype).
json::Value model_config_to_hf(const ModelConfig& c);

}  // namespace crucible::checkpoints
