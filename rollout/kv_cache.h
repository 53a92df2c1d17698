// rollout/kv_cache.h: per-sequence KV caches for generation.
//
// Two kinds, chosen by the architecture (DESIGN.md §3):
//   GQA  K and V per kv-head:       k, v   [slots, capacity, Hkv, d]
//   MLA  the latent and rope key:   ckv    [slots, capacity, kv_lora]  (after kv_a_layernorm)
//                                   kpe    [slots, capacity, rope]     (after RoPE)
//        i.e. 576 values per token and layer for DeepSeek-V3 instead of 128 x 320.
// A slot holds one sequence; len[slot] tokens are valid. The cache belongs to the
// run state, never to the model, and is reused across generate() calls. It lives on
// the device of the model weights; dtype F32 (default: the CPU math of generation
// is unchanged) or BF16 (half the bytes, RNE-rounded on append; the decode kernels
// widen it to FP32 on the CPU and feed it to the BF16 tensor cores as stored on
// CUDA; the generator takes BF16 for MLA on CUDA, rollout/generator.h). The layouts are
// the ones kernels/decode_attention.h reads.
#pragma once

#include <vector>

#include "model/model_config.h"
#include "core/tensor.h"

namespace crucible::rollout {

struct KvCache {
  KvCache(const ModelConfig& c, std::int64_t slots, std::int64_t capacity, Device device = Device::cpu(),
          DType dtype = DType::F32);

  bool mla = false;
  std::int64_t slots = 0, capacity = 0;
  std::vector<Tensor> k, v;      // GQA, per layer
  std::vector<Tensor> ckv, kpe;  // MLA, per layer
  std::vector<std::int64_t> len;  // valid tokens per slot

  void reset() { std::fill(len.begin(), len.end(), 0); }
  std::int64_t bytes() const;
};

}  // namespace crucible::rollout
