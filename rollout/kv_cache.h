// rollout/kv_cache.h: per-sequence KV caches for generation.
//
// Two kinds, chosen by the architecture (DESIGN.md §3):
//   GQA  K and V per kv-head:       k, v   [slots, capacity, Hkv, d]
//   MLA  the latent and rope key:   ckv    [slots, capacity, kv_lora]  (after kv_a_layernorm)
//                                   kpe    [slots, capacity, rope]     (after RoPE)
//        i.e. 576 values per token and layer for DeepSeek-V3 instead of 128 x 320.
// A slot holds one sequence; len[slot] tokens are valid. The cache belongs to the
// run state, never to the model, and is reused across generate() calls.
#pragma once

#include <vector>

#include "model/model_config.h"
#include "core/tensor.h"

namespace crucible::rollout {

struct KvCache {
  KvCache(const ModelConfig& c, std::int64_t slots, std::int64_t capacity);

  bool mla = false;
  std::int64_t slots = 0, capacity = 0;
  std::vector<Tensor> k, v;      // GQA, per layer
  std::vector<Tensor> ckv, kpe;  // MLA, per layer
  std::vector<std::int64_t> len;  // valid tokens per slot

  void reset() { std::fill(len.begin(), len.end(), 0); }
  std::int64_t bytes() const;
};

}  // namespace crucible::rollout
