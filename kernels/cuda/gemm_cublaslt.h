// kernels/cuda/gemm_cublaslt.h: row-major GEMMs through cuBLASLt (FP32, BF16, FP8).
//
//   C [M, N] (row-major, f32, ld N) = op(A) op(B) + beta * C,  op(A) [M, K], op(B) [K, N],
//   A stored [M, K] (or [K, M] when trans_a), B stored [K, N] (or [N, K] when trans_b),
//   contiguous row-major; beta is 0 (C is not read) or 1.
//
// Operand types (both operands of one GEMM share a family):
//   F32   CUBLAS_COMPUTE_32F_PEDANTIC: FP32 FFMA, no TF32, no reduced-precision reductions.
//   BF16  BF16 operands, FP32 accumulation and output (CUBLAS_COMPUTE_32F).
//   E4M3 / E5M2  FP8 codes with FP32 dequantization scales (CUBLAS_COMPUTE_32F, FP32 out),
//         NT only (trans_a = false, trans_b = true): Hopper's FP8 kernels take only the
//         "TN" column-major form (see the mapping in gemm_cublaslt.cpp). Scale modes:
//           PerTensor     one FP32 on the device.
//           Vec128        DeepSeek-V3 activation tiles: one scale per row per 128 K elements.
//                         Layout [ceil(K / 128), rows] (rows contiguous: cuBLAS's "M-major").
//           Block128x128  DeepSeek-V3 weight blocks: one scale per 128 rows x 128 K.
//                         Layout [ceil(rows / 128), L4], L4 = ceil(K / 128) rounded up to a
//                         multiple of 4 (K blocks contiguous: cuBLAS's "K-major", padded).
//         Both operands Block128x128 is not supported by cuBLASLt; PerTensor pairs only with
//         PerTensor. Requirements (checked): K % 16 == 0, M % 4 == 0, N % 4 == 0, codes and
//         scales 16-byte aligned, block scaling on compute capability 9.x only.
//         kernels/cuda/linear_cuda.cpp pads operands so that the ops have no shape limits.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "core/dtype.h"

namespace crucible::cuda {

enum class Fp8ScaleMode : std::uint8_t { PerTensor, Vec128, Block128x128 };

struct GemmOperand {
  const void* data = nullptr;    // device; values (F32, BF16 bits) or FP8 codes, row-major
  DType dtype = DType::F32;      // F32, BF16, E4M3 or E5M2
  const float* scale = nullptr;  // FP8 only: device, layout per scale_mode
  Fp8ScaleMode scale_mode = Fp8ScaleMode::PerTensor;  // FP8 only
};

// See the file comment. Runs on `stream` on the current device; M, N or K == 0 are
// handled (C = beta * C).
void gemm_rowmajor(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K,
                   const GemmOperand& a, const GemmOperand& b, float* c, float beta, cudaStream_t stream);

}  // namespace crucible::cuda
