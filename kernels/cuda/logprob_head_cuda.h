// kernels/cuda/logprob_head_cuda.h: host launcher of the fused, vocab-chunked LM head on
// the GPU (logprob_head.cu).
//
// Contracts identical to kernels/logprob_head.h (CPU reference: kernels/cpu/
// logprob_head.cpp). Device pointers on the current device, FP32 row-major contiguous;
// shapes validated by the ops:: layer; target ids checked in the kernels (print and
// trap). chunk is already clamped to [1, V]. Asynchronous on `stream` (a cudaStream_t),
// deterministic. Scratch ([T, chunk] logits and per-row state) is stream-ordered.
// bf16: the GEMM operands rounded to BF16 (LogprobHeadOptions::bf16).
#pragma once

#include <cstdint>

namespace crucible::cuda {

// h [T, D], w [V, D], targets [T] -> logp [T], lse [T], entropy [T] (nullptr: not computed).
void logprob_head_forward(const float* h, const float* w, const std::int32_t* targets, float* logp, float* lse,
                          float* entropy, std::int64_t T, std::int64_t D, std::int64_t V, std::int64_t chunk,
                          bool bf16, void* stream);
// dlogp [T], lse [T] -> dh [T, D] (=), dw [V, D] (+=).
void logprob_head_backward(const float* dlogp, const float* h, const float* w, const std::int32_t* targets,
                           const float* lse, float* dh, float* dw, std::int64_t T, std::int64_t D, std::int64_t V,
                           std::int64_t chunk, bool bf16, void* stream);
// ids [T, k] i32, logp [T, k]: best first (higher logit, then lower id).
void logprob_head_topk(const float* h, const float* w, std::int64_t k, std::int32_t* ids, float* logp,
                       std::int64_t T, std::int64_t D, std::int64_t V, std::int64_t chunk, bool bf16, void* stream);

}  // namespace crucible::cuda
