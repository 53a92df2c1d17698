// kernels/cpu/decode_attention_cpu.h: the CPU reference of decode attention over a KV
// cache, the cache append and the MLA absorption products (contracts in
// kernels/decode_attention.h).
//
// Called through the ops:: functions, which validate dtypes, shapes and devices first;
// these take CPU tensors only and check what needs their values (slots, lengths and
// positions), throwing with the offending token.
#pragma once

#include "core/tensor.h"

namespace crucible::cpu {

void gqa_decode(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& slot,
                const Tensor& len, std::int64_t max_len, float scale, Tensor& out);
void mla_decode(const Tensor& q_lat, const Tensor& q_rope, const Tensor& ckv_cache, const Tensor& kpe_cache,
                const Tensor& slot, const Tensor& len, std::int64_t max_len, float scale, Tensor& out_lat);
void kv_cache_append(const Tensor& src, const Tensor& slot, const Tensor& pos, Tensor& cache);
void mla_absorb_query(const Tensor& q, std::int64_t nope, const Tensor& kv_b, Tensor& q_lat);
void mla_absorb_output(const Tensor& out_lat, std::int64_t nope, const Tensor& kv_b, Tensor& o);

}  // namespace crucible::cpu
