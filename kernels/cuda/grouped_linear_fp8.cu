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

#include <algorithm>
#include <atomic>
#include <string>
#include <vector>

#include "core/cuda_check.h"
#include "core/error.h"
#include "kernels/cuda/cublaslt_context.h"
#include "kernels/cuda/grouped_linear_fp8_cuda.h"
#include "kernels/cuda/sm90_wgmma.cuh"

namespace crucible::cuda {

namespace {

using namespace sm90;

constexpr int kBM = 128, kBN = 128, kBK = 128;  // CTA tile; kBK is the scale block
constexpr int kStages = 5;
constexpr int kThreads = 256;                   // 2 warpgroups, 64 rows each
constexpr int kTileBytes = kBM * kBK;           // one operand's K tile, 128-byte rows
constexpr int kStageBytes = 2 * kTileBytes + (kBM + kBN) * static_cast<int>(sizeof(float));
constexpr int kSmemBytes = kStages * kStageBytes + 1024;  // + slack to align the stages to 1024
static_assert(kBM == kBN && kBN == 128, "a 128x128 B block must be one N tile");
static_assert(kStageBytes % 1024 == 0, "swizzled tiles start 1024-byte aligned");
static_assert(kBM * kBK / 16 == 4 * kThreads, "4 16-byte copies per thread per operand and stage");

// 16 bytes global -> shared; zero-filled when !valid (src is then not read).
__device__ __forceinline__ void cp_async_16(void* dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_u32(dst)), "l"(src),
               "r"(valid ? 16 : 0)
               : "memory");
}
__device__ __forceinline__ void cp_async_4(void* dst, const void* src, bool valid) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(smem_u32(dst)), "l"(src),
               "r"(valid ? 4 : 0)
               : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

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
  unsigned char* smem = smem_raw + ((1024 - (smem_u32(smem_raw) & 1023)) & 1023);

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
  // 128x128 weight blocks: one B scale for the whole N tile.
  const bool uniform_sb = p.b_scale_group == kBN;

  const int wg = static_cast<int>(threadIdx.x) / 128;
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const int row0 = wg * 64 + ((static_cast<int>(threadIdx.x) % 128) / 32) * 16 + lane / 4;  // and row0 + 8
  const int col0 = 2 * (lane % 4);                                                              // + 8 i, + 1

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

  // Epilogue: fragment i, rows row0 (+ 8), columns 8 i + col0 (+ 1).
  const bool accumulate = p.beta != 0.0f;
  const bool pairs = (reinterpret_cast<std::uintptr_t>(p.c) % 8 == 0) && (p.ldc % 2 == 0);
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int m = m0 + row0 + 8 * h;
    if (m >= p.M) continue;
    float* row = p.c + static_cast<std::int64_t>(m) * p.ldc;
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      const int n = n0 + 8 * i + col0;
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

// The kernel's shared-memory size is set once per device (a per-launch
// cudaFuncSetAttribute costs host time on every call of a grouped op).
void allow_smem_once(int device) {
  static std::atomic<std::uint64_t> done{0};
  const std::uint64_t bit = device < 64 ? std::uint64_t{1} << device : 0;
  if (bit != 0 && (done.load(std::memory_order_acquire) & bit) != 0) return;
  CHECK_CUDA(cudaFuncSetAttribute(sm90_e4m3_grouped_gemm_nt_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                  kSmemBytes));
  done.fetch_or(bit, std::memory_order_release);
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
  allow_smem_once(ctx.device());
  sm90_e4m3_grouped_gemm_nt_kernel<<<static_cast<unsigned>(tiles), kThreads, kSmemBytes, stream>>>(
      dev_problems.as<Fp8GroupedProblem>(), static_cast<int>(work.size()));
  CHECK_CUDA_LAUNCH();
}

}  // namespace crucible::cuda
