// kernels/cuda/grouped_linear_fp8.cu: sm90_fp8_grouped_gemm_nt, the FP8 (E4M3) grouped GEMM
// with DeepSeek-V3 block scaling: all problems of a call in one launch (contract in
// kernels/cuda/grouped_linear_fp8_cuda.h).
//
// Design (correct first; the wgmma/TMA version is the later ceiling):
//   Tile scheduler  one CTA per 128x128 output tile; problem g owns CTAs
//                   [tile_begin[g], tile_begin[g + 1]) (binary search on blockIdx.x), m-tile
//                   fastest so that neighbouring CTAs share the B (weight) tile in L2.
//   Main loop       K in 128-wide tiles, one K tile = one scale block. A 4-stage cp.async
//                   pipeline (16-byte copies, zero-filled outside the problem) brings each
//                   K tile's A and B codes and its 128 + 128 scales to shared memory.
//   Math            8 warps as 2 (M) x 4 (N), 64 x 32 outputs per warp: 4 x 4
//                   mma.sync.m16n8k32 E4M3 -> FP32 per 32-wide K step, 4 steps per K tile,
//                   into a fresh FP32 partial; then the promotion
//                   acc += (sa * sb) * partial  in FP32 with explicit _rn operations (no FMA
//                   contraction: the CPU twin's rounding sequence).
//   Epilogue        scalar FP32 stores (C = acc, or acc + C for beta = 1), guarded.
//
// Fragment layouts relied on (PTX ISA, "Matrix Fragments for mma.m16n8k32" with 8-bit types;
// g = lane / 4, t = lane % 4; a .b32 register holds 4 consecutive K elements, lowest K in
// the lowest byte):
//   A 16x32 (row): a0 = A[g][4t..4t+3], a1 = A[g+8][4t..], a2 = A[g][16+4t..], a3 = A[g+8][16+4t..]
//   B 32x8 (col):  b0 = B[k = 4t..4t+3][n = g], b1 = B[k = 16+4t..][n = g]; with B stored
//                  [N, K] (K contiguous) that is the 4 bytes at row n = g, bytes 4t (+16).
//   C 16x8 f32:    c0, c1 = C[g][2t], C[g][2t+1]; c2, c3 = C[g+8][2t], C[g+8][2t+1].
//   ldmatrix.m8n8.x4.b16 hands lane l, from matrix j, the 4 bytes at row l / 4, bytes
//   4 (l % 4) .. +3 of that 8-row x 16-byte matrix: exactly the 8-bit fragment above when
//   matrix j is (A rows 0-7 | 8-15) x (bytes 0-15 | 16-31), so
//     A x4: lane l addresses row (l & 7) + 8 ((l >> 3) & 1), byte 16 (l >> 4)  -> a0..a3
//     B x4: lane l addresses n row 8 (l >> 4) + (l & 7), byte 16 ((l >> 3) & 1)
//           -> b0, b1 of n-tile j, then b0, b1 of n-tile j + 1.
//   Shared-memory rows are 144 bytes (128 + 16 pad): 8 rows of one ldmatrix phase start 36
//   words apart, so their 16-byte pieces fall on 8 distinct groups of 4 banks (no conflict).
#include <cuda_runtime.h>

#include <algorithm>
#include <string>
#include <vector>

#include "core/cuda_check.h"
#include "core/error.h"
#include "kernels/cuda/cublaslt_context.h"
#include "kernels/cuda/grouped_linear_fp8_cuda.h"

namespace crucible::cuda {

namespace {

constexpr int kBM = 128, kBN = 128, kBK = 128;  // CTA tile; kBK is the scale block
constexpr int kStages = 4;
constexpr int kThreads = 256;                   // 8 warps: 2 (M) x 4 (N)
constexpr int kWarpM = 64, kWarpN = 32;
constexpr int kRowBytes = kBK + 16;             // padded shared-memory row (see the file comment)
constexpr int kTileBytes = kBM * kRowBytes;     // one operand's K tile
constexpr int kStageBytes = 2 * kTileBytes + (kBM + kBN) * static_cast<int>(sizeof(float));
constexpr int kSmemBytes = kStages * kStageBytes;  // 151552
static_assert(kBM == kBN && kBM % 128 == 0, "a 128x128 B block must lie in one N tile");
static_assert(kBM * kBK / 16 == 4 * kThreads, "4 16-byte copies per thread per operand and stage");

__device__ __forceinline__ unsigned smem_addr(const void* p) {
  return static_cast<unsigned>(__cvta_generic_to_shared(p));
}

// 16 bytes global -> shared; zero-filled when !valid (src is then not read).
__device__ __forceinline__ void cp_async_16(void* dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src),
               "r"(valid ? 16 : 0)
               : "memory");
}
__device__ __forceinline__ void cp_async_4(void* dst, const void* src, bool valid) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(smem_addr(dst)), "l"(src),
               "r"(valid ? 4 : 0)
               : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

__device__ __forceinline__ void ldmatrix_x4(unsigned (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p))
               : "memory");
}

// d (16x8 f32) += a (16x32 e4m3, row) * b (32x8 e4m3, col).
__device__ __forceinline__ void mma_e4m3(float (&d)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Shared memory of one stage: A codes [kBM][kRowBytes], B codes [kBN][kRowBytes],
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
    cp_async_16(st.a + r * kRowBytes + chunk * 16, va ? p.a + (m0 + r) * p.lda + k : p.a, va);
    cp_async_16(st.b + r * kRowBytes + chunk * 16, vb ? p.b + (n0 + r) * p.ldb + k : p.b, vb);
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
  extern __shared__ __align__(128) unsigned char smem[];

  // The problem of this CTA: the last one whose first tile is <= blockIdx.x (empty problems
  // were dropped by the launcher, so tile_begin strictly increases).
  const int tile = static_cast<int>(blockIdx.x);
  int lo = 0, hi = num_problems - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (problems[mid].tile_begin <= tile) lo = mid;
    else hi = mid - 1;
  }
  const Fp8GroupedProblem& p = problems[lo];  // fields read when needed (L1): fewer live registers
  const int m_tiles = (p.M + kBM - 1) / kBM;
  const int local = tile - p.tile_begin;
  const int m0 = (local % m_tiles) * kBM, n0 = (local / m_tiles) * kBN;
  const int num_k = (p.K + kBK - 1) / kBK;

  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  const int wm = (warp / 4) * kWarpM, wn = (warp % 4) * kWarpN;  // warp's offset in the tile
  const int g = lane / 4, t4 = lane % 4;

  float acc[4][4][4];  // [m16 tile][n8 tile][c0..c3]
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.0f;

  // Prologue: K tiles 0 .. kStages - 2 in flight (one commit group each, empty past the end).
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < num_k) load_k_tile(p, m0, n0, s, stage_at(smem, s));
    cp_async_commit();
  }

  // ldmatrix lane offsets (see the file comment).
  const int a_row = (lane & 7) + 8 * ((lane >> 3) & 1), a_byte = 16 * (lane >> 4);
  const int b_row = 8 * (lane >> 4) + (lane & 7), b_byte = 16 * ((lane >> 3) & 1);

  for (int kt = 0; kt < num_k; ++kt) {
    // Groups committed so far: kStages - 1 + kt; at most kStages - 2 pending -> tile kt landed.
    cp_async_wait<kStages - 2>();
    __syncthreads();  // tile kt visible to all; every warp is done with tile kt - 1's stage
    {
      const int next = kt + kStages - 1;  // refills the stage tile kt - 1 used
      if (next < num_k) load_k_tile(p, m0, n0, next, stage_at(smem, next % kStages));
      cp_async_commit();
    }
    const Stage st = stage_at(smem, kt % kStages);

    float part[4][4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) part[i][j][e] = 0.0f;

#pragma unroll
    for (int ks = 0; ks < kBK / 32; ++ks) {
      unsigned af[4][4], bf[2][4];
#pragma unroll
      for (int i = 0; i < 4; ++i)
        ldmatrix_x4(af[i], st.a + (wm + i * 16 + a_row) * kRowBytes + ks * 32 + a_byte);
#pragma unroll
      for (int jj = 0; jj < 2; ++jj)  // n-tiles 2 jj and 2 jj + 1
        ldmatrix_x4(bf[jj], st.b + (wn + jj * 16 + b_row) * kRowBytes + ks * 32 + b_byte);
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j)
          mma_e4m3(part[i][j], af[i], bf[j / 2][2 * (j % 2)], bf[j / 2][2 * (j % 2) + 1]);
    }

    // Promotion of this K block: acc += (sa * sb) * partial, rounded as the CPU twin.
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const float sa0 = st.sa[wm + i * 16 + g], sa1 = st.sa[wm + i * 16 + g + 8];
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const float sb0 = st.sb[wn + j * 8 + 2 * t4], sb1 = st.sb[wn + j * 8 + 2 * t4 + 1];
        acc[i][j][0] = __fadd_rn(acc[i][j][0], __fmul_rn(__fmul_rn(sa0, sb0), part[i][j][0]));
        acc[i][j][1] = __fadd_rn(acc[i][j][1], __fmul_rn(__fmul_rn(sa0, sb1), part[i][j][1]));
        acc[i][j][2] = __fadd_rn(acc[i][j][2], __fmul_rn(__fmul_rn(sa1, sb0), part[i][j][2]));
        acc[i][j][3] = __fadd_rn(acc[i][j][3], __fmul_rn(__fmul_rn(sa1, sb1), part[i][j][3]));
      }
    }
  }
  cp_async_wait<0>();

  // Epilogue: c0, c1 at row g, c2, c3 at row g + 8; columns 2 t4, 2 t4 + 1.
  const bool accumulate = p.beta != 0.0f;
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int m = m0 + wm + i * 16 + g + 8 * (e / 2);
        const int n = n0 + wn + j * 8 + 2 * t4 + (e % 2);
        if (m < p.M && n < p.N) {
          float* dst = p.c + static_cast<std::int64_t>(m) * p.ldc + n;
          *dst = accumulate ? __fadd_rn(acc[i][j][e], *dst) : acc[i][j][e];
        }
      }
}

}  // namespace

void sm90_fp8_grouped_gemm_nt(std::span<const Fp8GroupedProblem> problems, cudaStream_t stream) {
  std::vector<Fp8GroupedProblem> work;
  work.reserve(problems.size());
  std::int64_t tiles = 0;
  for (std::size_t i = 0; i < problems.size(); ++i) {
    Fp8GroupedProblem q = problems[i];
    CRUCIBLE_CHECK(q.M >= 0 && q.N >= 0 && q.K >= 0, "sm90_fp8_grouped_gemm_nt: problem ", i,
                   " has a negative size [", q.M, ", ", q.N, ", ", q.K, "]");
    if (q.M == 0 || q.N == 0) continue;
    if (q.K == 0 && q.beta != 0.0f) continue;  // C += 0
    CRUCIBLE_CHECK(q.beta == 0.0f || q.beta == 1.0f, "sm90_fp8_grouped_gemm_nt: beta must be 0 or 1, got ",
                   q.beta);
    CRUCIBLE_CHECK(q.lda % 16 == 0 && q.ldb % 16 == 0 && q.lda >= q.K && q.ldb >= q.K &&
                       reinterpret_cast<std::uintptr_t>(q.a) % 16 == 0 &&
                       reinterpret_cast<std::uintptr_t>(q.b) % 16 == 0,
                   "sm90_fp8_grouped_gemm_nt: problem ", i, " needs 16-byte aligned codes with lda, ldb >= K ",
                   "and multiples of 16 (got lda ", q.lda, ", ldb ", q.ldb, ", K ", q.K, ")");
    CRUCIBLE_CHECK(q.b_scale_group == 1 || q.b_scale_group == 128, "sm90_fp8_grouped_gemm_nt: b_scale_group ",
                   q.b_scale_group, " must be 1 or 128");
    q.tile_begin = static_cast<std::int32_t>(tiles);
    tiles += static_cast<std::int64_t>((q.M + kBM - 1) / kBM) * ((q.N + kBN - 1) / kBN);
    CRUCIBLE_CHECK(tiles < (std::int64_t{1} << 31), "sm90_fp8_grouped_gemm_nt: ", tiles,
                   " output tiles exceed the grid");
    work.push_back(q);
  }
  if (work.empty()) return;

  const CublasLtContext& ctx = CublasLtContext::current();  // the device's properties, read once
  CRUCIBLE_CHECK(ctx.cc_major() == 9, "the FP8 grouped GEMM needs a Hopper GPU (compute capability 9.x); device ",
                 ctx.device(), " is ", ctx.cc_major(), ".", ctx.cc_minor());

  // NOTE: a pageable cudaMemcpyAsync returns once the source is staged, so `work` may die
  // on return; the scratch buffer is freed in stream order after the kernel.
  DeviceScratch dev_problems(work.size() * sizeof(Fp8GroupedProblem), stream);
  CHECK_CUDA(cudaMemcpyAsync(dev_problems.get(), work.data(), work.size() * sizeof(Fp8GroupedProblem),
                             cudaMemcpyHostToDevice, stream));
  CHECK_CUDA(cudaFuncSetAttribute(sm90_e4m3_grouped_gemm_nt_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                  kSmemBytes));
  sm90_e4m3_grouped_gemm_nt_kernel<<<static_cast<unsigned>(tiles), kThreads, kSmemBytes, stream>>>(
      dev_problems.as<Fp8GroupedProblem>(), static_cast<int>(work.size()));
  CHECK_CUDA_LAUNCH();
}

}  // namespace crucible::cuda
