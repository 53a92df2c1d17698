// kernels/cuda/decode_attention_cuda.h: host launchers of the decode attention kernels,
// the KV-cache append and the MLA absorption products (decode_attention.cu).
//
// Contract identical to kernels/decode_attention.h (the CPU reference is kernels/cpu/
// decode_attention.cpp). Pointers are device pointers on the current device, row-major
// and contiguous; caches are FP32 or BF16 (`cache_bf16`); queries and outputs FP32.
// Shapes are validated by the ops:: layer; slot / length / position values are
// checked in the kernels (a bad value prints and traps). `stream` is a cudaStream_t
// (nullptr = default stream); launches are asynchronous, temporaries (the split
// partials) are stream-ordered scratch. Results are deterministic (fixed chunking and
// combine order, no atomics).
#pragma once

#include <cstdint>

namespace crucible::cuda {

struct DecodeShape {
  std::int64_t T;         // query tokens
  std::int64_t Hq;        // query heads
  std::int64_t slots;     // cache slots
  std::int64_t capacity;  // positions per slot
  std::int64_t max_len;   // host bound on every len[t] (<= capacity)
};

// True when mla_decode has a kernel for latent width R and rope width P.
bool mla_decode_dims_supported(std::int64_t R, std::int64_t P);
// True when gqa_decode has a kernel for head dim d.
bool gqa_decode_dim_supported(std::int64_t d);

// q, out [T, Hq, d] f32; k, v [slots, capacity, Hkv, d] (f32, or bf16 as uint16 bits);
// slot, len [T] i32.
void gqa_decode(const float* q, const void* k, const void* v, bool cache_bf16, const std::int32_t* slot,
                const std::int32_t* len, const DecodeShape& s, std::int64_t Hkv, std::int64_t d, float scale,
                float* out, void* stream);

// The MLA decode kernel for BF16 caches with R = 512 or 256: Auto takes the wgmma kernel
// on Hopper and the mma.sync one elsewhere; MmaSync forces the latter (the tests and the
// benchmark run both in one process). Process-wide; FP32 caches always take mma.sync.
enum class MlaDecodeKernel { Auto, MmaSync };
void set_mla_decode_kernel(MlaDecodeKernel kernel);
// Sets the kernel for its lifetime, then Auto again (also when an exception leaves).
struct ScopedMlaDecodeKernel {
  explicit ScopedMlaDecodeKernel(MlaDecodeKernel kernel) { set_mla_decode_kernel(kernel); }
  ~ScopedMlaDecodeKernel() { set_mla_decode_kernel(MlaDecodeKernel::Auto); }
  ScopedMlaDecodeKernel(const ScopedMlaDecodeKernel&) = delete;
  ScopedMlaDecodeKernel& operator=(const ScopedMlaDecodeKernel&) = delete;
};

// q_lat, out_lat [T, Hq, R], q_rope [T, Hq, P] f32; ckv [slots, capacity, R], kpe
// [slots, capacity, P] (f32 or bf16 bits); slot, len [T] i32.
void mla_decode(const float* q_lat, const float* q_rope, const void* ckv, const void* kpe, bool cache_bf16,
                const std::int32_t* slot, const std::int32_t* len, const DecodeShape& s, std::int64_t R,
                std::int64_t P, float scale, float* out_lat, void* stream);

// cache[slot[t], pos[t], :] = src[t, :] (width floats per row; bf16 rounded RNE).
void kv_cache_append(const float* src, const std::int32_t* slot, const std::int32_t* pos, void* cache,
                     bool cache_bf16, std::int64_t T, std::int64_t width, std::int64_t slots,
                     std::int64_t capacity, void* stream);

// q [T, Hq, dqk], kv_b [Hq (nope + dv), R] -> q_lat [T, Hq, R].
void mla_absorb_query(const float* q, const float* kv_b, float* q_lat, std::int64_t T, std::int64_t Hq,
                      std::int64_t dqk, std::int64_t nope, std::int64_t dv, std::int64_t R, void* stream);
// out_lat [T, Hq, R], kv_b [Hq (nope + dv), R] -> o [T, Hq, dv].
void mla_absorb_output(const float* out_lat, const float* kv_b, float* o, std::int64_t T, std::int64_t Hq,
                       std::int64_t nope, std::int64_t dv, std::int64_t R, void* stream);

}  // namespace crucible::cuda
