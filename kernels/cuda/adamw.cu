// kernels/cuda/adamw.cu: the AdamW update (FP32 or BF16 moments) and Σ x^2 on the GPU.
//
// The CUDA twin of kernels/cpu/adamw.cpp. The update takes the same host-computed
// scalars (ops::adamw_scalars) and evaluates the same expression tree per element:
//   g' = g grad_scale;  m = b1 m + (1 - b1) g';  v = b2 v + ((1 - b2) g') g'
//   p = p - ((step_size m) / (sqrt(v) inv_sqrt_bc2 + eps) + decay p)
// with every operation rounded on its own (__fmul_rn, __fadd_rn, __fdiv_rn, __fsqrt_rn:
// IEEE round-to-nearest, never contracted into an FMA, which the CPU build does not
// emit either). BF16 moments are widened exactly, updated in FP32 and rounded back to
// nearest even with core/numerics.h's rule (NaN -> 0x7FC0 with its sign), so the
// parameters and both moments equal the CPU's bit for bit.
//
// Σ x^2 accumulates exact float squares in double: a fixed grid (a function of n
// only), each block a fixed-order sum, then one block adds the block sums in order.
// Deterministic, but not the CPU's sequential order (tests bound the difference).
//
// NOTE: memory bound (FP32 moments: 16 B read + 12 B written per element; BF16: 12 B
// + 8 B). Four elements per thread with 16-byte (8-byte for BF16) accesses when the
// pointers allow; scalar accesses otherwise and for the tail.
#include <algorithm>

#include "core/cuda_check.h"
#include "kernels/cuda/adamw_cuda.h"
#include "kernels/cuda/device_utils.cuh"

namespace crucible::cuda {

namespace {

using detail::aligned;
using detail::ceil_div;
using detail::load_vec;
using detail::store_vec;
using detail::Vec;

constexpr int kThreads = 256;
constexpr int kPerThread = 4;

__device__ __forceinline__ float widen(float x) { return x; }
__device__ __forceinline__ float widen(std::uint16_t bits) {
  return __uint_as_float(static_cast<std::uint32_t>(bits) << 16);
}

// float -> BF16 bits, round to nearest even; core/numerics.cpp f32_to_bf16 exactly:
// NaN -> sign | 0x7FC0; a carry out of the largest binade gives inf (0x7F80).
__device__ __forceinline__ std::uint16_t to_bf16(float x) {
  const std::uint32_t bits = __float_as_uint(x);
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u)
    return static_cast<std::uint16_t>(((bits >> 16) & 0x8000u) | 0x7FC0u);
  return static_cast<std::uint16_t>((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
}

__device__ __forceinline__ void narrow(float x, float& out) { out = x; }
__device__ __forceinline__ void narrow(float x, std::uint16_t& out) { out = to_bf16(x); }

__device__ __forceinline__ void adamw_element(float& p, float g, float& m, float& v,
                                              const ops::AdamWScalars& k) {
  const float gi = __fmul_rn(g, k.grad_scale);
  m = __fadd_rn(__fmul_rn(k.beta1, m), __fmul_rn(k.one_minus_beta1, gi));
  v = __fadd_rn(__fmul_rn(k.beta2, v), __fmul_rn(__fmul_rn(k.one_minus_beta2, gi), gi));
  const float denom = __fadd_rn(__fmul_rn(__fsqrt_rn(v), k.inv_sqrt_bc2), k.eps);
  p = __fsub_rn(p, __fadd_rn(__fdiv_rn(__fmul_rn(k.step_size, m), denom), __fmul_rn(k.decay, p)));
}

// Four moments: one 16-byte (FP32) or 8-byte (BF16) access.
template <typename M>
struct Moments4 {
  M v[4];
};

template <typename M>
__device__ __forceinline__ Moments4<M> load_moments(const M* p) {
  Moments4<M> r;
  if constexpr (sizeof(M) == 4) {
    const float4 q = *reinterpret_cast<const float4*>(p);
    r.v[0] = q.x, r.v[1] = q.y, r.v[2] = q.z, r.v[3] = q.w;
  } else {
    const uint2 q = *reinterpret_cast<const uint2*>(p);
    r.v[0] = static_cast<M>(q.x & 0xFFFFu), r.v[1] = static_cast<M>(q.x >> 16);
    r.v[2] = static_cast<M>(q.y & 0xFFFFu), r.v[3] = static_cast<M>(q.y >> 16);
  }
  return r;
}

template <typename M>
__device__ __forceinline__ void store_moments(M* p, const Moments4<M>& r) {
  if constexpr (sizeof(M) == 4) {
    *reinterpret_cast<float4*>(p) = make_float4(r.v[0], r.v[1], r.v[2], r.v[3]);
  } else {
    *reinterpret_cast<uint2*>(p) =
        make_uint2(static_cast<std::uint32_t>(r.v[0]) | (static_cast<std::uint32_t>(r.v[1]) << 16),
                   static_cast<std::uint32_t>(r.v[2]) | (static_cast<std::uint32_t>(r.v[3]) << 16));
  }
}

// Thread i owns elements [4 i, 4 i + 4) of [n]. M = float (FP32 moments) or
// std::uint16_t (BF16 bits). kVec: every pointer aligned for the vector accesses.
template <typename M, bool kVec>
__global__ void __launch_bounds__(kThreads)
    adamw_kernel(float* __restrict__ param, const float* __restrict__ grad, M* __restrict__ m,
                 M* __restrict__ v, std::int64_t n, ops::AdamWScalars k) {
  const std::int64_t i0 = (static_cast<std::int64_t>(blockIdx.x) * kThreads + threadIdx.x) * kPerThread;
  if (kVec && i0 + kPerThread <= n) {
    Vec<4> p = load_vec<4>(param + i0);
    const Vec<4> g = load_vec<4>(grad + i0);
    Moments4<M> mm = load_moments(m + i0), vv = load_moments(v + i0);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      float mj = widen(mm.v[j]), vj = widen(vv.v[j]);
      adamw_element(p.v[j], g.v[j], mj, vj, k);
      narrow(mj, mm.v[j]);
      narrow(vj, vv.v[j]);
    }
    store_vec<4>(param + i0, p);
    store_moments(m + i0, mm);
    store_moments(v + i0, vv);
  } else {
    for (std::int64_t i = i0; i < min(n, i0 + kPerThread); ++i) {
      float mi = widen(m[i]), vi = widen(v[i]);
      adamw_element(param[i], grad[i], mi, vi, k);
      narrow(mi, m[i]);
      narrow(vi, v[i]);
    }
  }
}

template <typename M>
void launch_adamw(float* param, const float* grad, M* m, M* v, std::int64_t n, const ops::AdamWScalars& k,
                  void* stream) {
  if (n == 0) return;
  auto st = static_cast<cudaStream_t>(stream);
  const auto grid = static_cast<unsigned>(ceil_div(n, kThreads * kPerThread));
  const std::size_t m_align = 4 * sizeof(M);
  if (aligned(param, 16) && aligned(grad, 16) && aligned(m, m_align) && aligned(v, m_align))
    adamw_kernel<M, true><<<grid, kThreads, 0, st>>>(param, grad, m, v, n, k);
  else
    adamw_kernel<M, false><<<grid, kThreads, 0, st>>>(param, grad, m, v, n, k);
  CHECK_CUDA_LAUNCH();
}

// Σ x^2: at most kSumBlocks blocks of grid-stride partial sums, then one block.
constexpr int kSumBlocks = 1024;

__global__ void __launch_bounds__(kThreads)
    sum_squares_partial_kernel(const float* __restrict__ x, std::int64_t n, double* __restrict__ partial) {
  __shared__ double scratch[detail::kWarp];
  double s = 0.0;
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * kThreads;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * kThreads + threadIdx.x; i < n; i += stride) {
    const double xi = x[i];
    s += xi * xi;  // the square of a float is exact in double
  }
  s = detail::block_sum(s, scratch);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

__global__ void __launch_bounds__(kThreads)
    sum_squares_final_kernel(const double* __restrict__ partial, int n_partials, double* __restrict__ out) {
  __shared__ double scratch[detail::kWarp];
  double s = 0.0;
  for (int i = threadIdx.x; i < n_partials; i += kThreads) s += partial[i];
  s = detail::block_sum(s, scratch);
  if (threadIdx.x == 0) *out = s;
}

}  // namespace

void adamw_update_f32(float* param, const float* grad, float* m, float* v, std::int64_t n,
                      const ops::AdamWScalars& k, void* stream) {
  launch_adamw(param, grad, m, v, n, k, stream);
}

void adamw_update_bf16(float* param, const float* grad, std::uint16_t* m, std::uint16_t* v, std::int64_t n,
                       const ops::AdamWScalars& k, void* stream) {
  launch_adamw(param, grad, m, v, n, k, stream);
}

double sum_squares(const float* x, std::int64_t n, void* stream) {
  if (n == 0) return 0.0;
  auto st = static_cast<cudaStream_t>(stream);
  // A function of n only: about 8 elements per thread, at most kSumBlocks blocks.
  const int blocks = static_cast<int>(std::min<std::int64_t>(kSumBlocks, ceil_div(n, kThreads * 8)));
  double* partial = nullptr;  // [blocks + 1]: the block sums, then the total
  CHECK_CUDA(cudaMallocAsync(reinterpret_cast<void**>(&partial), (blocks + 1) * sizeof(double), st));
  sum_squares_partial_kernel<<<blocks, kThreads, 0, st>>>(x, n, partial);
  CHECK_CUDA_LAUNCH();
  sum_squares_final_kernel<<<1, kThreads, 0, st>>>(partial, blocks, partial + blocks);
  CHECK_CUDA_LAUNCH();
  double total = 0.0;
  CHECK_CUDA(cudaMemcpyAsync(&total, partial + blocks, sizeof(double), cudaMemcpyDeviceToHost, st));
  CHECK_CUDA(cudaFreeAsync(partial, st));
  CHECK_CUDA(cudaStreamSynchronize(st));
  return total;
}

}  // namespace crucible::cuda
