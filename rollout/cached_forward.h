// rollout/cached_forward.h: the inference forward over a KV cache.
//
// Runs new tokens of several sequences (prefill: many per sequence; decode: one)
// through the model, appending their keys/values (GQA) or latents (MLA) to the
// cache, and returns the final-norm hidden states of the new tokens. MLA attends in
// the absorbed form (reference/deepseek_v3_fp8.md §2.2): queries are mapped into
// the latent space with W_UK, scores are q_lat·c_kv + q_rope·k_rope, and the
// latent output is mapped back with W_UV: keys and values are never expanded.
#pragma once

#include <vector>

#include "model/transformer.h"
#include "rollout/kv_cache.h"

namespace crucible::rollout {

struct Chunk {
  std::int64_t slot;                  // cache slot of the sequence
  std::vector<std::int32_t> tokens;   // new tokens, appended at cache.len[slot]
};

// Returns hf [Σ tokens, H] in chunk order; cache.len grows by each chunk's size.
Tensor forward_cached(Transformer& model, KvCache& cache, const std::vector<Chunk>& chunks);

}  // namespace crucible::rollout
