// kernels/linear.h: y = x W^T (+ b) and its backward, in fp32, bf16 or fp8.
//
// Precision modes (DESIGN.md §3, reference/deepseek_v3_fp8.md §4):
//   Fp32  plain FP32 GEMMs (BLAS).
//   Bf16  both operands rounded to BF16 (RNE), products accumulated in FP32.
//   Fp8   the DeepSeek-V3 recipe, emulated bit-exactly on the CPU: every GEMM
//         quantizes its activation-like operand in 1x128 tiles along K and its
//         weight in 128x128 blocks (E4M3, FP32 scales = amax/448), multiplies the
//         codes per 128-wide K block in FP32 and promotes each block's partial sum
//         with scale_a * scale_b into an FP32 accumulator, K block by K block in
//         ascending order (fixed order: deterministic).
//           Fprop  y  = x W^T    x: 1x128 tiles over `in`, W: 128x128 blocks
//           Dgrad  dx = dy W     dy: 1x128 tiles over `out`, W: 128x128 blocks (of W^T)
//           Wgrad  dW = dy^T x   dy^T and x^T: 1x128 tiles along tokens (K = tokens)
// Gradient contract: activation gradients are written (=), parameter gradients
// accumulated (+=).
//
// Devices: all tensors of one call live on one device. CPU tensors run the reference
// (kernels/cpu/linear.cpp; `stream` is ignored); CUDA tensors run the cuBLASLt twin
// (kernels/cuda/linear_cuda.h) on `stream`, asynchronously. The CUDA twin takes beta 0 or
// 1 only, and its Fp8 mode needs a Hopper GPU (compute capability 9.x).
#pragma once

#include "core/stream.h"
#include "core/tensor.h"

namespace crucible::ops {

enum class GemmPrecision : std::uint8_t { Fp32, Bf16, Fp8 };

// x [T, in], w [out, in], bias [out] or undefined -> y [T, out] (written).
void linear_forward(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y,
                    GemmPrecision p = GemmPrecision::Fp32, const Stream& stream = Stream());

// dy [T, out]; dx [T, in] written unless undefined; dw [out, in] +=; dbias [out] +=
// unless undefined.
void linear_backward(const Tensor& dy, const Tensor& x, const Tensor& w, Tensor& dx, Tensor& dw,
                     Tensor& dbias, GemmPrecision p = GemmPrecision::Fp32,
                     const Stream& stream = Stream());

// Two linears of one input (MLA's q_a and kv_a, a SwiGLU's gate and up), no biases:
//   forward   y1 = x W1^T, y2 = x W2^T (written)
//   backward  dx = dy1 W1 + dy2 W2 (written: the first Dgrad, then the second added, as
//             linear_backward twice and ops::axpy would give), dw1 += dy1^T x, dw2 += dy2^T x
// with the bits of the single ops. On CUDA, x's GEMM form (its BF16 copy, or its FP8 tiles
// and, for Wgrad, its transposed tiles) is made once for both, and the second Dgrad adds
// into dx in the GEMM's epilogue; the CPU runs the single ops.
void linear_pair_forward(const Tensor& x, const Tensor& w1, const Tensor& w2, Tensor& y1, Tensor& y2,
                         GemmPrecision p = GemmPrecision::Fp32, const Stream& stream = Stream());
void linear_pair_backward(const Tensor& dy1, const Tensor& dy2, const Tensor& x, const Tensor& w1, const Tensor& w2,
                          Tensor& dx, Tensor& dw1, Tensor& dw2, GemmPrecision p = GemmPrecision::Fp32,
                          const Stream& stream = Stream());

// C [M, N] = A [M, K] * B [N, K]^T (the GEMM all of the above reduce to), in p.
// beta = 0 overwrites C, beta = 1 accumulates into it.
void gemm_nt(const Tensor& a, const Tensor& b, Tensor& c, float beta, GemmPrecision p,
             const Stream& stream = Stream());

// While a WeightCacheScope is alive on a thread, the weights (`w`) that this thread passes
// to linear_forward / linear_backward and the grouped linear ops (kernels/grouped_linear.h)
// are taken to be constant: on CUDA, each weight's GEMM form (its BF16 copy, or its FP8
// codes and 128x128 block scales for Fprop and, transposed, for Dgrad) is made on first use
// and reused by every later call until the outermost scope ends, which frees them. Results
// are bit-identical with and without a scope (quantization and rounding are deterministic);
// only the repeated casts and quantizations go. The CPU reference ignores scopes.
// Open one around work that reads fixed weights many times: a training step's forwards and
// backwards, a generate call (the optimizer refuses to step inside one). gemm_nt is never
// cached: its b need not be a weight.
// NOTE: the cache is keyed by the weight's address and shape, so a weight must not be
// changed, nor its memory reused for another weight, while a scope is open.
class WeightCacheScope {
 public:
  WeightCacheScope();
  ~WeightCacheScope();
  WeightCacheScope(const WeightCacheScope&) = delete;
  WeightCacheScope& operator=(const WeightCacheScope&) = delete;
};

// Whether a WeightCacheScope is open on this thread.
bool weight_cache_active();

}  // namespace crucible::ops
