// kernels/cuda/sampling.cu: next-token sampling (temperature, top-k, top-p) and the
// token's untempered log-prob on the GPU.
//
// The CUDA twin of kernels/cpu/sampling.cpp (contract: kernels/sampling.h):
//   greedy   one block per row: the argmax (ties: lower id) and the row's FP64
//            sum of exp(l - max), no scratch, no sort.
//   sampled  rows in groups of at most kMaxSortItems logits:
//            1. CUB's segmented radix sort of (logit, id) pairs, descending, one segment
//               per row. Radix sort is stable and the ids enter as 0, 1, ..., V - 1,
//               so ties keep the lower id first (the CPU's stable_sort order); CUB
//               orders -0.0 and +0.0 as equal, as the CPU's comparison does.
//            2. one block per row: p_i = exp((l_i - l_0) / temperature) in FP64 (the
//               CPU's division, not a reciprocal), inclusive prefix sums over chunks of
//               kChunk candidates (each thread's kItems sequentially, a CUB block scan
//               of the threads' sums, a running carry), recomputed identically in each
//               of up to three passes: the total S over the K = min(V, top_k) candidates;
//               the first prefix >= top_p S (top-p); the first prefix > u S_kept
//               (the draw). The last two stop at the chunk holding their answer.
//            The log-prob's sum of exp(l - max) runs over the unsorted row as in the
//            greedy case, so both paths give the same log-prob for the same token.
// What differs from the CPU: the prefix sums' order (the CPU walks u S - p_0 - p_1 - ...
// sequentially) and the last ulp of the FP64 exp, so a sampled token can differ where
// u S lies within a few ulp of S of a candidate boundary; the log-prob's FP64 sum order.
// Deterministic: no atomics; every reduction and scan order is fixed by kThreads.
//
// NOTE: the sort dominates. 128 rows of DeepSeek-V3's V = 129280 are 16.5M pairs, one
// segment per block over ~4 radix passes of 8 bytes per pair in and out (~1 GB of
// traffic, well under a millisecond on an H100); the row passes read the sorted row
// (0.5 MB, L2-resident) up to three times with ~40 FP64 operations per logit. The
// host sampler this replaces took ~1 s per token at that shape.
#include <cub/block/block_scan.cuh>
#include <cub/device/device_segmented_radix_sort.cuh>
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cmath>

#include "core/cuda_check.h"
#include "core/error.h"
#include "kernels/cuda/cublaslt_context.h"
#include "kernels/cuda/device_utils.cuh"
#include "kernels/cuda/sampling_cuda.h"

namespace crucible::cuda {

namespace {

using detail::ceil_div;
using detail::kWarp;

constexpr int kThreads = 512;
constexpr int kItems = 4;                     // consecutive candidates per thread in a chunk
constexpr int kChunk = kThreads * kItems;     // candidates per block scan
constexpr int kNone = INT_MAX;                // "no index" in searches
constexpr unsigned kFull = 0xffffffffu;
// NOTE: rows are sorted in groups of at most 2^24 logits: that bounds the scratch (20
// bytes per logit with CUB's alternate buffers: 320 MiB) and keeps CUB's int item count
// in range; 128 rows of DeepSeek-V3's 129280 fit one group.
constexpr std::int64_t kMaxSortItems = std::int64_t(1) << 24;

using BlockScan = cub::BlockScan<double, kThreads>;

// Min over the block, returned to every thread (scratch: >= 32 ints in shared memory).
__device__ __forceinline__ int block_min(int v, int* scratch) {
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
#pragma unroll
  for (int o = kWarp / 2; o > 0; o /= 2) v = min(v, __shfl_xor_sync(kFull, v, o));
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  int r = scratch[0];
  for (int w = 1; w < kThreads / kWarp; ++w) r = min(r, scratch[w]);
  __syncthreads();
  return r;
}

// (value, id) a beats b: higher value, then lower id.
__device__ __forceinline__ bool beats(float av, int ai, float bv, int bi) { return av > bv || (av == bv && ai < bi); }

// The row's argmax (ties: lower id) to every thread. scratch: >= 32 each.
__device__ int block_argmax(const float* row, int V, float* vscratch, int* iscratch) {
  float bv = -INFINITY;
  int bi = kNone;
  for (int j = threadIdx.x; j < V; j += kThreads)  // ascending ids: only a strictly larger value wins
    if (bi == kNone || row[j] > bv) bv = row[j], bi = j;
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
#pragma unroll
  for (int o = kWarp / 2; o > 0; o /= 2) {
    const float ov = __shfl_xor_sync(kFull, bv, o);
    const int oi = __shfl_xor_sync(kFull, bi, o);
    if (beats(ov, oi, bv, bi)) bv = ov, bi = oi;
  }
  if (lane == 0) vscratch[warp] = bv, iscratch[warp] = bi;
  __syncthreads();
  bv = vscratch[0], bi = iscratch[0];
  for (int w = 1; w < kThreads / kWarp; ++w)
    if (beats(vscratch[w], iscratch[w], bv, bi)) bv = vscratch[w], bi = iscratch[w];
  __syncthreads();
  return bi;
}

// sum_j exp(l_j - mx) over the row in FP64, to every thread.
__device__ double row_sum_exp(const float* row, int V, double mx, double* scratch) {
  double s = 0;
  for (int j = threadIdx.x; j < V; j += kThreads) s += exp(static_cast<double>(row[j]) - mx);
  return detail::block_sum(s, scratch);
}

// The CPU's log_softmax_at: l[token] - mx - log(sum), in FP64, to FP32.
__device__ __forceinline__ float log_softmax_at(const float* row, int token, double mx, double sum) {
  return static_cast<float>(static_cast<double>(row[token]) - mx - log(sum));
}

// Shared state of one row's scans.
struct ScanShared {
  BlockScan::TempStorage scan;
  double chunk_last;  // the chunk's inclusive sum at its last element
  double hit_value;   // the prefix at a search's answer
  int imin[kWarp];
};

// Inclusive prefix sums (from the row start) of p over this thread's kItems candidates
// c0 + threadIdx.x kItems + k of the chunk at c0 (p = 0 past K); returns the carry into
// the next chunk. carry_next equals the prefix at the chunk's last element bit for bit,
// so the total after the last chunk is the prefix at K - 1. Every thread must call.
__device__ double chunk_prefix(const float* key, int c0, int K, double mx, double temperature, double carry,
                               double (&pre)[kItems], ScanShared& sh) {
  const int base = c0 + static_cast<int>(threadIdx.x) * kItems;
  double run = 0;
#pragma unroll
  for (int k = 0; k < kItems; ++k) {
    if (base + k < K) run += exp((static_cast<double>(key[base + k]) - mx) / temperature);
    pre[k] = run;
  }
  double excl;
  BlockScan(sh.scan).ExclusiveSum(run, excl);  // thread 0 gets 0
#pragma unroll
  for (int k = 0; k < kItems; ++k) pre[k] = carry + (excl + pre[k]);
  if (threadIdx.x == kThreads - 1) sh.chunk_last = excl + run;
  __syncthreads();
  const double next = carry + sh.chunk_last;
  __syncthreads();  // chunk_last and the scan storage are reused by the next chunk
  return next;
}

// S = the sum of p over the K candidates (the carry after the last chunk).
__device__ double candidates_sum(const float* key, int K, double mx, double temperature, ScanShared& sh) {
  double carry = 0, pre[kItems];
  for (int c0 = 0; c0 < K; c0 += kChunk) carry = chunk_prefix(key, c0, K, mx, temperature, carry, pre, sh);
  return carry;
}

// The first i < limit (<= K) whose prefix is > thr (kStrict) or >= thr, with its
// prefix in sh.hit_value; kNone when none. Every thread must call; all get the answer.
template <bool kStrict>
__device__ int first_crossing(const float* key, int limit, int K, double mx, double temperature, double thr,
                              ScanShared& sh) {
  double carry = 0;
  for (int c0 = 0; c0 < limit; c0 += kChunk) {
    double pre[kItems];
    const double next = chunk_prefix(key, c0, K, mx, temperature, carry, pre, sh);
    const int base = c0 + static_cast<int>(threadIdx.x) * kItems;
    int mine = kNone;
    double value = 0;
#pragma unroll
    for (int k = kItems - 1; k >= 0; --k)  // the lowest qualifying k wins
      if (base + k < limit && (kStrict ? pre[k] > thr : pre[k] >= thr)) mine = base + k, value = pre[k];
    const int hit = block_min(mine, sh.imin);
    if (hit != kNone) {
      if (mine == hit) sh.hit_value = value;
      __syncthreads();
      return hit;
    }
    carry = next;
  }
  return kNone;
}

__global__ void __launch_bounds__(kThreads)
    greedy_kernel(const float* __restrict__ logits, int V, std::int32_t* __restrict__ tokens,
                  float* __restrict__ logprobs) {
  __shared__ float vscratch[kWarp];
  __shared__ int iscratch[kWarp];
  __shared__ double dscratch[kWarp];
  const float* row = logits + static_cast<std::int64_t>(blockIdx.x) * V;
  const int tok = block_argmax(row, V, vscratch, iscratch);
  const double mx = row[tok];
  const double sum = row_sum_exp(row, V, mx, dscratch);
  if (threadIdx.x == 0) {
    tokens[blockIdx.x] = tok;
    logprobs[blockIdx.x] = log_softmax_at(row, tok, mx, sum);
  }
}

// ids [total] = j mod V (every row 0..V-1); offsets [rows + 1] = r V.
__global__ void iota_rows_kernel(std::int32_t* __restrict__ ids, std::int64_t total, int V,
                                 std::int32_t* __restrict__ offsets, std::int64_t rows) {
  const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < total) ids[i] = static_cast<std::int32_t>(i % V);
  if (i <= rows) offsets[i] = static_cast<std::int32_t>(i * V);
}

// One block per row of the group: keys/ids [rows, V] sorted descending per row.
__global__ void __launch_bounds__(kThreads)
    sample_kernel(const float* __restrict__ logits, const float* __restrict__ keys,
                  const std::int32_t* __restrict__ ids, const double* __restrict__ u, int V, int K,
                  double temperature, double top_p, std::int32_t* __restrict__ tokens, float* __restrict__ logprobs) {
  __shared__ ScanShared sh;
  __shared__ double dscratch[kWarp];
  const std::int64_t r = blockIdx.x;
  const float* row = logits + r * V;
  const float* key = keys + r * V;
  const double mx = key[0];  // the row's max
  const double lse_sum = row_sum_exp(row, V, mx, dscratch);
  const double sum = candidates_sum(key, K, mx, temperature, sh);
  int m = K;  // candidates kept by top-p
  double kept = sum;
  if (top_p < 1) {
    const int j = first_crossing<false>(key, K, K, mx, temperature, top_p * sum, sh);
    if (j != kNone) m = j + 1, kept = sh.hit_value;
  }
  const int j = first_crossing<true>(key, m, K, mx, temperature, u[r] * kept, sh);
  if (threadIdx.x == 0) {
    const int tok = ids[r * V + (j == kNone ? m - 1 : j)];
    tokens[r] = tok;
    logprobs[r] = log_softmax_at(row, tok, mx, lse_sum);
  }
}

std::size_t round_up(std::size_t bytes) { return (bytes + 255) / 256 * 256; }

}  // namespace

void sample_tokens(const float* logits, const double* u, std::int64_t n, std::int64_t V, double temperature,
                   double top_p, std::int64_t top_k, std::int32_t* tokens, float* logprobs, void* stream) {
  if (n == 0) return;
  CRUCIBLE_CHECK(V <= INT_MAX - kChunk, "sample_tokens on the GPU: a vocabulary of ", V, " overflows int indices");
  auto st = static_cast<cudaStream_t>(stream);
  const int v = static_cast<int>(V);
  if (temperature == 0) {
    greedy_kernel<<<static_cast<unsigned>(n), kThreads, 0, st>>>(logits, v, tokens, logprobs);
    CHECK_CUDA_LAUNCH();
    return;
  }
  const int K = static_cast<int>(top_k > 0 ? std::min(top_k, V) : V);
  const std::int64_t rows = std::clamp<std::int64_t>(kMaxSortItems / V, 1, n);  // per sort group
  const std::int64_t items = rows * V;                                           // <= max(2^24, V)
  std::size_t cub_bytes = 0;
  CHECK_CUDA(cub::DeviceSegmentedRadixSort::SortPairsDescending(
      nullptr, cub_bytes, static_cast<const float*>(nullptr), static_cast<float*>(nullptr),
      static_cast<const std::int32_t*>(nullptr), static_cast<std::int32_t*>(nullptr), static_cast<int>(items),
      static_cast<int>(rows), static_cast<const std::int32_t*>(nullptr), static_cast<const std::int32_t*>(nullptr),
      0, 32, st));
  // Scratch: sorted keys [rows, V], ids in and out [rows, V], offsets [rows + 1], CUB's.
  const std::size_t vals = round_up(static_cast<std::size_t>(items) * sizeof(float));
  const std::size_t offs = round_up(static_cast<std::size_t>(rows + 1) * sizeof(std::int32_t));
  DeviceScratch scratch(3 * vals + offs + cub_bytes, st);
  auto* base = scratch.as<char>();
  auto* keys = reinterpret_cast<float*>(base);
  auto* ids_in = reinterpret_cast<std::int32_t*>(base + vals);
  auto* ids = reinterpret_cast<std::int32_t*>(base + 2 * vals);
  auto* offsets = reinterpret_cast<std::int32_t*>(base + 3 * vals);
  void* cub_tmp = base + 3 * vals + offs;
  const std::int64_t fill = std::max(items, rows + 1);
  iota_rows_kernel<<<static_cast<unsigned>(ceil_div(fill, 256)), 256, 0, st>>>(ids_in, items, v, offsets, rows);
  CHECK_CUDA_LAUNCH();
  for (std::int64_t r0 = 0; r0 < n; r0 += rows) {
    const std::int64_t g = std::min(rows, n - r0);
    const float* lg = logits + r0 * V;
    std::size_t bytes = cub_bytes;
    const std::int32_t* offs_c = offsets;  // the iterator type of the size query
    CHECK_CUDA(cub::DeviceSegmentedRadixSort::SortPairsDescending(cub_tmp, bytes, lg, keys, ids_in, ids,
                                                                  static_cast<int>(g * V), static_cast<int>(g),
                                                                  offs_c, offs_c + 1, 0, 32, st));
    sample_kernel<<<static_cast<unsigned>(g), kThreads, 0, st>>>(lg, keys, ids, u + r0, v, K, temperature, top_p,
                                                                 tokens + r0, logprobs + r0);
    CHECK_CUDA_LAUNCH();
  }
}

}  // namespace crucible::cuda
