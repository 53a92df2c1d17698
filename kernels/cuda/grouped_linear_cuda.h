// kernels/cuda/grouped_linear_cuda.h: the CUDA twin of kernels/grouped_linear.h, and the
// per-group cuBLASLt loop it is measured and tested against.
//
// Same contracts as kernels/grouped_linear.h; the ops:: layer has validated the arguments.
//   Fp8   one launch of the grouped GEMM (kernels/cuda/grouped_linear_fp8_cuda.h) per GEMM
//         kind, over all non-empty groups; operands quantized by the GPU quantizer
//         (bit-identical to the CPU's codes and scales):
//           Fprop  x [M, K] quantized once (1x128 along K); all W_g in one launch
//                  (weight_fp8_group: 128x128 blocks; cached per WeightCacheScope)
//           Dgrad  dy [M, N] quantized once (1x128 along N); all W_g^T in one launch (W_g's
//                  blocks read the other way; cached likewise)
//           Wgrad  every group's dy_g^T [N, n_g] and x_g^T [K, n_g] in one transposed-quantize
//                  launch each (1x128 tiles along the group's tokens), dw_g += in one launch
//         The pair ops (gate and up over the same x) quantize x, and x^T, once for both.
//   Bf16  the same structure on the BF16 grouped GEMM (kernels/cuda/grouped_linear_bf16_cuda.h):
//         x (dy) rounded once into a padded operand, all W_g (W_g^T) in one launch (cached per
//         WeightCacheScope), every group's x_g^T and dy_g^T in one launch each.
//   Fp32  the per-group loop below (cuBLASLt).
#pragma once

#include <cstdint>
#include <span>

#include "core/stream.h"
#include "core/tensor.h"
#include "kernels/linear.h"

namespace crucible::cuda {

void grouped_linear_forward(const Tensor& x, std::span<const Tensor> w, std::span<const std::int64_t> offsets,
                            Tensor& y, ops::GemmPrecision p, const Stream& stream);
void grouped_linear_backward(const Tensor& dy, const Tensor& x, std::span<const Tensor> w,
                             std::span<const std::int64_t> offsets, Tensor& dx, std::span<Tensor> dw,
                             ops::GemmPrecision p, const Stream& stream);

// kernels/grouped_linear.h's pair ops, Fp8 and Bf16 (the ops:: layer runs Fp32 as two single ops).
void grouped_linear_pair_forward(const Tensor& x, std::span<const Tensor> w1, std::span<const Tensor> w2,
                                 std::span<const std::int64_t> offsets, Tensor& y1, Tensor& y2, ops::GemmPrecision p,
                                 const Stream& stream);
void grouped_linear_pair_backward(const Tensor& dy1, const Tensor& dy2, const Tensor& x, std::span<const Tensor> w1,
                                  std::span<const Tensor> w2, std::span<const std::int64_t> offsets, Tensor& dx,
                                  std::span<Tensor> dw1, std::span<Tensor> dw2, ops::GemmPrecision p,
                                  const Stream& stream);

// The baseline: cuda::linear_forward / linear_backward (cuBLASLt) on each non-empty group's
// row views, in group order. Same numerics contract; the benchmark's and tests' peer.
void grouped_linear_forward_loop(const Tensor& x, std::span<const Tensor> w,
                                 std::span<const std::int64_t> offsets, Tensor& y, ops::GemmPrecision p,
                                 const Stream& stream);
void grouped_linear_backward_loop(const Tensor& dy, const Tensor& x, std::span<const Tensor> w,
                                  std::span<const std::int64_t> offsets, Tensor& dx, std::span<Tensor> dw,
                                  ops::GemmPrecision p, const Stream& stream);

}  // namespace crucible::cuda
