// kernels/cuda/fp8_quantize_cuda.h: host launchers of the FP8 quantize kernels.
// Contract identical to core/fp8_tensor.h (the CPU reference); pointers are device
// pointers, row-major, `stream` is a cudaStream_t (nullptr = default stream).
#pragma once

#include <cstdint>

#include "core/fp8_tensor.h"

namespace crucible::cuda {

// x [rows, cols] f32 -> q [rows, cols] fp8 codes, scale per layout (f32).
void quantize_fp8(const float* x, std::uint8_t* q, float* scale, std::int64_t rows,
                  std::int64_t cols, ScaleLayout layout, Fp8Options opts, void* stream);
// q, scale -> x f32 [rows, cols].
void dequantize_fp8(const std::uint8_t* q, const float* scale, float* x, std::int64_t rows,
                    std::int64_t cols, ScaleLayout layout, DType format, void* stream);

}  // namespace crucible::cuda
