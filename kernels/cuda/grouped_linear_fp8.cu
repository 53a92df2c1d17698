// kernels/cuda/grouped_linear_fp8.cu: sm90_fp8_grouped_gemm_nt, the FP8 (E4M3) grouped GEMM
// with DeepSeek-V3 block scaling: all problems of a call in one launch (contract in
// kernels/cuda/grouped_linear_fp8_cuda.h).
//
// Design:
//   Tile scheduler  one CTA per 128x128 output tile; problem g owns CTAs
//                   [tile_begin[g], tile_begin[g + 1]) (binary search on blockIdx.x), m-tile
//                   fastest so that neighbouring CTAs share the B (weight) tile in L2.
//   Main loop       K in 128-wide tiles, one K tile = one scale block. A kStages-deep cp.async
//                   pipeline (16-byte copies, zero-filled outside the problem) brings each
//                   K tile's A and B codes, 128-byte swizzled (kernels/cuda/sm90_wgmma.cuh),
//                   and its 128 + 128 scales to shared memory.
//   Math            2 warpgroups, each 64 rows x 128 columns of the tile: per K tile, 4
//                   wgmma.m64n128k32 E4M3 -> FP32 from shared memory into a fresh partial
//                   (the first with scale-d 0); while they run, the copies of a later K tile
//                   are issued; then the promotion  acc = fma(sa * sb, partial, acc)  in FP32.
//                   Hopper's FP8 tensor-core sums keep fewer bits than FP32 (DeepSeek-V3
//                   report, 3.3.2), so the partial never spans more than one 128-wide block.
//   Epilogue        FP32 stores from the fragments (C = acc, or acc + C for beta = 1), two
//                   adjacent columns at a time where C's rows allow, guarded.
#include <cuda_runtime.h>

#include <atomic>
#include <vector>

#include "core/error.h"
#include "kernels/cuda/grouped_linear_fp8_cuda.h"
#include "kernels/cuda/grouped_gemm_common.cuh"
#include "kernels/cuda/sm90_wgmma.cuh"

namespace crucible::cuda {

namespace {

using namespace sm90;
using namespace grouped;

constexpr int kBM = kTile, kBN = kTile, kBK = 128;  // CTA tile; kBK is the scale block
constexpr int kStages = 5;
constexpr int kTileBytes = kBM * kBK;           // one operand's K tile, 128-byte rows
constexpr int kStageBytes = 2 * kTileBytes + (kBM + kBN) * static_cast<int>(sizeof(float));
constexpr int kSmemBytes = kStages * kStageBytes + 1024;  // + slack to align the stages to 1024
static_assert(kBM == kBN && kBN == 128, "a 128x128 B block must be one N tile");
static_assert(kStageBytes % 1024 == 0, "swizzled tiles start 1024-byte aligned");
static_assert(kBM * kBK / 16 == 4 * kThreads, "4 16-byte copies per thread per operand and stage");

// Shared memory of one stage: A codes [kBM][128], B codes [kBN][128] (both swizzled),
// A scales [kBM], B scales [kBN].
struct Stage {
  unsigned char* a;
  unsigned char* b;
  float* sa;
  float* sb;
};
__device__ __forceinline__ Stage stage_at(unsigned char* smem, int s) {
  unsigned char* base = smem + s * kStageBytes;
  return Stage{base, base + kTileBytes, reinterpret_cast<float*>(base + 2 * kTileBytes),
               reinterpret_cast<float*>(base + 2 * kTileBytes) + kBM};
}

// Issues the copies of K tile kt of output tile (m0, n0) into stage st (one commit group
// is made by the caller).
__device__ __forceinline__ void load_k_tile(const Fp8GroupedProblem& p, int m0, int n0, int kt, const Stage& st) {
  const int k0 = kt * kBK;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int id = static_cast<int>(threadIdx.x) + i * kThreads;
    const int r = id >> 3, chunk = id & 7;  // 8 16-byte chunks per 128-byte row
    const int k = k0 + chunk * 16;
    const bool in_k = k < p.K;  // k < K <= lda, both multiples of 16: the chunk lies in the row
    const bool va = in_k && m0 + r < p.M;
    const bool vb = in_k && n0 + r < p.N;
    const int at = swizzle128(r, chunk);
    cp_async_16(st.a + at, va ? p.a + (m0 + r) * p.lda + k : p.a, va);
    cp_async_16(st.b + at, vb ? p.b + (n0 + r) * p.ldb + k : p.b, vb);
  }
  const int t = static_cast<int>(threadIdx.x);
  if (t < kBM) {
    const bool v = m0 + t < p.M;
    cp_async_4(st.sa + t, v ? p.a_scale + (m0 + t) * p.a_scale_row + kt * p.a_scale_kb : p.a_scale, v);
  } else {
    const int n = n0 + t - kBM;
    const bool v = n < p.N;
    cp_async_4(st.sb + (t - kBM),
               v ? p.b_scale + (n / p.b_scale_group) * p.b_scale_row + kt * p.b_scale_kb : p.b_scale, v);
  }
}

__global__ void __launch_bounds__(kThreads, 1)
    sm90_e4m3_grouped_gemm_nt_kernel(const Fp8GroupedProblem* __restrict__ problems, int num_problems) {
  extern __shared__ unsigned char smem_raw[];
  unsigned char* smem = aligned_smem(smem_raw);
  const TileOf<Fp8GroupedProblem> at = tile_of(problems, num_problems);
  const Fp8GroupedProblem& p = *at.p;  // fields read when needed (L1): fewer live registers
  const int m0 = at.m0, n0 = at.n0;
  const int num_k = (p.K + kBK - 1) / kBK;
  // 128x128 weight blocks: one B scale for the whole N tile.
  const bool uniform_sb = p.b_scale_group == kBN;

  const int wg = static_cast<int>(threadIdx.x) / 128;
  const FragmentAt frag = fragment_at();
  const int row0 = frag.row0, col0 = frag.col0;

  float acc[64], part[64];
#pragma unroll
  for (int i = 0; i < 64; ++i) acc[i] = 0.0f;

  // Prologue: K tiles 0 .. kStages - 2 in flight (one commit group each, empty past the end).
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < num_k) load_k_tile(p, m0, n0, s, stage_at(smem, s));
    cp_async_commit();
  }

  for (int kt = 0; kt < num_k; ++kt) {
    // Groups committed so far: kStages - 1 + kt; at most kStages - 2 pending -> tile kt landed.
    cp_async_wait<kStages - 2>();
    fence_proxy_async_smem();
    __syncthreads();  // tile kt visible to all; every warpgroup is done with tile kt - 1's stage

    const Stage st = stage_at(smem, kt % kStages);
    const std::uint64_t da = smem_desc_sw128(st.a + wg * 64 * kBK), db = smem_desc_sw128(st.b);
    wgmma_fence();
#pragma unroll
    for (int ks = 0; ks < kBK / 32; ++ks) wgmma_m64n128k32_e4m3(part, da + 2 * ks, db + 2 * ks, ks);
    wgmma_commit();

    {  // refills the stage that tile kt - 1 used, while the tensor cores work
      const int next = kt + kStages - 1;
      if (next < num_k) load_k_tile(p, m0, n0, next, stage_at(smem, next % kStages));
      cp_async_commit();
    }

    wgmma_wait<0>();
    fence_operands(part);

    // Promotion of this K block.
    const float sa0 = st.sa[row0], sa1 = st.sa[row0 + 8];
    if (uniform_sb) {
      const float sb = st.sb[0];
      const float s0 = sa0 * sb, s1 = sa1 * sb;
#pragma unroll
      for (int i = 0; i < 16; ++i) {
        acc[4 * i + 0] = fmaf(s0, part[4 * i + 0], acc[4 * i + 0]);
        acc[4 * i + 1] = fmaf(s0, part[4 * i + 1], acc[4 * i + 1]);
        acc[4 * i + 2] = fmaf(s1, part[4 * i + 2], acc[4 * i + 2]);
        acc[4 * i + 3] = fmaf(s1, part[4 * i + 3], acc[4 * i + 3]);
      }
    } else {
#pragma unroll
      for (int i = 0; i < 16; ++i) {
        const float2 sb = *reinterpret_cast<const float2*>(st.sb + 8 * i + col0);
        acc[4 * i + 0] = fmaf(sa0 * sb.x, part[4 * i + 0], acc[4 * i + 0]);
        acc[4 * i + 1] = fmaf(sa0 * sb.y, part[4 * i + 1], acc[4 * i + 1]);
        acc[4 * i + 2] = fmaf(sa1 * sb.x, part[4 * i + 2], acc[4 * i + 2]);
        acc[4 * i + 3] = fmaf(sa1 * sb.y, part[4 * i + 3], acc[4 * i + 3]);
      }
    }
  }
  cp_async_wait<0>();

  store_tile(p, m0, n0, acc);
}

}  // namespace

void sm90_fp8_grouped_gemm_nt(std::span<const Fp8GroupedProblem> problems, cudaStream_t stream) {
  std::int64_t tiles = 0;
  const std::vector<Fp8GroupedProblem> work =
      placed(problems, "sm90_fp8_grouped_gemm_nt", 16, tiles, [](const Fp8GroupedProblem& q, std::size_t) {
        CRUCIBLE_CHECK(q.b_scale_group == 1 || q.b_scale_group == 128, "sm90_fp8_grouped_gemm_nt: b_scale_group ",
                       q.b_scale_group, " must be 1 or 128");
      });
  static std::atomic<std::uint64_t> smem_set{0};
  launch(sm90_e4m3_grouped_gemm_nt_kernel, work, tiles, kSmemBytes, smem_set, "the FP8 grouped GEMM", stream);
}

}  // namespace crucible::cuda
