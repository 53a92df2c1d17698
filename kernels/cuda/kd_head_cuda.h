// kernels/cuda/kd_head_cuda.h: host launchers of logit KD through two LM heads on the
// GPU (kd_head.cu).
//
// Contracts identical to kernels/kd_head.h (CPU reference: kernels/cpu/kd_head.cpp).
// Device pointers on the current device, FP32 row-major contiguous; shapes validated by
// the ops:: layer. rows is already clamped to [1, T] (T > 0 or rows unused). Asynchronous
// on `stream` (a cudaStream_t), deterministic. Scratch (two [rows, V] logit blocks) is
// stream-ordered.
#pragma once

#include <cstdint>

namespace crucible::cuda {

// hs [T, Ds], ws [V, Ds], ht [T, Dt], wt [V, Dt] -> loss [T] (=).
void kd_head_forward(const float* hs, const float* ws, const float* ht, const float* wt, float* loss,
                     std::int64_t T, std::int64_t Ds, std::int64_t Dt, std::int64_t V, float temperature,
                     std::int64_t rows, void* stream);
// dloss [T] -> dhs [T, Ds] (=), dws [V, Ds] (+=).
void kd_head_backward(const float* dloss, const float* hs, const float* ws, const float* ht, const float* wt,
                      float* dhs, float* dws, std::int64_t T, std::int64_t Ds, std::int64_t Dt, std::int64_t V,
                      float temperature, std::int64_t rows, void* stream);

}  // namespace crucible::cuda
