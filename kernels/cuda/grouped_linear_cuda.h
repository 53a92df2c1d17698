// kernels/cuda/grouped_linear_cuda.h: the CUDA twin of kernels/grouped_linear.h, and the
// per-group cuBLASLt loop it is measured and tested against.
//
// Same contracts as kernels/grouped_linear.h; the ops:: layer has validated the arguments.
//   Fp8   one launch of the grouped GEMM (kernels/cuda/grouped_linear_fp8_cuda.h) per GEMM
//         kind, over all non-empty groups; operands quantized by the GPU quantizer
//         (bit-identical to the CPU's codes and scales) through quantize_gemm_operand:
//           Fprop  x [M, K] quantized once (1x128 along K); W_g once each (128x128 blocks)
//           Dgrad  dy [M, N] quantized once (1x128 along N); W_g^T (transposed in FP32, then
//                  128x128 blocks: W_g's blocks read the other way)
//           Wgrad  per group dy_g^T [N, n_g] and x_g^T [K, n_g] (transposed in FP32, then 1x128
//                  tiles along the group's tokens), dw_g += in the same launch
//         NOTE: the weights are re-quantized on every call (as ops::linear_* does); a training
//         step could cache W's FP8 copy (and W^T's) across the MoE forward and backward.
//   Fp32, Bf16  the per-group loop below (cuBLASLt; no grouped kernel for these yet);
//               Bf16 rounds x (and dy) once for all groups, each W_g once per call.
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

// The baseline: cuda::linear_forward / linear_backward (cuBLASLt) on each non-empty group's
// row views, in group order. Same numerics contract; the benchmark's and tests' peer.
void grouped_linear_forward_loop(const Tensor& x, std::span<const Tensor> w,
                                 std::span<const std::int64_t> offsets, Tensor& y, ops::GemmPrecision p,
                                 const Stream& stream);
void grouped_linear_backward_loop(const Tensor& dy, const Tensor& x, std::span<const Tensor> w,
                                  std::span<const std::int64_t> offsets, Tensor& dx, std::span<Tensor> dw,
                                  ops::GemmPrecision p, const Stream& stream);

}  // namespace crucible::cuda
