// kernels/cuda/moe_permute.cu: per-expert counts, the permutation plan (expert-
// contiguous order of the routed (token, slot) pairs) and the weighted un-permute
// (combine) with its backward, on the GPU.
//
// The CUDA twins of moe_expert_counts / moe_permute_plan / moe_unpermute_combine(_backward)
// in kernels/cpu/moe_routing.cpp; all four agree with the CPU bit for bit except
// dtopk_w of the combine backward (an FP64 dot in another order, then rounded to FP32:
// within one FP32 rounding of the CPU). Deterministic, no float atomics:
//   counts   one block per expert counts its matches over all T k indices (a fixed-
//            order integer block sum; no atomics at all).
//   plan     CUB's stable radix sort of (expert, flat index t k + j) pairs on the low
//            ceil(log2 E) bits: within an expert, flat indices (so tokens) stay
//            ascending, the CPU's counting-sort order. rows and position follow from the
//            sorted flat indices; offsets[e] is a binary search of the sorted experts.
//   combine  one block per token: thread 0 orders the token's k slots by position
//            (ties: slot), then each thread adds w * out for its columns in that order
//            with __fmul_rn/__fadd_rn (the CPU's separate roundings: no FMA).
//   backward one block per token: dexpert_out rows are written (each permuted row
//            belongs to one (t, j)), dtopk_w is an FP64 block sum per slot.
// Indices outside their range (experts, positions) are found inside the kernels, which
// print them and trap.
//
// NOTE: memory bound. The combine reads k rows of H floats and one row of y per token
// and writes y: (k + 2) H 4 bytes (0.29 MB per token at k = 8, H = 7168); 16-byte
// accesses when H % 4 == 0 and the rows are aligned.
#include <cub/device/device_radix_sort.cuh>

#include "core/cuda_check.h"
#include "kernels/cuda/cublaslt_context.h"
#include "kernels/cuda/device_utils.cuh"
#include "kernels/cuda/moe_routing_cuda.h"

namespace crucible::cuda {

namespace {

using detail::aligned;
using detail::ceil_div;
using detail::kWarp;
using detail::load_vec;
using detail::store_vec;
using detail::Vec;

constexpr int kThreads = 256;

// Block e: counts[e] = #{i : idx[i] == e}. Block 0 also checks every index.
__global__ void __launch_bounds__(kThreads)
    expert_counts_kernel(const std::int32_t* __restrict__ idx, std::int64_t n, int E,
                         std::int32_t* __restrict__ counts) {
  __shared__ int scratch[kWarp];
  const int e = blockIdx.x;
  int c = 0;
  for (std::int64_t i = threadIdx.x; i < n; i += kThreads) {
    const std::int32_t x = idx[i];
    if (e == 0 && (x < 0 || x >= E))
      CRUCIBLE_DEVICE_FAIL("moe_expert_counts: topk_idx flat element %lld = %d is not an expert in [0, %d)\n",
                           static_cast<long long>(i), x, E);
    c += x == e;
  }
  c = detail::block_sum(c, scratch);
  if (threadIdx.x == 0) counts[e] = c;
}

// Checks the experts and writes the flat indices 0, 1, ..., n - 1 (the sort's values).
__global__ void check_iota_kernel(const std::int32_t* __restrict__ idx, std::int64_t n, int E,
                                  std::int32_t* __restrict__ flat) {
  const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const std::int32_t x = idx[i];
  if (x < 0 || x >= E)
    CRUCIBLE_DEVICE_FAIL("moe_permute_plan: topk_idx flat element %lld = %d is not an expert in [0, %d)\n",
                         static_cast<long long>(i), x, E);
  flat[i] = static_cast<std::int32_t>(i);
}

// Permuted row i holds the pair sorted_flat[i] = t k + j: rows[i] = t, position[t, j] = i.
__global__ void plan_rows_kernel(const std::int32_t* __restrict__ sorted_flat, std::int64_t n, std::int64_t k,
                                 std::int32_t* __restrict__ rows, std::int32_t* __restrict__ position) {
  const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const std::int32_t f = sorted_flat[i];
  rows[i] = static_cast<std::int32_t>(f / k);
  position[f] = static_cast<std::int32_t>(i);
}

// offsets[e] = the first sorted position whose expert is >= e (e = 0..E).
__global__ void plan_offsets_kernel(const std::int32_t* __restrict__ sorted_experts, std::int64_t n, int E,
                                    std::int32_t* __restrict__ offsets) {
  const int e = blockIdx.x * blockDim.x + threadIdx.x;
  if (e > E) return;
  std::int64_t lo = 0, hi = n;
  while (lo < hi) {
    const std::int64_t mid = (lo + hi) / 2;
    if (sorted_experts[mid] < e) lo = mid + 1;
    else hi = mid;
  }
  offsets[e] = static_cast<std::int32_t>(lo);
}

// Thread 0 loads the token's k (position, weight) pairs, checks the positions and orders
// them by (position, slot) into shared memory: pos_s [k] i32, w_s [k] f32.
__device__ void load_sorted_slots(const std::int32_t* pos, const float* w, std::int64_t t, int k, std::int64_t N,
                                  std::int32_t* pos_s, float* w_s) {
  if (threadIdx.x != 0) return;
  for (int j = 0; j < k; ++j) {
    const std::int32_t p = pos[t * k + j];
    if (p < 0 || p >= N)
      CRUCIBLE_DEVICE_FAIL("moe_unpermute_combine: position[%lld, %d] = %d is not a permuted row in [0, %lld)\n",
                           static_cast<long long>(t), j, p, static_cast<long long>(N));
    // Insertion: stable, so equal positions keep slot order.
    int r = j;
    while (r > 0 && pos_s[r - 1] > p) {
      pos_s[r] = pos_s[r - 1];
      w_s[r] = w_s[r - 1];
      --r;
    }
    pos_s[r] = p;
    w_s[r] = w[t * k + j];
  }
}

// One block per token: y[t] += w * out[pos] over the slots in ascending position.
// Dynamic shared memory: k i32 + k f32.
template <int kVec>
__global__ void __launch_bounds__(kThreads)
    combine_kernel(const float* __restrict__ out, const std::int32_t* __restrict__ pos,
                   const float* __restrict__ w, float* __restrict__ y, int k, std::int64_t H, std::int64_t N) {
  extern __shared__ std::int32_t slots[];
  std::int32_t* pos_s = slots;
  float* w_s = reinterpret_cast<float*>(slots + k);
  const std::int64_t t = blockIdx.x;
  load_sorted_slots(pos, w, t, k, N, pos_s, w_s);
  __syncthreads();
  float* yr = y + t * H;
  for (std::int64_t c = threadIdx.x * kVec; c < H; c += kThreads * kVec) {
    Vec<kVec> acc = load_vec<kVec>(yr + c);
    for (int r = 0; r < k; ++r) {
      const float a = w_s[r];
      const Vec<kVec> o = load_vec<kVec>(out + static_cast<std::int64_t>(pos_s[r]) * H + c);
#pragma unroll
      for (int v = 0; v < kVec; ++v) acc.v[v] = __fadd_rn(acc.v[v], __fmul_rn(a, o.v[v]));
    }
    store_vec<kVec>(yr + c, acc);
  }
}

// One block per token: for each slot j, dexpert_out[pos] = w dy[t] and dtopk_w[t, j] =
// <dy[t], out[pos]> (FP64 block sum).
template <int kVec>
__global__ void __launch_bounds__(kThreads)
    combine_backward_kernel(const float* __restrict__ dy, const float* __restrict__ out,
                            const std::int32_t* __restrict__ pos, const float* __restrict__ w,
                            float* __restrict__ dout, float* __restrict__ dw, int k, std::int64_t H,
                            std::int64_t N) {
  __shared__ double scratch[kWarp];
  const std::int64_t t = blockIdx.x;
  const float* g = dy + t * H;
  for (int j = 0; j < k; ++j) {
    const std::int32_t p = pos[t * k + j];
    if (p < 0 || p >= N) {
      if (threadIdx.x == 0)
        CRUCIBLE_DEVICE_FAIL(
            "moe_unpermute_combine_backward: position[%lld, %d] = %d is not a permuted row in [0, %lld)\n",
            static_cast<long long>(t), j, p, static_cast<long long>(N));
      return;
    }
    const float a = w[t * k + j];
    const float* o = out + static_cast<std::int64_t>(p) * H;
    float* d = dout + static_cast<std::int64_t>(p) * H;
    double dot = 0.0;
    for (std::int64_t c = threadIdx.x * kVec; c < H; c += kThreads * kVec) {
      const Vec<kVec> gv = load_vec<kVec>(g + c), ov = load_vec<kVec>(o + c);
      Vec<kVec> dv;
#pragma unroll
      for (int v = 0; v < kVec; ++v) {
        dot += static_cast<double>(gv.v[v]) * ov.v[v];
        dv.v[v] = a * gv.v[v];
      }
      store_vec<kVec>(d + c, dv);
    }
    dot = detail::block_sum(dot, scratch);
    if (threadIdx.x == 0) dw[t * k + j] = static_cast<float>(dot);
  }
}

int key_bits(std::int64_t E) {
  int bits = 1;
  while ((std::int64_t{1} << bits) < E) ++bits;
  return bits;
}

}  // namespace

void moe_expert_counts(const std::int32_t* topk_idx, std::int64_t n, std::int64_t E, std::int32_t* counts,
                       void* stream) {
  expert_counts_kernel<<<static_cast<unsigned>(E), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      topk_idx, n, static_cast<int>(E), counts);
  CHECK_CUDA_LAUNCH();
}

void moe_permute_plan(const std::int32_t* topk_idx, std::int64_t T, std::int64_t k, std::int64_t E,
                      std::int32_t* offsets, std::int32_t* rows, std::int32_t* position, void* stream) {
  auto st = static_cast<cudaStream_t>(stream);
  const std::int64_t n = T * k;
  if (n > 0) {
    const int count = static_cast<int>(n), bits = key_bits(E);
    std::size_t cub_bytes = 0;
    CHECK_CUDA(cub::DeviceRadixSort::SortPairs(nullptr, cub_bytes, topk_idx, static_cast<std::int32_t*>(nullptr),
                                               static_cast<const std::int32_t*>(nullptr),
                                               static_cast<std::int32_t*>(nullptr), count, 0, bits, st));
    // Scratch: flat indices, sorted flat indices, sorted experts [n] each, CUB's storage.
    const std::size_t ints = (static_cast<std::size_t>(n) * sizeof(std::int32_t) + 255) / 256 * 256;
    DeviceScratch scratch(3 * ints + cub_bytes, st);
    auto* base = scratch.as<char>();
    auto* flat = reinterpret_cast<std::int32_t*>(base);
    auto* sorted_flat = reinterpret_cast<std::int32_t*>(base + ints);
    auto* sorted_experts = reinterpret_cast<std::int32_t*>(base + 2 * ints);
    const auto blocks = static_cast<unsigned>(ceil_div(n, kThreads));
    check_iota_kernel<<<blocks, kThreads, 0, st>>>(topk_idx, n, static_cast<int>(E), flat);
    CHECK_CUDA_LAUNCH();
    CHECK_CUDA(cub::DeviceRadixSort::SortPairs(base + 3 * ints, cub_bytes, topk_idx, sorted_experts, flat,
                                               sorted_flat, count, 0, bits, st));
    plan_rows_kernel<<<blocks, kThreads, 0, st>>>(sorted_flat, n, k, rows, position);
    CHECK_CUDA_LAUNCH();
    plan_offsets_kernel<<<static_cast<unsigned>(ceil_div(E + 1, kThreads)), kThreads, 0, st>>>(
        sorted_experts, n, static_cast<int>(E), offsets);
    CHECK_CUDA_LAUNCH();
  } else {
    CHECK_CUDA(cudaMemsetAsync(offsets, 0, static_cast<std::size_t>(E + 1) * sizeof(std::int32_t), st));
  }
}

void moe_unpermute_combine(const float* expert_out, const std::int32_t* position, const float* topk_w, float* y,
                           std::int64_t T, std::int64_t k, std::int64_t H, std::int64_t N, void* stream) {
  if (T == 0 || H == 0 || k == 0) return;
  auto st = static_cast<cudaStream_t>(stream);
  const std::size_t smem = static_cast<std::size_t>(k) * (sizeof(std::int32_t) + sizeof(float));
  const auto grid = static_cast<unsigned>(T);
  const int ki = static_cast<int>(k);
  if (H % 4 == 0 && aligned(expert_out, 16) && aligned(y, 16))
    combine_kernel<4><<<grid, kThreads, smem, st>>>(expert_out, position, topk_w, y, ki, H, N);
  else
    combine_kernel<1><<<grid, kThreads, smem, st>>>(expert_out, position, topk_w, y, ki, H, N);
  CHECK_CUDA_LAUNCH();
}

void moe_unpermute_combine_backward(const float* dy, const float* expert_out, const std::int32_t* position,
                                    const float* topk_w, float* dexpert_out, float* dtopk_w, std::int64_t T,
                                    std::int64_t k, std::int64_t H, std::int64_t N, void* stream) {
  if (T == 0 || k == 0) return;
  auto st = static_cast<cudaStream_t>(stream);
  const auto grid = static_cast<unsigned>(T);
  const int ki = static_cast<int>(k);
  if (H % 4 == 0 && aligned(dy, 16) && aligned(expert_out, 16) && aligned(dexpert_out, 16))
    combine_backward_kernel<4><<<grid, kThreads, 0, st>>>(dy, expert_out, position, topk_w, dexpert_out, dtopk_w,
                                                          ki, H, N);
  else
    combine_backward_kernel<1><<<grid, kThreads, 0, st>>>(dy, expert_out, position, topk_w, dexpert_out, dtopk_w,
                                                          ki, H, N);
  CHECK_CUDA_LAUNCH();
}

}  // namespace crucible::cuda
