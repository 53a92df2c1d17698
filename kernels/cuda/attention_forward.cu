// kernels/cuda/attention_forward.cu: causal packed attention forward on the GPU, a
// FlashAttention-2-style kernel on BF16 tensor cores (mma.sync m16n8k16).
//
// The CUDA twin of attention_forward in kernels/cpu/attention.cpp. One block of four
// warps takes kBM = 64 query rows of one sequence and one query head (each warp 16
// rows); it walks the key/value tiles of kBN = 64 keys that the rows can see, staging
// each through shared memory as BF16, and keeps the online softmax (running max m, sum
// l, unnormalized out) in FP32 registers:
//   S = Q K^T (BF16 x BF16 -> FP32);  x = S scale log2(e), masked to -inf past the row;
//   m' = max(m, max x);  P = exp2(x - m');  l = l 2^(m - m') + sum P;
//   O = O 2^(m - m') + bf16(P) V;  finally out = O / l, lse = (m + log2 l) ln 2.
// Masked probabilities are exactly zero (exp2(-inf)), so other sequences and later
// tokens never change a result, as on the CPU.
// Precision: q, k, v and P rounded to BF16 (RNE) before the products; everything else
// FP32. Derivation of the resulting error: tests/gpu/test_attention.cpp.
// Determinism: every sum has a fixed order (the MMA's, then the quad butterfly).
//
// Grid: x over the query tiles of all sequences (heaviest-last-tile order reversed so
// long causal rows start first), y over query heads. GQA: head h reads kv head
// h / (Hq / Hkv). Variants: (dqk, dv) in kVariants below.
// Staging: q, k and v arrive as FP32 (the op's contract) and are rounded to BF16 once per
// call (the same RNE rounding the kernel applied while staging before, so the same bits);
// the kernel then copies 16-byte pieces with cp.async, K/V tiles double-buffered: tile
// kt + 1 is in flight while tile kt is multiplied. (Converting FP32 tiles while staging
// left warps stalled on global loads ~30% of the time: ncu, bench/results session 5.)
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>

#include "core/cuda_check.h"
#include "core/error.h"
#include "kernels/cuda/attention_common.cuh"
#include "kernels/cuda/attention_cuda.h"
#include "kernels/cuda/cublaslt_context.h"
#include "kernels/cuda/gemm_prep_cuda.h"

namespace crucible::cuda {

namespace {

using namespace attn;

constexpr int kBM = 64;  // query rows per block (16 per warp)
constexpr int kBN = 64;  // keys per tile

struct ForwardParams {
  const bf16* q;              // [T, Hq, dqk]
  const bf16* k;              // [T, Hkv, dqk]
  const bf16* v;              // [T, Hkv, dv]
  const std::int32_t* cu;     // [n_seq + 1]
  float* out;                 // [T, Hq, dv]
  float* lse;                 // [T, Hq]
  float scale_log2;           // scale * log2(e)
  int T, Hq, Hkv, group, n_seq;
};

// Q, and two buffers each of K and V.
template <int DQK, int DV>
constexpr std::size_t forward_smem_bytes() {
  return sizeof(bf16) * (static_cast<std::size_t>(kBM + 2 * kBN) * (DQK + kPad) + 2 * kBN * (DV + kPad));
}

template <int DQK, int DV>
__global__ void __launch_bounds__(kThreads) bf16_attention_forward_kernel(const ForwardParams p) {
  static_assert(DQK % 16 == 0 && DV % 16 == 0, "head dims must be multiples of 16");
  extern __shared__ __align__(16) unsigned char smem[];
  bf16* qs = reinterpret_cast<bf16*>(smem);  // [kBM][DQK + kPad]
  bf16* ks0 = qs + kBM * (DQK + kPad);        // 2 x [kBN][DQK + kPad]
  bf16* vs0 = ks0 + 2 * kBN * (DQK + kPad);   // 2 x [kBN][DV + kPad]

  Tile tile;
  if (!find_tile(p.cu, p.n_seq, p.T, kBM, blockIdx.x, /*reverse=*/true, tile)) return;
  const int h = blockIdx.y, g = h / p.group;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, gid = lane / 4, tig = lane % 4;
  const std::int64_t ldq = static_cast<std::int64_t>(p.Hq) * DQK, ldk = static_cast<std::int64_t>(p.Hkv) * DQK;
  const std::int64_t ldv = static_cast<std::int64_t>(p.Hkv) * DV, ldo = static_cast<std::int64_t>(p.Hq) * DV;
  const bf16* kg = p.k + static_cast<std::int64_t>(tile.t0) * ldk + g * DQK;  // key 0 of the sequence
  const bf16* vg = p.v + static_cast<std::int64_t>(tile.t0) * ldv + g * DV;
  auto stage_kv = [&](int kt) { stage_kv_tile<kBN, DQK, DV>(ks0, vs0, kg, ldk, vg, ldv, kt, tile.len); };

  stage_rows_async<kBM, DQK>(qs, p.q + static_cast<std::int64_t>(tile.t0 + tile.row0) * ldq + h * DQK, ldq,
                             min(kBM, tile.len - tile.row0));  // committed with K/V tile 0

  const int warp_row0 = tile.row0 + warp * 16;            // the warp's first row (in the sequence)
  const int row_lo = warp_row0 + gid, row_hi = row_lo + 8;  // this thread's two rows
  const int key_end = min(tile.len, tile.row0 + kBM);       // keys the tile's rows can see
  const int n_tiles = (key_end + kBN - 1) / kBN;

  float o[DV / 8][4];
#pragma unroll
  for (int n = 0; n < DV / 8; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};  // per row: running max (log2 units), partial sum

  stage_kv(0);
  for (int kt = 0; kt < n_tiles; ++kt) {
    const int j0 = kt * kBN;
    // Tile kt + 1 goes into the other buffer, whose last readers (tile kt - 1) passed the
    // barrier at the end of the previous iteration.
    if (kt + 1 < n_tiles) {
      stage_kv(kt + 1);
      cp_async_wait<1>();  // everything but tile kt + 1 has landed
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const bf16* ks = ks0 + (kt % 2) * kBN * (DQK + kPad);
    const bf16* vs = vs0 + (kt % 2) * kBN * (DV + kPad);
    if (j0 <= warp_row0 + 15) {  // warp-uniform: else every key of the tile is after the warp's rows

    // S = Q K^T for the warp's 16 rows x kBN keys.
    float s[kBN / 8][4];
#pragma unroll
    for (int n = 0; n < kBN / 8; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
#pragma unroll
    for (int k0 = 0; k0 < DQK; k0 += 16) {
      std::uint32_t a[4];
      load_a<DQK>(a, qs, warp * 16, k0, gid, tig);
#pragma unroll
      for (int n = 0; n < kBN / 8; ++n) {
        std::uint32_t b0, b1;
        load_b_nt<DQK>(b0, b1, ks, n * 8, k0, gid, tig);
        mma_bf16(s[n], a, b0, b1);
      }
    }

    // Mask, scale, running max over the quad (the 4 lanes that share a row).
    float mx[2] = {m[0], m[1]};
#pragma unroll
    for (int n = 0; n < kBN / 8; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int j = j0 + n * 8 + 2 * tig + (e & 1), row = e < 2 ? row_lo : row_hi;
        const float x = (j <= row && j < tile.len) ? s[n][e] * p.scale_log2 : -INFINITY;
        s[n][e] = x;
        mx[e / 2] = fmaxf(mx[e / 2], x);
      }
    float alpha[2], base[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
      base[r] = mx[r] == -INFINITY ? 0.0f : mx[r];  // a row with nothing visible yet: keep zeros
      alpha[r] = exp2f(m[r] - base[r]);             // 0 when m = -inf
      m[r] = mx[r];
      l[r] *= alpha[r];
    }
#pragma unroll
    for (int n = 0; n < kBN / 8; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float pe = exp2f(s[n][e] - base[e / 2]);
        s[n][e] = pe;
        l[e / 2] += pe;
      }
#pragma unroll
    for (int n = 0; n < DV / 8; ++n) {
      o[n][0] *= alpha[0], o[n][1] *= alpha[0];
      o[n][2] *= alpha[1], o[n][3] *= alpha[1];
    }

    // O += bf16(P) V: P's accumulator tiles 2kk, 2kk + 1 are the A fragment of keys
    // 16kk .. 16kk + 15.
#pragma unroll
    for (int kk = 0; kk < kBN / 16; ++kk) {
      const std::uint32_t a[4] = {pack_bf16(s[2 * kk][0], s[2 * kk][1]), pack_bf16(s[2 * kk][2], s[2 * kk][3]),
                                  pack_bf16(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                                  pack_bf16(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
      for (int n = 0; n < DV / 16; ++n) {
        std::uint32_t b[4];
        load_b_kn_x2<DV>(b, vs, kk * 16, n * 16, lane);
        mma_bf16(o[2 * n], a, b[0], b[1]);
        mma_bf16(o[2 * n + 1], a, b[2], b[3]);
      }
    }
    }
    __syncthreads();  // tile kt's buffers are free for tile kt + 2
  }

  // l over the quad, then the normalized rows and their lse.
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
  }
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int row = r == 0 ? row_lo : row_hi;
    if (row >= tile.len) continue;
    const std::int64_t t = tile.t0 + row;
    const float inv = 1.0f / l[r];
    float* orow = p.out + t * ldo + h * DV;
#pragma unroll
    for (int n = 0; n < DV / 8; ++n)
      *reinterpret_cast<float2*>(orow + n * 8 + 2 * tig) = make_float2(o[n][2 * r] * inv, o[n][2 * r + 1] * inv);
    if (tig == 0) p.lse[t * p.Hq + h] = (m[r] + log2f(l[r])) * kLn2;
  }
}

template <int DQK, int DV>
void launch_forward(const ForwardParams& p, std::int64_t n_seq, cudaStream_t st) {
  constexpr std::size_t smem = forward_smem_bytes<DQK, DV>();
  CHECK_CUDA(cudaFuncSetAttribute(bf16_attention_forward_kernel<DQK, DV>,
                                  cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  // Upper bound on the tiles: sum_b ceil(L_b / kBM) <= T / kBM + n_seq; the rest exit.
  const dim3 grid(static_cast<unsigned>((p.T + kBM - 1) / kBM + n_seq), static_cast<unsigned>(p.Hq));
  bf16_attention_forward_kernel<DQK, DV><<<grid, kThreads, smem, st>>>(p);
  CHECK_CUDA_LAUNCH();
}

}  // namespace

bool attention_head_dims_supported(std::int64_t dqk, std::int64_t dv) {
  return (dqk == 192 && dv == 128) || (dqk == 128 && dv == 128) || (dqk == 64 && dv == 64);
}

void attention_forward(const float* q, const float* k, const float* v, const std::int32_t* cu_seqlens,
                       const AttentionShape& s, float scale, float* out, float* lse, void* stream, Bf16Qkv keep) {
  if (!attention_head_dims_supported(s.dqk, s.dv))
    return attention_forward_generic(q, k, v, cu_seqlens, s, scale, out, lse, stream);
  CRUCIBLE_CHECK(s.T < (std::int64_t{1} << 31) && s.n_seq < (std::int64_t{1} << 31) && s.Hq <= 65535,
                 "attention_forward (CUDA): T = ", s.T, ", B = ", s.n_seq, ", Hq = ", s.Hq, " exceed the grid");
  for (const void* ptr : {static_cast<const void*>(q), static_cast<const void*>(k), static_cast<const void*>(v),
                          static_cast<const void*>(out)})
    CRUCIBLE_CHECK(reinterpret_cast<std::uintptr_t>(ptr) % 16 == 0,
                   "attention_forward (CUDA): q, k, v and out must be 16-byte aligned");
  if (s.T == 0 || s.n_seq == 0) return;
  auto st = static_cast<cudaStream_t>(stream);
  // BF16 copies (RNE), made once and read by every tile that needs them: into keep when
  // given (attention_backward reads them), else into scratch.
  DeviceScratch scratch[3];
  auto rounded = [&](const float* x, std::int64_t n, std::uint16_t* into, DeviceScratch& local) -> const bf16* {
    if (into == nullptr) {
      local = bf16_copy(x, n, st);
      return local.as<bf16>();
    }
    cast_f32_to_bf16(x, into, n, st);
    return reinterpret_cast<const bf16*>(into);
  };
  const ForwardParams p{rounded(q, s.T * s.Hq * s.dqk, keep.q, scratch[0]),
                        rounded(k, s.T * s.Hkv * s.dqk, keep.k, scratch[1]),
                        rounded(v, s.T * s.Hkv * s.dv, keep.v, scratch[2]),
                        cu_seqlens,
                        out,
                        lse,
                        scale * kLog2e,
                        static_cast<int>(s.T),
                        static_cast<int>(s.Hq),
                        static_cast<int>(s.Hkv),
                        static_cast<int>(s.Hq / s.Hkv),
                        static_cast<int>(s.n_seq)};
  if (s.dqk == 192) return launch_forward<192, 128>(p, s.n_seq, st);
  if (s.dqk == 128) return launch_forward<128, 128>(p, s.n_seq, st);
  return launch_forward<64, 64>(p, s.n_seq, st);
}

}  // namespace crucible::cuda
