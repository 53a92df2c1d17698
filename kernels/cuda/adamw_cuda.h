// kernels/cuda/adamw_cuda.h: host launchers of the AdamW update and Σ x^2 kernels
// (adamw.cu).
//
// Contract identical to kernels/adamw.h (the CPU reference is kernels/cpu/adamw.cpp).
// Pointers are device pointers on the current device, validated by the ops:: layer;
// `stream` is a cudaStream_t (nullptr = default stream).
#pragma once

#include <cstdint>

#include "kernels/adamw.h"

namespace crucible::cuda {

// In place on [n]: param, grad FP32; m, v FP32 (adamw_update_f32) or BF16 bits
// (adamw_update_bf16, round to nearest even after the update). Asynchronous.
void adamw_update_f32(float* param, const float* grad, float* m, float* v, std::int64_t n,
                      const ops::AdamWScalars& k, void* stream);
void adamw_update_bf16(float* param, const float* grad, std::uint16_t* m, std::uint16_t* v, std::int64_t n,
                       const ops::AdamWScalars& k, void* stream);

// Σ x^2 over [n] FP32 in double; waits for the stream. The summation order depends on
// n only, so the result is the same on every run and every GPU.
double sum_squares(const float* x, std::int64_t n, void* stream);

}  // namespace crucible::cuda
