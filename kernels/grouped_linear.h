// kernels/grouped_linear.h: y_g = x_g W_g^T for G groups of rows in one call (the routed
// experts of a DeepSeekMoE layer, rows permuted by expert), and its backward.
//
// Rows of group g are x[offsets[g], offsets[g + 1]); offsets is a host array of G + 1
// non-decreasing values with offsets[0] = 0 and offsets[G] = M (groups may be empty). Every
// group's weight W_g is its own [N, K] tensor (in the model, views into one parameter arena
// that need not be adjacent to each other). No bias (the DeepSeek-V3 experts have none).
//
// Numerics: exactly ops::linear_forward / ops::linear_backward (kernels/linear.h) applied to
// each non-empty group: Fp32, Bf16, or the DeepSeek-V3 FP8 recipe per group (Fprop: x in 1x128
// tiles along K, W_g in 128x128 blocks; Dgrad: dy in 1x128 tiles along N, W_g^T in 128x128
// blocks; Wgrad: dy_g^T and x_g^T in 1x128 tiles along the group's tokens, tiles starting at
// the group's first row). 1x128 tiles along K do not cross rows, so quantizing all of x at
// once gives every group the codes it would get alone.
// Gradient contract: dx written (=) unless undefined; dw[g] accumulated (+=); empty groups
// leave dw[g] untouched.
//
// Devices: CPU tensors run the reference (kernels/cpu/grouped_linear.cpp: the per-group loop
// over the CPU linear ops, bit-identical to calling them group by group); CUDA tensors run
// the twin (kernels/cuda/grouped_linear_cuda.h) on `stream`, asynchronously: Fp8 and Bf16 as
// the per-group cuBLASLt loop or as one grouped-GEMM launch per GEMM kind (Fprop, Dgrad,
// Wgrad) over all groups (GroupedImpl), Fp32 as the loop. The one launch and Fp8 on CUDA
// need a Hopper GPU (compute capability 9.x).
#pragma once

#include <cstdint>
#include <span>

#include "core/stream.h"
#include "core/tensor.h"
#include "kernels/linear.h"

namespace crucible::ops {

// How the CUDA twin runs Fp8 and Bf16 (Fp32 always loops): Auto is the one launch of the
// grouped GEMM kernel, the faster or within 10% of the per-group cuBLASLt loop at every shape
// bench/gpu/grouped_gemm.cpp measured on the H100 (the figures are in
// kernels/grouped_linear.cpp). The CPU ignores it.
enum class GroupedImpl : std::uint8_t { Auto, Loop, OneLaunch };

// x [M, K]; w: G tensors [N, K]; offsets [G + 1] (host) -> y [M, N] (written).
void grouped_linear_forward(const Tensor& x, std::span<const Tensor> w, std::span<const std::int64_t> offsets,
                            Tensor& y, GemmPrecision p = GemmPrecision::Fp32, const Stream& stream = Stream(),
                            GroupedImpl impl = GroupedImpl::Auto);

// dy [M, N], x [M, K], w: G tensors [N, K], offsets [G + 1] (host);
// dx [M, K] written unless undefined; dw: G tensors [N, K], each +=.
void grouped_linear_backward(const Tensor& dy, const Tensor& x, std::span<const Tensor> w,
                             std::span<const std::int64_t> offsets, Tensor& dx, std::span<Tensor> dw,
                             GemmPrecision p = GemmPrecision::Fp32, const Stream& stream = Stream(),
                             GroupedImpl impl = GroupedImpl::Auto);

// A SwiGLU MLP's gate and up projections of the same rows: y1 = x W1_g^T and y2 = x W2_g^T per
// group, exactly the two grouped_linear_forward calls (the W lists may differ in N). On CUDA
// with the one launch, x is quantized (rounded) once and both lists' GEMMs share one launch.
void grouped_linear_pair_forward(const Tensor& x, std::span<const Tensor> w1, std::span<const Tensor> w2,
                                 std::span<const std::int64_t> offsets, Tensor& y1, Tensor& y2,
                                 GemmPrecision p = GemmPrecision::Fp32, const Stream& stream = Stream(),
                                 GroupedImpl impl = GroupedImpl::Auto);

// Their backward: dx = dy1_g W1_g + dy2_g W2_g (written unless undefined; exactly the two
// grouped_linear_backward results summed by ops::axpy), dw1[g] and dw2[g] +=. On CUDA with
// the one launch, x^T is quantized (rounded) once, the second Dgrad adds into the first's dx
// in its epilogue (the axpy's bits) and both Wgrads share one launch.
void grouped_linear_pair_backward(const Tensor& dy1, const Tensor& dy2, const Tensor& x, std::span<const Tensor> w1,
                                  std::span<const Tensor> w2, std::span<const std::int64_t> offsets, Tensor& dx,
                                  std::span<Tensor> dw1, std::span<Tensor> dw2, GemmPrecision p = GemmPrecision::Fp32,
                                  const Stream& stream = Stream(), GroupedImpl impl = GroupedImpl::Auto);

}  // namespace crucible::ops
