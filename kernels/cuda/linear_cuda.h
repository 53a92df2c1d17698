// kernels/cuda/linear_cuda.h: the CUDA twin of kernels/linear.h (gemm_nt, linear_forward,
// linear_backward on CUDA tensors), and the FP8 operand packing it is built from.
//
// Same contracts as kernels/linear.h; the CPU reference is kernels/cpu/linear.cpp and
// tests/gpu/test_gemm.cpp holds the two against each other.
//   Fp32  cuBLASLt FP32 (pedantic: FFMA, no TF32).
//   Bf16  both operands cast to BF16 (RNE, the CPU's rounding) by one cast kernel, cuBLASLt
//         BF16 GEMM with FP32 accumulation and FP32 output.
//   Fp8   the DeepSeek-V3 recipe with cuBLASLt's native Hopper block scaling: the GPU
//         quantizer (kernels/cuda/fp8_quantize.cu) produces the CPU's codes and scales bit
//         for bit, then cuBLASLt multiplies the codes per 128-wide K block and promotes each
//         block with scale_a * scale_b into FP32 (kernels/cuda/gemm_cublaslt.cpp).
//           Fprop  x: 1x128 tiles (VEC128), W: 128x128 blocks (BLK128x128)
//           Dgrad  dy: 1x128 tiles, W^T: 128x128 blocks (W transposed in FP32, then quantized;
//                  the same codes and scales as W's blocks read the other way)
//           Wgrad  dy^T and x^T: 1x128 tiles along tokens, both VEC128, each made by one
//                  transposed-quantize launch that reads the operand once
//         Inside an ops::WeightCacheScope, W's BF16 copy and its FP8 forms (W, W^T) come
//         from kernels/cuda/weight_cache.h, made once per scope.
// Shapes: none required. cuBLASLt's FP8 kernels need K % 16, M % 4 and N % 4; where a shape
// misses, the codes are zero-padded (K up to a multiple of 128, so only whole 128-blocks
// reach cuBLASLt; M and N up to a multiple of 4) and C goes through a padded copy. Zero
// codes add exact zeros, so padding does not change any result. All DeepSeek-V3 linear
// shapes with tokens % 4 == 0 take the direct path, except Dgrad of kv_a (K = 576).
// Needs compute capability 9.x (Hopper) for Fp8 (checked with a clear error).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "core/fp8_tensor.h"
#include "core/stream.h"
#include "core/tensor.h"
#include "kernels/cuda/cublaslt_context.h"
#include "kernels/cuda/gemm_cublaslt.h"
#include "kernels/linear.h"

namespace crucible::cuda {

void gemm_nt(const Tensor& a, const Tensor& b, Tensor& c, float beta, ops::GemmPrecision p,
             const Stream& stream);
void linear_forward(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y, ops::GemmPrecision p,
                    const Stream& stream);
void linear_backward(const Tensor& dy, const Tensor& x, const Tensor& w, Tensor& dx, Tensor& dw,
                     Tensor& dbias, ops::GemmPrecision p, const Stream& stream);
// kernels/linear.h's pair ops: x's BF16 copy or FP8 forms made once for both linears.
void linear_pair_forward(const Tensor& x, const Tensor& w1, const Tensor& w2, Tensor& y1, Tensor& y2,
                         ops::GemmPrecision p, const Stream& stream);
void linear_pair_backward(const Tensor& dy1, const Tensor& dy2, const Tensor& x, const Tensor& w1, const Tensor& w2,
                          Tensor& dx, Tensor& dw1, Tensor& dw2, ops::GemmPrecision p, const Stream& stream);

// The BF16 (RNE) copy of the f32 device tensor t, in stream order (gemm_prep_cuda.h's
// bf16_copy of its elements).
DeviceScratch bf16_copy(const Tensor& t, cudaStream_t stream);

// An FP8 GEMM operand that owns its (stream-ordered) memory: codes [rows_p, k_p] and the
// scales in cuBLASLt's layout for its mode (see kernels/cuda/gemm_cublaslt.h).
struct Fp8GemmInput {
  DeviceScratch q, scale;
  GemmOperand operand;      // points into q and scale
  std::int64_t rows_p = 0;  // rows, padded
  std::int64_t k_p = 0;     // K, padded
};

// Quantizes x [rows, k] (device, f32, contiguous) with the GPU quantizer in `layout`
// (Tile1x128 -> Vec128, Block128x128 -> Block128x128 scales) and lays it out for
// gemm_rowmajor, zero-padded to [rows_p, k_p] (rows_p >= rows, a multiple of 4; k_p >= k, a
// multiple of 16; pass rows and k to skip padding when they already are).
Fp8GemmInput quantize_gemm_operand(const float* x, std::int64_t rows, std::int64_t k, ScaleLayout layout,
                                   std::int64_t rows_p, std::int64_t k_p, cudaStream_t stream,
                                   Fp8Options opts = {});

}  // namespace crucible::cuda
