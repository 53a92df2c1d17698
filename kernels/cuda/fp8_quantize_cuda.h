// kernels/cuda/fp8_quantize_cuda.h: host launchers of the FP8 quantize kernels.
// Contract identical to core/fp8_tensor.h (the CPU reference); pointers are device
// pointers, row-major, `stream` is a cudaStream_t (nullptr = default stream).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <span>

#include "core/fp8_tensor.h"

namespace crucible::cuda {

// x [rows, cols] f32 -> q [rows, cols] fp8 codes, scale per layout (f32).
void quantize_fp8(const float* x, std::uint8_t* q, float* scale, std::int64_t rows,
                  std::int64_t cols, ScaleLayout layout, Fp8Options opts, void* stream);
// quantize_fp8's Tile1x128 with the outputs laid out for a GEMM: the codes of row r at
// q + r ldq, zero from column cols to ldq (cols <= ldq <= cols rounded up to 128), the scale
// of tile kb of row r at scale[r scale_row + kb scale_kb].
void quantize_fp8_tiles(const float* x, std::int64_t rows, std::int64_t cols, std::uint8_t* q, std::int64_t ldq,
                        float* scale, std::int64_t scale_row, std::int64_t scale_kb, Fp8Options opts,
                        cudaStream_t stream);

// One group of rows of x [*, cols] for quantize_fp8_transposed: rows [row0, row0 + rows) form
// x_g, whose transpose x_g^T [cols, rows] is quantized in 1x128 tiles along x_g's rows
// (tiles start at row0): the codes of x_g^T's row c go to q + code_offset + c ld, bytes
// [rows, ld) written 0 (ld a multiple of 4, at most rows rounded up to 128); the scale of
// tile kb of row c to scale[scale_offset + c scale_col + kb scale_kb].
struct Fp8TransposedGroup {
  std::int64_t row0 = 0, rows = 0;
  std::int64_t code_offset = 0, ld = 0;
  std::int64_t scale_offset = 0, scale_col = 0, scale_kb = 0;
};

// Every group's x_g^T quantized as quantize_fp8 would quantize a transposed copy in
// Tile1x128 (the same codes and scales, bit for bit), in one launch that reads x once.
void quantize_fp8_transposed(const float* x, std::int64_t cols, std::span<const Fp8TransposedGroup> groups,
                             std::uint8_t* q, float* scale, Fp8Options opts, cudaStream_t stream);

// G weights of one shape, w_g [rows, cols] (device f32, contiguous), each quantized in
// 128x128 blocks, as W (transposed false) or as W^T, in one launch: weight g's operand
// [R, C] (R = rows or cols) goes to q + g rows_p k_p as quantize_gemm_operand lays it out
// (codes [rows_p, k_p], zero beyond [R, C]) and its block scales to scale + g Rp L4
// ([Rp, L4], K blocks contiguous, 0 where no block; Rp = ceil(rows_p / 128), L4 =
// ceil(k_p / 128) rounded up to 4). Codes and scales equal quantize_fp8's Block128x128
// (of the transposed copy, for W^T) bit for bit.
void quantize_fp8_weight_blocks(std::span<const float* const> w, std::int64_t rows, std::int64_t cols,
                                bool transposed, std::uint8_t* q, float* scale, std::int64_t rows_p,
                                std::int64_t k_p, cudaStream_t stream);

// q, scale -> x f32 [rows, cols].
void dequantize_fp8(const std::uint8_t* q, const float* scale, float* x, std::int64_t rows,
                    std::int64_t cols, ScaleLayout layout, DType format, void* stream);

}  // namespace crucible::cuda
