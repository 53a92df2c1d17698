// kernels/decode_attention.h: attention of new tokens over a KV cache (generation),
// GQA and absorbed MLA, plus the cache append and the MLA absorption products.
//
// A batch of T query tokens, each with its own cache slot and length: token t attends
// to positions 0 .. len[t] - 1 of slot slot[t] (its own key included: the caller
// appends first). Prefill is the same call with one token per position (len = pos + 1),
// so sequences of different lengths share one launch. Softmax over the scaled scores
// in FP32; len[t] = 0 gives a zero output row.
//
// Cache layouts (rollout/kv_cache.h), per layer, FP32 or BF16:
//   GQA  k, v  [slots, capacity, Hkv, d]        (query head h reads kv head h / (Hq / Hkv))
//   MLA  ckv   [slots, capacity, R]  latent (R = kv_lora_rank, 512), after kv_a_layernorm
//        kpe   [slots, capacity, P]  rope key (P = qk_rope_head_dim, 64), after RoPE
// MLA in the absorbed form (reference/deepseek_v3_fp8.md §2.2): with W_UK_h, W_UV_h the
// rows of kv_b_proj of head h, q_lat_h = q_nope_h W_UK_h (mla_absorb_query), scores are
// q_lat·c_kv + q_rope·k_rope over the 576-wide key, the output is the latent
// out_lat_h = softmax · c_kv (512 wide), mapped back by o_h = out_lat_h W_UV_h^T
// (mla_absorb_output). Keys and values are never expanded; all heads share one latent.
//
// Devices: every tensor of a call on one device (slot, len, pos included). The CPU
// reference (kernels/cpu/decode_attention.cpp) is the math rollout/cached_forward.cpp
// always did: FP32 dot products, softmax with its sum in double; a BF16 cache is read
// exactly (widened to FP32). The CUDA twin (kernels/cuda/decode_attention.cu) runs
// asynchronously on `stream`, splits each sequence into chunks (flash-decoding) and
// combines them in a fixed order: deterministic. GQA's chunks are fixed (a token's result
// is independent of max_len and of the other tokens); MLA's split count is chosen per
// call from T, Hq and max_len to fill the SMs, so its results may move with them at FP32
// rounding level. On Hopper, MLA over a BF16 cache runs a wgmma kernel (the mma.sync one
// elsewhere and for FP32 caches; kernels/cuda/decode_attention_cuda.h).
//   gqa_decode  FP32 CUDA cores; d <= 128 (any), Hq % Hkv == 0.
//   mla_decode  BF16 tensor cores (q, the cache and the probabilities rounded to BF16
//               RNE, FP32 accumulation and softmax); (R, P) in {(512, 64), (256, 64), (64, 16)}
//               (DeepSeek-V2/V3 and the tiny demo model), anything else fails loudly.
// Slot or length values out of range: the CPU throws naming the token; CUDA prints and
// traps (checking them on the host would cost a copy and a synchronization).
// Tolerances of the twins: tests/gpu/test_decode_attention.cpp.
#pragma once

#include "core/stream.h"
#include "core/tensor.h"

namespace crucible::ops {

// q [T, Hq, d] f32; k_cache, v_cache [slots, capacity, Hkv, d] (f32 or bf16, the same);
// slot, len [T] i32 with 0 <= slot < slots, 0 <= len <= max_len <= capacity;
// -> out [T, Hq, d] f32 (written). max_len is a host bound on every len (sizes the
// CUDA grid; results do not depend on it).
void gqa_decode(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& slot,
                const Tensor& len, std::int64_t max_len, float scale, Tensor& out,
                const Stream& stream = Stream());

// q_lat [T, Hq, R], q_rope [T, Hq, P] f32; ckv_cache [slots, capacity, R], kpe_cache
// [slots, capacity, P] (f32 or bf16, the same); slot, len as above
// -> out_lat [T, Hq, R] f32 (written).
void mla_decode(const Tensor& q_lat, const Tensor& q_rope, const Tensor& ckv_cache, const Tensor& kpe_cache,
                const Tensor& slot, const Tensor& len, std::int64_t max_len, float scale, Tensor& out_lat,
                const Stream& stream = Stream());

// cache[slot[t], pos[t], ...] = src[t, ...] for every t (rounded RNE when the cache is
// bf16). src [T, ...] f32 with the cache's trailing dims; cache [slots, capacity, ...];
// slot, pos [T] i32 in range; rows written by two tokens: undefined which wins.
void kv_cache_append(const Tensor& src, const Tensor& slot, const Tensor& pos, Tensor& cache,
                     const Stream& stream = Stream());

// q_lat[t, h, :] = q[t, h, 0:nope] W_UK_h with W_UK_h = kv_b rows [h (nope + dv), +nope).
// q [T, Hq, nope + rope] f32 (the nope dims of each head are used); kv_b [Hq (nope + dv), R]
// f32 -> q_lat [T, Hq, R] f32 (written).
void mla_absorb_query(const Tensor& q, std::int64_t nope, const Tensor& kv_b, Tensor& q_lat,
                      const Stream& stream = Stream());

// o[t, h, :] = out_lat[t, h, :] W_UV_h^T with W_UV_h = kv_b rows [h (nope + dv) + nope, +dv).
// out_lat [T, Hq, R] f32; kv_b [Hq (nope + dv), R] -> o [T, Hq, dv] f32 (written).
void mla_absorb_output(const Tensor& out_lat, std::int64_t nope, const Tensor& kv_b, Tensor& o,
                       const Stream& stream = Stream());

}  // namespace crucible::ops
