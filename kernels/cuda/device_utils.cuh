// kernels/cuda/device_utils.cuh: small device helpers shared by the elementwise and
// optimizer kernels: fixed-order warp/block sums, 16-byte vector access, and a
// kernel-side fatal error for value checks the host cannot afford to make.
//
// Invariant: every reduction here has an order fixed by blockDim alone (xor-butterfly
// in a warp, then the warps' sums added in ascending warp order), so a result never
// depends on scheduling: the same launch gives the same bits on every run.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>

namespace crucible::cuda::detail {

constexpr int kWarp = 32;

inline std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

// True when p is aligned to `bytes` (vector paths need 16-byte aligned rows).
inline bool aligned(const void* p, std::size_t bytes) {
  return reinterpret_cast<std::uintptr_t>(p) % bytes == 0;
}

// Sum over the warp; every lane returns the same bits (float addition commutes, so
// the two lanes of each butterfly pair compute the same value).
template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
#pragma unroll
  for (int offset = kWarp / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// Sum over the block, returned to every thread. `scratch` holds >= 32 T in shared
// memory; every thread of the block must call (it synchronizes twice, the second time
// so that the next call may reuse `scratch`).
template <typename T>
__device__ __forceinline__ T block_sum(T v, T* scratch) {
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const int n_warps = (blockDim.x + kWarp - 1) / kWarp;
  v = warp_sum(v);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  T total = 0;
  for (int w = 0; w < n_warps; ++w) total += scratch[w];
  __syncthreads();
  return total;
}

// Max over the block, returned to every thread (fmaxf: a NaN loses to any number, as
// std::max from -inf on the CPU ignores NaNs). `scratch` holds >= 32 floats in shared
// memory; every thread of the block must call (it synchronizes twice, as block_sum).
__device__ __forceinline__ float block_max(float v, float* scratch) {
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const int n_warps = (blockDim.x + kWarp - 1) / kWarp;
#pragma unroll
  for (int offset = kWarp / 2; offset > 0; offset /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float total = scratch[0];
  for (int w = 1; w < n_warps; ++w) total = fmaxf(total, scratch[w]);
  __syncthreads();
  return total;
}

// kVec consecutive floats: one 16-byte access for kVec = 4 (p 16-byte aligned).
template <int kVec>
struct Vec {
  float v[kVec];
};

template <int kVec>
__device__ __forceinline__ Vec<kVec> load_vec(const float* p) {
  Vec<kVec> r;
  if constexpr (kVec == 4) {
    const float4 q = *reinterpret_cast<const float4*>(p);
    r.v[0] = q.x, r.v[1] = q.y, r.v[2] = q.z, r.v[3] = q.w;
  } else {
#pragma unroll
    for (int j = 0; j < kVec; ++j) r.v[j] = p[j];
  }
  return r;
}

template <int kVec>
__device__ __forceinline__ void store_vec(float* p, const Vec<kVec>& r) {
  if constexpr (kVec == 4) {
    *reinterpret_cast<float4*>(p) = make_float4(r.v[0], r.v[1], r.v[2], r.v[3]);
  } else {
#pragma unroll
    for (int j = 0; j < kVec; ++j) p[j] = r.v[j];
  }
}

// A bad value found inside a kernel (a token id or a position out of range): print
// what and where, then trap, which fails the launch and every later CUDA call with
// cudaErrorLaunchFailure. NOTE: checking such values on the host would cost a
// device-to-host copy and a synchronization per call; the CPU twin throws instead.
#define CRUCIBLE_DEVICE_FAIL(...) \
  do {                            \
    printf(__VA_ARGS__);          \
    __trap();                     \
  } while (0)

}  // namespace crucible::cuda::detail
