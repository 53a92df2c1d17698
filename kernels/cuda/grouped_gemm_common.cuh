// kernels/cuda/grouped_gemm_common.cuh: the pieces the one-launch grouped GEMM kernels share
// (kernels/cuda/grouped_linear_fp8.cu, grouped_linear_bf16.cu): cp.async copies, the CTA's
// problem and tile, and the epilogue from a 128x128 tile's m64n128 wgmma fragments
// (kernels/cuda/sm90_wgmma.cuh; warpgroup w owns rows 64 w .. 64 w + 63).
//
// A problem type P has: M, N (rows and columns of C), c (FP32, row m at c + m ldc), ldc,
// beta (0: C = acc; 1: C = acc + C), tile_begin (its first CTA; strictly increasing along
// the list: the launcher drops empty problems).
#pragma once

#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>
#include <span>
#include <vector>

#include "core/cuda_check.h"
#include "core/error.h"
#include "kernels/cuda/cublaslt_context.h"
#include "kernels/cuda/sm90_wgmma.cuh"

namespace crucible::cuda::grouped {

constexpr int kTile = 128;     // CTA tile, M and N
constexpr int kThreads = 256;  // 2 warpgroups

// 16 bytes global -> shared; zero-filled when !valid (src is then not read).
__device__ __forceinline__ void cp_async_16(void* dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(sm90::smem_u32(dst)), "l"(src),
               "r"(valid ? 16 : 0)
               : "memory");
}
__device__ __forceinline__ void cp_async_4(void* dst, const void* src, bool valid) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(sm90::smem_u32(dst)), "l"(src),
               "r"(valid ? 4 : 0)
               : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

// Dynamic shared memory rounded up to 1024 bytes (swizzled tiles); allocate 1024 extra.
__device__ __forceinline__ unsigned char* aligned_smem(unsigned char* raw) {
  return raw + ((1024 - (sm90::smem_u32(raw) & 1023)) & 1023);
}

// This CTA's problem and output tile: the last problem whose first tile is <= blockIdx.x;
// m-tiles fastest, so that neighbouring CTAs share the B (weight) tile in L2.
template <class P>
struct TileOf {
  const P* p;
  int m0, n0;
};
template <class P>
__device__ __forceinline__ TileOf<P> tile_of(const P* __restrict__ problems, int num_problems) {
  const int tile = static_cast<int>(blockIdx.x);
  int lo = 0, hi = num_problems - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (problems[mid].tile_begin <= tile) lo = mid;
    else hi = mid - 1;
  }
  const P& p = problems[lo];
  const int m_tiles = (p.M + kTile - 1) / kTile;
  const int local = tile - p.tile_begin;
  return TileOf<P>{&p, (local % m_tiles) * kTile, (local / m_tiles) * kTile};
}

// This thread's fragment coordinates in the tile: rows row0 and row0 + 8, columns
// 8 i + col0 and + 1 (i < 16).
struct FragmentAt {
  int row0, col0;
};
__device__ __forceinline__ FragmentAt fragment_at() {
  const int t = static_cast<int>(threadIdx.x), lane = t % 32;
  return FragmentAt{(t / 128) * 64 + ((t % 128) / 32) * 16 + lane / 4, 2 * (lane % 4)};
}

// C tile (m0, n0) from acc: two adjacent columns per store where C's rows allow, guarded.
template <class P>
__device__ __forceinline__ void store_tile(const P& p, int m0, int n0, const float (&acc)[64]) {
  const FragmentAt f = fragment_at();
  const bool accumulate = p.beta != 0.0f;
  const bool pairs = (reinterpret_cast<std::uintptr_t>(p.c) % 8 == 0) && (p.ldc % 2 == 0);
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int m = m0 + f.row0 + 8 * h;
    if (m >= p.M) continue;
    float* row = p.c + static_cast<std::int64_t>(m) * p.ldc;
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      const int n = n0 + 8 * i + f.col0;
      float v0 = acc[4 * i + 2 * h], v1 = acc[4 * i + 2 * h + 1];
      if (pairs && n + 1 < p.N) {
        float2* dst = reinterpret_cast<float2*>(row + n);
        if (accumulate) {
          const float2 c = *dst;
          v0 += c.x;
          v1 += c.y;
        }
        *dst = make_float2(v0, v1);
      } else {
        if (n < p.N) row[n] = accumulate ? v0 + row[n] : v0;
        if (n + 1 < p.N) row[n + 1] = accumulate ? v1 + row[n + 1] : v1;
      }
    }
  }
}

// Host side. The problems to launch, each given its first CTA (`tiles` ends as their
// count): negative sizes are refused, empty problems (M or N = 0, or K = 0 with beta 1)
// dropped; beta must be 0 or 1 and the operands 16-byte aligned with lda, ldb >= K and
// multiples of `ld_multiple` (16 bytes of codes); `check` runs on each kept problem.
template <class P, class Check>
std::vector<P> placed(std::span<const P> problems, const char* what, std::int64_t ld_multiple, std::int64_t& tiles,
                      Check&& check) {
  std::vector<P> work;
  work.reserve(problems.size());
  tiles = 0;
  for (std::size_t i = 0; i < problems.size(); ++i) {
    P q = problems[i];
    CRUCIBLE_CHECK(q.M >= 0 && q.N >= 0 && q.K >= 0, what, ": problem ", i, " has a negative size [", q.M, ", ",
                   q.N, ", ", q.K, "]");
    if (q.M == 0 || q.N == 0) continue;
    if (q.K == 0 && q.beta != 0.0f) continue;  // C += 0
    CRUCIBLE_CHECK(q.beta == 0.0f || q.beta == 1.0f, what, ": beta must be 0 or 1, got ", q.beta);
    CRUCIBLE_CHECK(q.lda % ld_multiple == 0 && q.ldb % ld_multiple == 0 && q.lda >= q.K && q.ldb >= q.K &&
                       reinterpret_cast<std::uintptr_t>(q.a) % 16 == 0 &&
                       reinterpret_cast<std::uintptr_t>(q.b) % 16 == 0,
                   what, ": problem ", i, " needs 16-byte aligned operands with lda, ldb >= K and multiples of ",
                   ld_multiple, " (got lda ", q.lda, ", ldb ", q.ldb, ", K ", q.K, ")");
    check(q, i);
    q.tile_begin = static_cast<std::int32_t>(tiles);
    tiles += static_cast<std::int64_t>((q.M + kTile - 1) / kTile) * ((q.N + kTile - 1) / kTile);
    CRUCIBLE_CHECK(tiles < (std::int64_t{1} << 31), what, ": ", tiles, " output tiles exceed the grid");
    work.push_back(q);
  }
  return work;
}

// Uploads the placed problems and launches kernel<<<tiles, kThreads, smem>>> on `stream` (a
// Hopper device: the kernels are sm_90a), setting its shared-memory limit once per device
// (`set` remembers the devices).
template <class P>
void launch(void (*kernel)(const P*, int), const std::vector<P>& work, std::int64_t tiles, int smem,
            std::atomic<std::uint64_t>& set, const char* what, cudaStream_t stream) {
  if (work.empty()) return;
  const CublasLtContext& ctx = CublasLtContext::current();  // the device's properties, read once
  CRUCIBLE_CHECK(ctx.cc_major() == 9, what, " needs a Hopper GPU (compute capability 9.x); device ", ctx.device(),
                 " is ", ctx.cc_major(), ".", ctx.cc_minor());
  const std::uint64_t bit = ctx.device() < 64 ? std::uint64_t{1} << ctx.device() : 0;
  if (bit == 0 || (set.load(std::memory_order_acquire) & bit) == 0) {
    CHECK_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    set.fetch_or(bit, std::memory_order_release);
  }
  // NOTE: a pageable cudaMemcpyAsync returns once the source is staged, so `work` may die
  // on return; the scratch buffer is freed in stream order after the kernel.
  DeviceScratch dev_problems(work.size() * sizeof(P), stream);
  CHECK_CUDA(cudaMemcpyAsync(dev_problems.get(), work.data(), work.size() * sizeof(P), cudaMemcpyHostToDevice, stream));
  kernel<<<static_cast<unsigned>(tiles), kThreads, smem, stream>>>(dev_problems.as<P>(), static_cast<int>(work.size()));
  CHECK_CUDA_LAUNCH();
}

}  // namespace crucible::cuda::grouped
