// kernels/cuda/gemm_prep_cuda.h: the small memory-bound kernels around the cuBLASLt GEMMs
// of kernels/cuda/linear_cuda.cpp: operand casts and transposes, FP8 scale re-layouts, the
// bias epilogue and the bias gradient. Pointers are device pointers, row-major and
// contiguous; `stream` is a cudaStream_t (nullptr = the legacy default stream).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <span>

#include "kernels/cuda/cublaslt_context.h"

namespace crucible::cuda {

// y [n] = bf16(x [n]) with round-to-nearest-even (NaN stays NaN, +-inf stays +-inf), the
// rounding of core/numerics.h f32_to_bf16. y holds the raw BF16 bits.
void cast_f32_to_bf16(const float* x, std::uint16_t* y, std::int64_t n, void* stream);
// The same into a new stream-ordered buffer of n BF16 values: an operand rounded once
// and read by every GEMM or tile that needs it.
DeviceScratch bf16_copy(const float* x, std::int64_t n, void* stream);

// A band of rows of one f32 matrix with `cols` columns (src [rows, cols]) and where its BF16
// operand goes: dst [rows, ld] (ld >= cols, a multiple of 8) or, transposed, dst [cols, ld]
// (ld >= rows, a multiple of 8); the elements from cols (or rows) to ld are written 0.
struct Bf16Band {
  const float* src = nullptr;
  std::int64_t rows = 0;
  std::uint16_t* dst = nullptr;
  std::int64_t ld = 0;
};
// Every band rounded to BF16 (RNE, as cast_f32_to_bf16) in one launch: the padded, 16-byte
// aligned operands of the BF16 grouped GEMM (kernels/cuda/grouped_linear_bf16_cuda.h), e.g.
// an activation, each expert's W_g or W_g^T, or each group's x_g^T.
void bf16_bands(std::span<const Bf16Band> bands, std::int64_t cols, bool transposed, cudaStream_t stream);

// y [cols, rows] = x [rows, cols]^T (exact copy).
void transpose_f32(const float* x, float* y, std::int64_t rows, std::int64_t cols, void* stream);

// dst [dst_rows, dst_cols] = src [src_rows, src_cols] (or its transpose when `transpose`),
// zero where the source has no element. Re-lays FP8 scale tensors out for cuBLASLt
// (transposed to M-major, padded to a multiple of 4); they are small.
void copy_scales_2d(const float* src, std::int64_t src_rows, std::int64_t src_cols, bool transpose,
                    float* dst, std::int64_t dst_rows, std::int64_t dst_cols, void* stream);

// y [rows, cols] += bias [cols] (broadcast over rows), one FP32 add per element.
void add_bias_rows(float* y, const float* bias, std::int64_t rows, std::int64_t cols, void* stream);

// dbias [cols] += sum over rows of dy [rows, cols]: each column summed in FP32 with rows
// ascending, then one add into dbias: the CPU twin's order, so the result is bit-identical
// (no atomics; deterministic).
void column_sum_accumulate(const float* dy, float* dbias, std::int64_t rows, std::int64_t cols, void* stream);

}  // namespace crucible::cuda
