// model/rope.h: rotary frequency tables for every RoPE variant of the three archs.
//
// inv_freq follows the Hugging Face rope utilities (default, linear, llama3, yarn);
// the tables hold cos/sin of pos * inv_freq (times YaRN's attention factor, which is
// 1 for DeepSeek's mscale = mscale_all_dim) for positions [0, max_pos).
// Reference: reference/deepseek_v3_fp8.md §2.3; transformers modeling_rope_utils.
#pragma once

#include <vector>

#include "core/tensor.h"
#include "model/model_config.h"

namespace crucible {

// Inverse frequencies for `rot` rotary dims (rot / 2 of them), per the config.
std::vector<double> rope_inv_freq(const RopeConfig& rope, std::int64_t rot);

// YaRN's multiplier on cos/sin (1 otherwise).
double rope_attention_factor(const RopeConfig& rope);

struct RopeTable {
  std::int64_t rot = 0;      // rotary dims
  bool interleaved = false;  // DeepSeek: pairs (0,1),(2,3)...; Llama/Qwen: (i, i + rot/2)
  Tensor cos, sin;           // [max_pos, rot / 2] FP32
};

// The table a model's attention uses: DeepSeek rotates qk_rope_head_dim dims
// interleaved, GQA models rotate the whole head half-split.
// Computed on the host, then copied to `device`.
RopeTable make_rope_table(const ModelConfig& c, std::int64_t max_pos, Device device = Device::cpu());

}  // namespace crucible
