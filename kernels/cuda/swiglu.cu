// kernels/cuda/swiglu.cu: SwiGLU forward and backward on the GPU (FP32, elementwise).
//
// The CUDA twin of swiglu_forward/backward in kernels/cpu/elementwise.cpp, with the
// same expression tree per element (multiply-adds spelled with __fmul_rn/__fadd_rn
// so that nvcc does not fuse them into FMAs the CPU does not do):
//   s = 1 / (1 + exp(-g));  out = (g s) u;  dup = dout (g s);
//   dgate = (dout u) (s (1 + g (1 - s)))
// The one difference is exp: CUDA's expf (2 ulp) against the host libm's, so results
// agree to a few ulps, not bit for bit (tests/gpu/test_elementwise.cpp bounds it).
// Same special values: g = -inf gives s = 0 and g s = NaN on both sides.
//
// NOTE: memory bound (forward reads 8 B and writes 4 B per element, backward reads
// 12 B and writes 8 B). Four elements per thread with 16-byte accesses when every
// pointer is 16-byte aligned; the tail (n % 4) and unaligned views use scalar accesses.
#include "core/cuda_check.h"
#include "kernels/cuda/device_utils.cuh"
#include "kernels/cuda/elementwise_cuda.h"

namespace crucible::cuda {

namespace {

using detail::aligned;
using detail::ceil_div;
using detail::load_vec;
using detail::store_vec;
using detail::Vec;

constexpr int kThreads = 256;
constexpr int kPerThread = 4;

__device__ __forceinline__ float sigmoid(float g) { return 1.0f / __fadd_rn(1.0f, expf(-g)); }

__device__ __forceinline__ float swiglu_out(float g, float u) {
  return __fmul_rn(__fmul_rn(g, sigmoid(g)), u);
}

__device__ __forceinline__ void swiglu_grads(float go, float g, float u, float& dg, float& du) {
  const float s = sigmoid(g);
  du = __fmul_rn(go, __fmul_rn(g, s));
  const float dsilu = __fmul_rn(s, __fadd_rn(1.0f, __fmul_rn(g, __fsub_rn(1.0f, s))));
  dg = __fmul_rn(__fmul_rn(go, u), dsilu);
}

// Thread i owns elements [4 i, 4 i + 4) of [n]; kVec4 = all pointers 16-byte aligned.
template <bool kVec4>
__global__ void __launch_bounds__(kThreads)
    swiglu_forward_kernel(const float* __restrict__ gate, const float* __restrict__ up,
                          float* __restrict__ out, std::int64_t n) {
  const std::int64_t i0 = (static_cast<std::int64_t>(blockIdx.x) * kThreads + threadIdx.x) * kPerThread;
  if (kVec4 && i0 + kPerThread <= n) {
    const Vec<4> g = load_vec<4>(gate + i0), u = load_vec<4>(up + i0);
    Vec<4> o;
#pragma unroll
    for (int j = 0; j < 4; ++j) o.v[j] = swiglu_out(g.v[j], u.v[j]);
    store_vec<4>(out + i0, o);
  } else {
    for (std::int64_t i = i0; i < min(n, i0 + kPerThread); ++i) out[i] = swiglu_out(gate[i], up[i]);
  }
}

template <bool kVec4>
__global__ void __launch_bounds__(kThreads)
    swiglu_backward_kernel(const float* __restrict__ dout, const float* __restrict__ gate,
                           const float* __restrict__ up, float* __restrict__ dgate, float* __restrict__ dup,
                           std::int64_t n) {
  const std::int64_t i0 = (static_cast<std::int64_t>(blockIdx.x) * kThreads + threadIdx.x) * kPerThread;
  if (kVec4 && i0 + kPerThread <= n) {
    const Vec<4> go = load_vec<4>(dout + i0), g = load_vec<4>(gate + i0), u = load_vec<4>(up + i0);
    Vec<4> dg, du;
#pragma unroll
    for (int j = 0; j < 4; ++j) swiglu_grads(go.v[j], g.v[j], u.v[j], dg.v[j], du.v[j]);
    store_vec<4>(dgate + i0, dg);
    store_vec<4>(dup + i0, du);
  } else {
    for (std::int64_t i = i0; i < min(n, i0 + kPerThread); ++i)
      swiglu_grads(dout[i], gate[i], up[i], dgate[i], dup[i]);
  }
}

unsigned grid_for(std::int64_t n) { return static_cast<unsigned>(ceil_div(n, kThreads * kPerThread)); }

}  // namespace

void swiglu_forward(const float* gate, const float* up, float* out, std::int64_t n, void* stream) {
  if (n == 0) return;
  auto st = static_cast<cudaStream_t>(stream);
  if (aligned(gate, 16) && aligned(up, 16) && aligned(out, 16))
    swiglu_forward_kernel<true><<<grid_for(n), kThreads, 0, st>>>(gate, up, out, n);
  else
    swiglu_forward_kernel<false><<<grid_for(n), kThreads, 0, st>>>(gate, up, out, n);
  CHECK_CUDA_LAUNCH();
}

void swiglu_backward(const float* dout, const float* gate, const float* up, float* dgate, float* dup,
                     std::int64_t n, void* stream) {
  if (n == 0) return;
  auto st = static_cast<cudaStream_t>(stream);
  if (aligned(dout, 16) && aligned(gate, 16) && aligned(up, 16) && aligned(dgate, 16) && aligned(dup, 16))
    swiglu_backward_kernel<true><<<grid_for(n), kThreads, 0, st>>>(dout, gate, up, dgate, dup, n);
  else
    swiglu_backward_kernel<false><<<grid_for(n), kThreads, 0, st>>>(dout, gate, up, dgate, dup, n);
  CHECK_CUDA_LAUNCH();
}

}  // namespace crucible::cuda
