// kernels/cuda/attention_backward.cu: causal packed attention backward on the GPU,
// FlashAttention-2 style on BF16 tensor cores (mma.sync m16n8k16), deterministic.
//
// The CUDA twin of attention_backward in kernels/cpu/attention.cpp. With D = rowsum(dO
// * O) and P recomputed from the saved lse (P = exp(scale S - lse)):
//   dP = dO V^T;  dS = P (dP - D);  dV = P^T dO;  dK = scale dS^T Q;  dQ = scale dS K.
// Three kernels, no atomics, every sum in a fixed order (run-to-run identical bits):
//   1. attention_delta_kernel: D [T, Hq], one warp per (token, head).
//   2. bf16_attention_dkdv_kernel: one block per kBN = 64 keys of one kv head (16 keys
//      per warp). It loops over the query heads of its GQA group, then over the query
//      tiles of kBQ = 32 rows that see its keys, and accumulates dK, dV in FP32
//      registers; it computes S^T = K Q^T and dP^T = V dO^T directly, so P^T and dS^T
//      are A fragments of dV += P^T dO and dK += dS^T Q without a trip through memory.
//   3. bf16_attention_dq_kernel: one block per kBM = 64 query rows of one query head (16
//      rows per warp), over the key tiles (kBK = 32) the rows see: S, dP again, dQ += dS K.
// NOTE: kernel 3 recomputes S and dP (7 matrix products where FlashAttention-2 does 5)
// in exchange for determinism: dQ is summed over key tiles in registers instead of
// being accumulated with float atomics by the dK/dV blocks.
// Precision: q, k, v, dout, P and dS rounded to BF16 (RNE) before the products; lse,
// D, the exponentials and all accumulators FP32. tests/gpu/test_attention.cpp derives
// the error bound.
// Staging: q, k, v and dout are rounded to BF16 once per call; the kernels copy tiles
// with cp.async, the looped tiles double-buffered (kernel 2: Q, dO, lse and D of the
// next (head, query tile); kernel 3: the next kBK = 32 keys), so the next tile is in
// flight while the current one is multiplied.
// NOTE: kBQ = 32 keeps kernel 2 within 255 registers at dqk = 192 (dK 96 + dV 64
// accumulators per thread, plus S^T and dP^T 16 each).
#include <cuda_runtime.h>

#include <algorithm>

#include "core/cuda_check.h"
#include "core/error.h"
#include "kernels/cuda/attention_common.cuh"
#include "kernels/cuda/attention_cuda.h"
#include "kernels/cuda/cublaslt_context.h"
#include "kernels/cuda/gemm_prep_cuda.h"

namespace crucible::cuda {

namespace {

using namespace attn;

constexpr int kBN = 64;  // keys per dK/dV block (16 per warp)
constexpr int kBQ = 32;  // query rows per tile in the dK/dV pass
constexpr int kBM = 64;  // query rows per dQ block (16 per warp)
constexpr int kBK = 32;  // keys per tile in the dQ pass (double-buffered)

struct BackwardParams {
  const bf16* dout;         // [T, Hq, dv]
  const bf16* q;            // [T, Hq, dqk]
  const bf16* k;            // [T, Hkv, dqk]
  const bf16* v;            // [T, Hkv, dv]
  const float* lse;         // [T, Hq]
  const float* delta;       // [T, Hq] D = rowsum(dout * out)
  const std::int32_t* cu;   // [n_seq + 1]
  float* dq;                // [T, Hq, dqk]
  float* dk;                // [T, Hkv, dqk]
  float* dv;                // [T, Hkv, dv]
  float scale, scale_log2;  // scale and scale * log2(e)
  int T, Hq, Hkv, group, n_seq;
};

// delta [T * Hq] = sum over c of dout * out, rows of dv floats; one warp per row,
// lanes strided then a butterfly: a fixed order.
__global__ void attention_delta_kernel(const float* __restrict__ dout, const float* __restrict__ out,
                                       float* __restrict__ delta, std::int64_t rows, int dv) {
  const std::int64_t row = static_cast<std::int64_t>(blockIdx.x) * kWarps + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= rows) return;
  const float* a = dout + row * dv;
  const float* b = out + row * dv;
  float sum = 0.0f;
  for (int c = lane * 4; c < dv; c += 32 * 4) {  // dv % 4 == 0 for every variant
    const float4 x = *reinterpret_cast<const float4*>(a + c), y = *reinterpret_cast<const float4*>(b + c);
    sum += x.x * y.x + x.y * y.y + x.z * y.z + x.w * y.w;
  }
#pragma unroll
  for (int off = 16; off > 0; off /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, off);
  if (lane == 0) delta[row] = sum;
}

// K and V of the block; two buffers each of the Q, dO, lse and delta tiles.
template <int DQK, int DV>
constexpr std::size_t dkdv_smem_bytes() {
  return sizeof(bf16) * (static_cast<std::size_t>(kBN + 2 * kBQ) * (DQK + kPad + DV + kPad)) +
         2 * 2 * kBQ * sizeof(float);
}

template <int DQK, int DV>
__global__ void __launch_bounds__(kThreads) bf16_attention_dkdv_kernel(const BackwardParams p) {
  extern __shared__ __align__(16) unsigned char smem[];
  bf16* ks = reinterpret_cast<bf16*>(smem);  // [kBN][DQK + kPad]
  bf16* vs = ks + kBN * (DQK + kPad);         // [kBN][DV + kPad]
  bf16* qs0 = vs + kBN * (DV + kPad);         // 2 x [kBQ][DQK + kPad]
  bf16* dos0 = qs0 + 2 * kBQ * (DQK + kPad);  // 2 x [kBQ][DV + kPad]
  float* lse_s0 = reinterpret_cast<float*>(dos0 + 2 * kBQ * (DV + kPad));  // 2 x [kBQ] lse * log2(e)
  float* delta_s0 = lse_s0 + 2 * kBQ;                                       // 2 x [kBQ]

  Tile tile;  // keys j0 .. j0 + kBN - 1 of one sequence; long causal columns come first
  if (!find_tile(p.cu, p.n_seq, p.T, kBN, blockIdx.x, /*reverse=*/false, tile)) return;
  const int g = blockIdx.y;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, gid = lane / 4, tig = lane % 4;
  const std::int64_t ldq = static_cast<std::int64_t>(p.Hq) * DQK, ldk = static_cast<std::int64_t>(p.Hkv) * DQK;
  const std::int64_t ldv = static_cast<std::int64_t>(p.Hkv) * DV, ldo = static_cast<std::int64_t>(p.Hq) * DV;
  const int j0 = tile.row0;
  const std::int64_t key_t0 = static_cast<std::int64_t>(tile.t0) + j0;  // first key token of the block
  stage_rows_async<kBN, DQK>(ks, p.k + key_t0 * ldk + g * DQK, ldk, min(kBN, tile.len - j0));
  stage_rows_async<kBN, DV>(vs, p.v + key_t0 * ldv + g * DV, ldv, min(kBN, tile.len - j0));  // with tile 0

  // The (query head, query tile) pairs in order: heads of the group, then the query tiles
  // that see a key of the block. Pair it goes into buffer it % 2, one commit group.
  const int i_first = (j0 / kBQ) * kBQ, per_head = (tile.len - i_first + kBQ - 1) / kBQ;
  const int n_pairs = p.group * per_head;
  auto stage_q = [&](int it) {
    const int h = g * p.group + it / per_head, i0 = i_first + (it % per_head) * kBQ, b = it % 2;
    const std::int64_t q_t0 = static_cast<std::int64_t>(tile.t0) + i0;
    const int q_valid = min(kBQ, tile.len - i0);
    stage_rows_async<kBQ, DQK>(qs0 + b * kBQ * (DQK + kPad), p.q + q_t0 * ldq + h * DQK, ldq, q_valid);
    stage_rows_async<kBQ, DV>(dos0 + b * kBQ * (DV + kPad), p.dout + q_t0 * ldo + h * DV, ldo, q_valid);
    cp_async_commit();
    if (threadIdx.x < kBQ) {  // plain loads: visible after the barrier that follows the wait
      const int r = threadIdx.x;
      lse_s0[b * kBQ + r] = r < q_valid ? p.lse[(q_t0 + r) * p.Hq + h] * kLog2e : 0.0f;
      delta_s0[b * kBQ + r] = r < q_valid ? p.delta[(q_t0 + r) * p.Hq + h] : 0.0f;
    }
  };

  const int warp_key0 = j0 + warp * 16;
  const int key_lo = warp_key0 + gid, key_hi = key_lo + 8;  // this thread's two keys
  float dk[DQK / 8][4], dv[DV / 8][4];
#pragma unroll
  for (int n = 0; n < DQK / 8; ++n) dk[n][0] = dk[n][1] = dk[n][2] = dk[n][3] = 0.0f;
#pragma unroll
  for (int n = 0; n < DV / 8; ++n) dv[n][0] = dv[n][1] = dv[n][2] = dv[n][3] = 0.0f;

  if (n_pairs > 0) stage_q(0);
  for (int it = 0; it < n_pairs; ++it) {
    {
      const int i0 = i_first + (it % per_head) * kBQ, b = it % 2;
      // Pair it + 1 goes into the other buffer, free since the barrier ending pair it - 1.
      if (it + 1 < n_pairs) {
        stage_q(it + 1);
        cp_async_wait<1>();  // everything but pair it + 1 has landed
      } else {
        cp_async_wait<0>();
      }
      __syncthreads();
      const bf16* qs = qs0 + b * kBQ * (DQK + kPad);
      const bf16* dos = dos0 + b * kBQ * (DV + kPad);
      const float* lse_s = lse_s0 + b * kBQ;
      const float* delta_s = delta_s0 + b * kBQ;
      if (i0 + kBQ - 1 >= warp_key0) {  // warp-uniform: else every query of the tile is before its keys

      // S^T = K Q^T and dP^T = V dO^T: the warp's 16 keys x kBQ queries.
      float st[kBQ / 8][4], dpt[kBQ / 8][4];
#pragma unroll
      for (int n = 0; n < kBQ / 8; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e) st[n][e] = dpt[n][e] = 0.0f;
#pragma unroll
      for (int k0 = 0; k0 < DQK; k0 += 16) {
        std::uint32_t a[4];
        load_a<DQK>(a, ks, warp * 16, k0, gid, tig);
#pragma unroll
        for (int n = 0; n < kBQ / 8; ++n) {
          std::uint32_t b0, b1;
          load_b_nt<DQK>(b0, b1, qs, n * 8, k0, gid, tig);
          mma_bf16(st[n], a, b0, b1);
        }
      }
#pragma unroll
      for (int k0 = 0; k0 < DV; k0 += 16) {
        std::uint32_t a[4];
        load_a<DV>(a, vs, warp * 16, k0, gid, tig);
#pragma unroll
        for (int n = 0; n < kBQ / 8; ++n) {
          std::uint32_t b0, b1;
          load_b_nt<DV>(b0, b1, dos, n * 8, k0, gid, tig);
          mma_bf16(dpt[n], a, b0, b1);
        }
      }
      // P^T (masked to exactly 0) and dS^T = P^T (dP^T - D).
#pragma unroll
      for (int n = 0; n < kBQ / 8; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int r = n * 8 + 2 * tig + (e & 1), qi = i0 + r, key = e < 2 ? key_lo : key_hi;
          const float pe = (key <= qi && qi < tile.len) ? exp2f(st[n][e] * p.scale_log2 - lse_s[r]) : 0.0f;
          st[n][e] = pe;
          dpt[n][e] = pe * (dpt[n][e] - delta_s[r]);
        }
      // dV += P^T dO and dK += dS^T Q (k = the kBQ queries).
#pragma unroll
      for (int kk = 0; kk < kBQ / 16; ++kk) {
        const std::uint32_t ap[4] = {
            pack_bf16(st[2 * kk][0], st[2 * kk][1]), pack_bf16(st[2 * kk][2], st[2 * kk][3]),
            pack_bf16(st[2 * kk + 1][0], st[2 * kk + 1][1]), pack_bf16(st[2 * kk + 1][2], st[2 * kk + 1][3])};
        const std::uint32_t ads[4] = {
            pack_bf16(dpt[2 * kk][0], dpt[2 * kk][1]), pack_bf16(dpt[2 * kk][2], dpt[2 * kk][3]),
            pack_bf16(dpt[2 * kk + 1][0], dpt[2 * kk + 1][1]), pack_bf16(dpt[2 * kk + 1][2], dpt[2 * kk + 1][3])};
#pragma unroll
        for (int n = 0; n < DV / 16; ++n) {
          std::uint32_t b[4];
          load_b_kn_x2<DV>(b, dos, kk * 16, n * 16, lane);
          mma_bf16(dv[2 * n], ap, b[0], b[1]);
          mma_bf16(dv[2 * n + 1], ap, b[2], b[3]);
        }
#pragma unroll
        for (int n = 0; n < DQK / 16; ++n) {
          std::uint32_t b[4];
          load_b_kn_x2<DQK>(b, qs, kk * 16, n * 16, lane);
          mma_bf16(dk[2 * n], ads, b[0], b[1]);
          mma_bf16(dk[2 * n + 1], ads, b[2], b[3]);
        }
      }
      }
      __syncthreads();  // pair it's buffers are free for pair it + 2
    }
  }

#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int key = r == 0 ? key_lo : key_hi;
    if (key >= tile.len) continue;
    const std::int64_t t = static_cast<std::int64_t>(tile.t0) + key;
    float* dkrow = p.dk + t * ldk + g * DQK;
    float* dvrow = p.dv + t * ldv + g * DV;
#pragma unroll
    for (int n = 0; n < DQK / 8; ++n)
      *reinterpret_cast<float2*>(dkrow + n * 8 + 2 * tig) =
          make_float2(dk[n][2 * r] * p.scale, dk[n][2 * r + 1] * p.scale);
#pragma unroll
    for (int n = 0; n < DV / 8; ++n)
      *reinterpret_cast<float2*>(dvrow + n * 8 + 2 * tig) = make_float2(dv[n][2 * r], dv[n][2 * r + 1]);
  }
}

// Q and dO of the block; two buffers each of the K and V tiles.
template <int DQK, int DV>
constexpr std::size_t dq_smem_bytes() {
  return sizeof(bf16) * (static_cast<std::size_t>(kBM + 2 * kBK) * (DQK + kPad + DV + kPad));
}

template <int DQK, int DV>
__global__ void __launch_bounds__(kThreads) bf16_attention_dq_kernel(const BackwardParams p) {
  extern __shared__ __align__(16) unsigned char smem[];
  bf16* qs = reinterpret_cast<bf16*>(smem);  // [kBM][DQK + kPad]
  bf16* dos = qs + kBM * (DQK + kPad);        // [kBM][DV + kPad]
  bf16* ks0 = dos + kBM * (DV + kPad);        // 2 x [kBK][DQK + kPad]
  bf16* vs0 = ks0 + 2 * kBK * (DQK + kPad);   // 2 x [kBK][DV + kPad]

  Tile tile;
  if (!find_tile(p.cu, p.n_seq, p.T, kBM, blockIdx.x, /*reverse=*/true, tile)) return;
  const int h = blockIdx.y, g = h / p.group;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, gid = lane / 4, tig = lane % 4;
  const std::int64_t ldq = static_cast<std::int64_t>(p.Hq) * DQK, ldk = static_cast<std::int64_t>(p.Hkv) * DQK;
  const std::int64_t ldv = static_cast<std::int64_t>(p.Hkv) * DV, ldo = static_cast<std::int64_t>(p.Hq) * DV;
  const std::int64_t q_t0 = static_cast<std::int64_t>(tile.t0) + tile.row0;
  const int q_valid = min(kBM, tile.len - tile.row0);
  stage_rows_async<kBM, DQK>(qs, p.q + q_t0 * ldq + h * DQK, ldq, q_valid);
  stage_rows_async<kBM, DV>(dos, p.dout + q_t0 * ldo + h * DV, ldo, q_valid);  // with K/V tile 0
  const bf16* kg = p.k + static_cast<std::int64_t>(tile.t0) * ldk + g * DQK;
  const bf16* vg = p.v + static_cast<std::int64_t>(tile.t0) * ldv + g * DV;
  auto stage_kv = [&](int kt) { stage_kv_tile<kBK, DQK, DV>(ks0, vs0, kg, ldk, vg, ldv, kt, tile.len); };

  const int warp_row0 = tile.row0 + warp * 16;
  const int row_lo = warp_row0 + gid, row_hi = row_lo + 8;
  float lse2[2], delta[2];  // per row: lse * log2(e), D (0 for rows past the sequence)
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int row = r == 0 ? row_lo : row_hi;
    const std::int64_t t = static_cast<std::int64_t>(tile.t0) + row;
    lse2[r] = row < tile.len ? p.lse[t * p.Hq + h] * kLog2e : 0.0f;
    delta[r] = row < tile.len ? p.delta[t * p.Hq + h] : 0.0f;
  }
  float dq[DQK / 8][4];
#pragma unroll
  for (int n = 0; n < DQK / 8; ++n) dq[n][0] = dq[n][1] = dq[n][2] = dq[n][3] = 0.0f;

  const int key_end = min(tile.len, tile.row0 + kBM);
  const int n_tiles = (key_end + kBK - 1) / kBK;
  stage_kv(0);
  for (int kt = 0; kt < n_tiles; ++kt) {
    const int j0 = kt * kBK;
    if (kt + 1 < n_tiles) {  // into the buffer freed by the barrier ending tile kt - 1
      stage_kv(kt + 1);
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const bf16* ks = ks0 + (kt % 2) * kBK * (DQK + kPad);
    const bf16* vs = vs0 + (kt % 2) * kBK * (DV + kPad);
    if (j0 <= warp_row0 + 15) {  // warp-uniform: else every key of the tile is after the warp's rows

    float s[kBK / 8][4], dp[kBK / 8][4];
#pragma unroll
    for (int n = 0; n < kBK / 8; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) s[n][e] = dp[n][e] = 0.0f;
#pragma unroll
    for (int k0 = 0; k0 < DQK; k0 += 16) {
      std::uint32_t a[4];
      load_a<DQK>(a, qs, warp * 16, k0, gid, tig);
#pragma unroll
      for (int n = 0; n < kBK / 8; ++n) {
        std::uint32_t b0, b1;
        load_b_nt<DQK>(b0, b1, ks, n * 8, k0, gid, tig);
        mma_bf16(s[n], a, b0, b1);
      }
    }
#pragma unroll
    for (int k0 = 0; k0 < DV; k0 += 16) {
      std::uint32_t a[4];
      load_a<DV>(a, dos, warp * 16, k0, gid, tig);
#pragma unroll
      for (int n = 0; n < kBK / 8; ++n) {
        std::uint32_t b0, b1;
        load_b_nt<DV>(b0, b1, vs, n * 8, k0, gid, tig);
        mma_bf16(dp[n], a, b0, b1);
      }
    }
#pragma unroll
    for (int n = 0; n < kBK / 8; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int j = j0 + n * 8 + 2 * tig + (e & 1), r = e / 2, row = r == 0 ? row_lo : row_hi;
        const float pe = (j <= row && row < tile.len) ? exp2f(s[n][e] * p.scale_log2 - lse2[r]) : 0.0f;
        dp[n][e] = pe * (dp[n][e] - delta[r]);
      }
    // dQ += dS K (k = the kBK keys).
#pragma unroll
    for (int kk = 0; kk < kBK / 16; ++kk) {
      const std::uint32_t a[4] = {pack_bf16(dp[2 * kk][0], dp[2 * kk][1]), pack_bf16(dp[2 * kk][2], dp[2 * kk][3]),
                                  pack_bf16(dp[2 * kk + 1][0], dp[2 * kk + 1][1]),
                                  pack_bf16(dp[2 * kk + 1][2], dp[2 * kk + 1][3])};
#pragma unroll
      for (int n = 0; n < DQK / 16; ++n) {
        std::uint32_t b[4];
        load_b_kn_x2<DQK>(b, ks, kk * 16, n * 16, lane);
        mma_bf16(dq[2 * n], a, b[0], b[1]);
        mma_bf16(dq[2 * n + 1], a, b[2], b[3]);
      }
    }
    }
    __syncthreads();  // tile kt's buffers are free for tile kt + 2
  }

#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int row = r == 0 ? row_lo : row_hi;
    if (row >= tile.len) continue;
    float* dqrow = p.dq + (static_cast<std::int64_t>(tile.t0) + row) * ldq + h * DQK;
#pragma unroll
    for (int n = 0; n < DQK / 8; ++n)
      *reinterpret_cast<float2*>(dqrow + n * 8 + 2 * tig) =
          make_float2(dq[n][2 * r] * p.scale, dq[n][2 * r + 1] * p.scale);
  }
}

template <int DQK, int DV>
void launch_backward(const BackwardParams& p, std::int64_t n_seq, cudaStream_t st) {
  constexpr std::size_t smem_kv = dkdv_smem_bytes<DQK, DV>(), smem_q = dq_smem_bytes<DQK, DV>();
  CHECK_CUDA(cudaFuncSetAttribute(bf16_attention_dkdv_kernel<DQK, DV>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                  static_cast<int>(smem_kv)));
  CHECK_CUDA(cudaFuncSetAttribute(bf16_attention_dq_kernel<DQK, DV>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                  static_cast<int>(smem_q)));
  const dim3 grid_kv(static_cast<unsigned>((p.T + kBN - 1) / kBN + n_seq), static_cast<unsigned>(p.Hkv));
  bf16_attention_dkdv_kernel<DQK, DV><<<grid_kv, kThreads, smem_kv, st>>>(p);
  CHECK_CUDA_LAUNCH();
  const dim3 grid_q(static_cast<unsigned>((p.T + kBM - 1) / kBM + n_seq), static_cast<unsigned>(p.Hq));
  bf16_attention_dq_kernel<DQK, DV><<<grid_q, kThreads, smem_q, st>>>(p);
  CHECK_CUDA_LAUNCH();
}

}  // namespace

void attention_backward(const float* dout, const float* q, const float* k, const float* v, const float* out,
                        const float* lse, const std::int32_t* cu_seqlens, const AttentionShape& s, float scale,
                        float* dq, float* dk, float* dv, void* stream, Bf16Qkv kept) {
  if (!attention_head_dims_supported(s.dqk, s.dv))
    return attention_backward_generic(dout, q, k, v, out, lse, cu_seqlens, s, scale, dq, dk, dv, stream);
  CRUCIBLE_CHECK(s.T < (std::int64_t{1} << 31) && s.n_seq < (std::int64_t{1} << 31) && s.Hq <= 65535,
                 "attention_backward (CUDA): T = ", s.T, ", B = ", s.n_seq, ", Hq = ", s.Hq, " exceed the grid");
  for (const void* ptr : {static_cast<const void*>(dout), static_cast<const void*>(q), static_cast<const void*>(k),
                          static_cast<const void*>(v), static_cast<const void*>(out), static_cast<const void*>(dq),
                          static_cast<const void*>(dk), static_cast<const void*>(dv)})
    CRUCIBLE_CHECK(reinterpret_cast<std::uintptr_t>(ptr) % 16 == 0,
                   "attention_backward (CUDA): dout, q, k, v, out, dq, dk and dv must be 16-byte aligned");
  if (s.T == 0 || s.n_seq == 0) return;
  auto st = static_cast<cudaStream_t>(stream);
  const std::int64_t rows = s.T * s.Hq;
  float* delta = nullptr;  // [T, Hq], stream-ordered scratch
  CHECK_CUDA(cudaMallocAsync(reinterpret_cast<void**>(&delta), static_cast<std::size_t>(rows) * sizeof(float), st));
  attention_delta_kernel<<<static_cast<unsigned>((rows + kWarps - 1) / kWarps), kThreads, 0, st>>>(
      dout, out, delta, rows, static_cast<int>(s.dv));
  CHECK_CUDA_LAUNCH();
  // BF16 copies (RNE, the rounding the kernels applied while staging before), made once;
  // q, k, v's from the forward when it kept them.
  DeviceScratch scratch[3];
  auto rounded = [&](const float* x, std::int64_t n, const std::uint16_t* have, DeviceScratch& local) -> const bf16* {
    if (have != nullptr) return reinterpret_cast<const bf16*>(have);
    local = bf16_copy(x, n, st);
    return local.as<bf16>();
  };
  const DeviceScratch dob = bf16_copy(dout, s.T * s.Hq * s.dv, st);
  const BackwardParams p{dob.as<bf16>(),
                         rounded(q, s.T * s.Hq * s.dqk, kept.q, scratch[0]),
                         rounded(k, s.T * s.Hkv * s.dqk, kept.k, scratch[1]),
                         rounded(v, s.T * s.Hkv * s.dv, kept.v, scratch[2]),
                         lse,
                         delta,
                         cu_seqlens,
                         dq,
                         dk,
                         dv,
                         scale,
                         scale * kLog2e,
                         static_cast<int>(s.T),
                         static_cast<int>(s.Hq),
                         static_cast<int>(s.Hkv),
                         static_cast<int>(s.Hq / s.Hkv),
                         static_cast<int>(s.n_seq)};
  if (s.dqk == 192)
    launch_backward<192, 128>(p, s.n_seq, st);
  else if (s.dqk == 128)
    launch_backward<128, 128>(p, s.n_seq, st);
  else
    launch_backward<64, 64>(p, s.n_seq, st);
  CHECK_CUDA(cudaFreeAsync(delta, st));
}

}  // namespace crucible::cuda
