// kernels/cuda/attention_cuda.h: host launchers of the causal packed attention kernels
// (attention_forward.cu, attention_backward.cu).
//
// Contract identical to kernels/attention.h (the CPU reference is kernels/cpu/
// attention.cpp): FP32 tensors in and out, row-major, contiguous, 16-byte aligned.
// Pointers are device pointers on the current device; shapes are validated by the
// ops:: layer; the values of cu_seqlens are checked in the kernels (a bad offset
// prints and traps). `stream` is a cudaStream_t (nullptr = default stream); launches
// are asynchronous. Results are deterministic (fixed reduction orders, no atomics).
// Precision: BF16 operands (RNE) on the tensor cores, FP32 accumulation and softmax.
#pragma once

#include <cstdint>

namespace crucible::cuda {

struct AttentionShape {
  std::int64_t T;      // packed tokens
  std::int64_t Hq;     // query heads
  std::int64_t Hkv;    // key/value heads (Hq % Hkv == 0)
  std::int64_t dqk;    // q/k head dim
  std::int64_t dv;     // v head dim
  std::int64_t n_seq;  // sequences B; cu_seqlens holds B + 1 offsets
};

// True when a BF16 tensor-core variant exists for these head dims (see
// kernels/attention.h); other dims up to kGenericMaxDim run the FP32 fallback.
bool attention_head_dims_supported(std::int64_t dqk, std::int64_t dv);
constexpr std::int64_t kGenericMaxDim = 512;

// The BF16 (RNE) copies of q, k, v that the tensor-core kernels multiply (device, the
// shapes of q, k, v; 16-byte aligned): written by attention_forward when given, read by
// attention_backward instead of rounding q, k, v again. All null: none.
struct Bf16Qkv {
  std::uint16_t* q = nullptr;
  std::uint16_t* k = nullptr;
  std::uint16_t* v = nullptr;
};

// q [T, Hq, dqk], k [T, Hkv, dqk], v [T, Hkv, dv], cu_seqlens [B + 1] i32 (device) ->
// out [T, Hq, dv] (=), lse [T, Hq] (=); keep (tensor-core dims only) =.
void attention_forward(const float* q, const float* k, const float* v, const std::int32_t* cu_seqlens,
                       const AttentionShape& shape, float scale, float* out, float* lse, void* stream,
                       Bf16Qkv keep = {});
// dout, out [T, Hq, dv]; lse [T, Hq] -> dq [T, Hq, dqk], dk [T, Hkv, dqk], dv [T, Hkv, dv] (all =);
// kept: attention_forward's keep of the same q, k, v (tensor-core dims only), or none.
void attention_backward(const float* dout, const float* q, const float* k, const float* v, const float* out,
                        const float* lse, const std::int32_t* cu_seqlens, const AttentionShape& shape,
                        float scale, float* dq, float* dk, float* dv, void* stream, Bf16Qkv kept = {});

// The FP32 fallback (attention_generic.cu), same contract, any dqk, dv <= kGenericMaxDim;
// attention_forward/attention_backward call it for dims without a tensor-core variant.
void attention_forward_generic(const float* q, const float* k, const float* v, const std::int32_t* cu_seqlens,
                               const AttentionShape& shape, float scale, float* out, float* lse, void* stream);
void attention_backward_generic(const float* dout, const float* q, const float* k, const float* v, const float* out,
                                const float* lse, const std::int32_t* cu_seqlens, const AttentionShape& shape,
                                float scale, float* dq, float* dk, float* dv, void* stream);

}  // namespace crucible::cuda
