// kernels/cuda/grouped_linear_bf16.cu: sm90_bf16_grouped_gemm_nt, the BF16 grouped GEMM: all
// problems of a call in one launch (contract in kernels/cuda/grouped_linear_bf16_cuda.h).
//
// Design (the FP8 kernel's, kernels/cuda/grouped_linear_fp8.cu, without block scales):
//   Tile scheduler  one CTA per 128x128 output tile (kernels/cuda/grouped_gemm_common.cuh).
//   Main loop       K in 64-element (128-byte) tiles: a kStages-deep cp.async pipeline of
//                   128-byte-swizzled A and B tiles, refilled kStages - 2 tiles ahead; two
//                   CTAs per SM.
//   Math            2 warpgroups, each 64 rows x 128 columns: per K tile, 4
//                   wgmma.m64n128k16 BF16 -> FP32 straight into the accumulator; one K tile's
//                   group stays in flight while the next is issued (wait_group 1), so a
//                   stage is refilled only once the wgmma two tiles back has read it.
//   Epilogue        the shared fragment store (C = acc, or acc + C for beta = 1).
#include <cuda_runtime.h>

#include <atomic>
#include <vector>

#include "kernels/cuda/grouped_gemm_common.cuh"
#include "kernels/cuda/grouped_linear_bf16_cuda.h"
#include "kernels/cuda/sm90_wgmma.cuh"

namespace crucible::cuda {

namespace {

using namespace sm90;
using namespace grouped;

constexpr int kBK = 64;  // elements per K tile: 128 bytes, one swizzled row
constexpr int kTileBytes = kTile * 128;
constexpr int kStageBytes = 2 * kTileBytes;
// 3 stages, 2 CTAs per SM (<= 128 registers, 2 x 97 KB of shared memory): one CTA's
// prologue and epilogue overlap the other's main loop. Against 5 stages and 1 CTA per SM
// (bench/results/session7-2026-11-24, call 11): the h100-teacher's backward ops took 5-20%
// less time, the forward ops 10% less to 4% more, a BF16 training step 92.6 / 92.8 ms
// against 93.8 / 94.1.
constexpr int kStages = 3;
constexpr int kSmemBytes = kStages * kStageBytes + 1024;  // + slack to align the stages to 1024
static_assert(kStageBytes % 1024 == 0, "swizzled tiles start 1024-byte aligned");
static_assert(kTile * 8 == 4 * kThreads, "4 16-byte copies per thread per operand and stage");

// Issues the copies of K tile kt of output tile (m0, n0) into stage (a, b) (one commit
// group is made by the caller).
__device__ __forceinline__ void load_k_tile(const Bf16GroupedProblem& p, int m0, int n0, int kt, unsigned char* a,
                                            unsigned char* b) {
  const int k0 = kt * kBK;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int id = static_cast<int>(threadIdx.x) + i * kThreads;
    const int r = id >> 3, chunk = id & 7;  // 8 16-byte chunks (8 elements each) per row
    const int k = k0 + chunk * 8;
    const bool in_k = k < p.K;  // the chunk lies in the row: lda, ldb >= round_up(K, 8), zero-padded
    const bool va = in_k && m0 + r < p.M;
    const bool vb = in_k && n0 + r < p.N;
    const int at = swizzle128(r, chunk);
    cp_async_16(a + at, va ? p.a + static_cast<std::int64_t>(m0 + r) * p.lda + k : p.a, va);
    cp_async_16(b + at, vb ? p.b + static_cast<std::int64_t>(n0 + r) * p.ldb + k : p.b, vb);
  }
}

__global__ void __launch_bounds__(kThreads, 2)
    sm90_bf16_grouped_gemm_nt_kernel(const Bf16GroupedProblem* __restrict__ problems, int num_problems) {
  extern __shared__ unsigned char smem_raw[];
  unsigned char* smem = aligned_smem(smem_raw);
  const TileOf<Bf16GroupedProblem> at = tile_of(problems, num_problems);
  const Bf16GroupedProblem& p = *at.p;
  const int m0 = at.m0, n0 = at.n0;
  const int num_k = (p.K + kBK - 1) / kBK;
  const int wg = static_cast<int>(threadIdx.x) / 128;
  auto stage_a = [&](int s) { return smem + s * kStageBytes; };
  auto stage_b = [&](int s) { return smem + s * kStageBytes + kTileBytes; };

  float acc[64];
#pragma unroll
  for (int i = 0; i < 64; ++i) acc[i] = 0.0f;
  fence_operands(acc);

  // Prologue: K tiles 0 .. kStages - 3 in flight (one commit group each, empty past the end).
#pragma unroll
  for (int s = 0; s < kStages - 2; ++s) {
    if (s < num_k) load_k_tile(p, m0, n0, s, stage_a(s), stage_b(s));
    cp_async_commit();
  }

  for (int kt = 0; kt < num_k; ++kt) {
    // Groups committed so far: kStages - 2 + kt; at most kStages - 3 pending -> tile kt landed.
    cp_async_wait<kStages - 3>();
    fence_proxy_async_smem();
    __syncthreads();  // tile kt visible; every warpgroup's wgmma of tile kt - 2 is complete
    {
      const int next = kt + kStages - 2;  // refills the stage of tile kt - 2
      if (next < num_k) load_k_tile(p, m0, n0, next, stage_a(next % kStages), stage_b(next % kStages));
      cp_async_commit();
    }
    const int s = kt % kStages;
    const std::uint64_t da = smem_desc_sw128(stage_a(s) + wg * 64 * 128), db = smem_desc_sw128(stage_b(s));
    wgmma_fence();
#pragma unroll
    for (int ks = 0; ks < kBK / 16; ++ks) wgmma_m64n128k16_bf16(acc, da + 2 * ks, db + 2 * ks, 1);
    wgmma_commit();
    wgmma_wait<1>();  // tile kt - 1's group is done; tile kt's may run on
  }
  wgmma_wait<0>();
  fence_operands(acc);
  cp_async_wait<0>();
  store_tile(p, m0, n0, acc);
}

}  // namespace

void sm90_bf16_grouped_gemm_nt(std::span<const Bf16GroupedProblem> problems, cudaStream_t stream) {
  std::int64_t tiles = 0;
  const std::vector<Bf16GroupedProblem> work =
      placed(problems, "sm90_bf16_grouped_gemm_nt", 8, tiles, [](const Bf16GroupedProblem&, std::size_t) {});
  static std::atomic<std::uint64_t> smem_set{0};
  launch(sm90_bf16_grouped_gemm_nt_kernel, work, tiles, kSmemBytes, smem_set, "the BF16 grouped GEMM", stream);
}

}  // namespace crucible::cuda
