// kernels/cuda/decode_attention.cu: decode attention over a KV cache on the GPU (GQA and
// absorbed MLA, flash-decoding), the KV-cache append and the MLA absorption products.
//
// The CUDA twins of kernels/cpu/decode_attention.cpp (contracts in kernels/
// decode_attention.h). Both attention kernels split each token's keys into chunks;
// a chunk keeps an online softmax (running max m in log2 units, sum l, unnormalized
// output) and either writes the normalized row itself (the token has one chunk) or
// its partial (o, m, l) to scratch, which decode_combine_kernel merges in ascending
// chunk order: out = sum_s 2^(m_s - M) o_s / sum_s 2^(m_s - M) l_s, M = max_s m_s.
// No atomics anywhere: same call, same bits.
//
// GQA (FP32 CUDA cores): one warp per (token, kv head, pack of <= 8 query heads of the
// group, chunk of kGqaChunk keys). Lanes split the head dim (kPer dims each, one 16-byte
// load per key row for d = 128 FP32), so a key row is one coalesced read shared by the
// pack's heads; kGqaUnroll keys are loaded before they are used. Arithmetic is a few
// FLOP per byte: memory bound. Chunking is fixed (kGqaChunk), so a token's result does
// not depend on the rest of the batch.
//
// MLA (BF16 tensor cores, mma.sync m16n8k16, FP32 accumulation): one block of 8 warps
// per (token, 64 query heads, chunk). The latent is read once for the 64 heads; with
// 128 heads the two head groups of a (token, chunk) are neighbours in the grid, so the
// second read mostly hits L2. Per tile of kMlaKeys keys: cp.async brings the next tile
// (FP32 or BF16, as stored) into a raw staging buffer while the current one is
// computed; the tile is then rounded to BF16 into a padded [keys][R + P] tile that is
// both K (all 576 columns) and V (the first R). Warp (r, c) computes S for heads
// 16r..16r+15 and keys 16c..16c+15, the two key halves exchange row maxima through
// shared memory, P goes to shared memory as BF16, and warp (r, c) accumulates
// O[16 heads x R/2 columns] += P V (128 FP32 registers per thread for R = 512).
// MLA on Hopper with a BF16 cache (sm90_mla_decode_kernel, R = 512 or 256; wgmma): one
// block of 2 warpgroups per (token, 64 query heads, chunk), key tiles of 64 rows double-
// buffered by cp.async straight into shared memory, which holds Q, the tiles and P in one
// layout: 64-column blocks of 128-byte rows, 128-byte swizzled (sm90_wgmma.cuh). A tile is
// both K of S = Q K^T (K-major: keys are rows) and V of O += P V (N-major: the same rows
// read along the columns), so the latent is staged once and never transposed. Warpgroup
// w computes S for keys 32 w .. 32 w + 31 of the tile (m64n32k16); the two exchange row
// maxima through shared memory and write P (BF16) there; warpgroup w then accumulates
// output columns w R/2 .. (w + 1) R/2 - 1 (m64n128k16, B N-major). Numerics as the
// mma.sync kernel's: Q, K, V and P rounded to BF16, FP32 accumulation, the same combine;
// its splits are multiples of 64 keys (32 for mma.sync), so the two can split apart.
// NOTE: tried, slower: each warpgroup computing the whole S tile and feeding P from
// registers (no P in shared memory, no exchange): 1173 against 1303 GB/s at
// mla_dsv3_b128_l8k (bench_gpu_decode_attention, session 9 calls 3 and 6).
// NOTE: MLA decode at 128 heads does ~240 FLOP per cache byte (FP32 cache): FP32 CUDA
// cores (67 TFLOP/s) would cap it near 280 GB/s, so it runs on the tensor cores, as
// FlashMLA does. The split count is chosen per call from T, Hq and max_len to fill
// one wave of SMs (partials of 128 x 512 floats per chunk are expensive), so an MLA
// result may depend on T and max_len at FP32 rounding level, never run to run.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "core/cuda_check.h"
#include "core/error.h"
#include "kernels/cuda/attention_common.cuh"
#include "kernels/cuda/cublaslt_context.h"
#include "kernels/cuda/decode_attention_cuda.h"
#include "kernels/cuda/device_utils.cuh"
#include "kernels/cuda/sm90_wgmma.cuh"

namespace crucible::cuda {

namespace {

using attn::bf16;
using attn::kLog2e;
using attn::kPad;
using attn::load_a;
using attn::load_b_kn_x2;
using attn::load_b_nt;
using attn::mma_bf16;
using attn::pack_bf16;
using detail::warp_sum;

__device__ __forceinline__ float to_f32(float x) { return x; }
__device__ __forceinline__ float to_f32(bf16 x) { return __bfloat162float(x); }

// slot[t] and len[t]; a value out of range prints and traps.
__device__ __forceinline__ void load_place(const std::int32_t* slot, const std::int32_t* len, int t, int slots,
                                           int max_len, const char* op, int& s, int& n) {
  s = slot[t];
  n = len[t];
  if (s < 0 || s >= slots || n < 0 || n > max_len)
    CRUCIBLE_DEVICE_FAIL("%s: token %d has cache slot %d (slots %d) and length %d (max_len %d)\n", op, t, s, slots,
                         n, max_len);
}

// ------------------------------------------------------------------------ combine

constexpr int kCombineThreads = 128;

struct CombineParams {
  const float* part_o;    // [rows, max_chunks, W] unnormalized chunk outputs
  const float2* part_ml;  // [rows, max_chunks] (m in log2 units, l)
  const std::int32_t* slot;  // [T]
  const std::int32_t* len;   // [T]
  float* out;             // [rows = T * Hq, W]
  int Hq, W, chunk, max_chunks, slots, max_len;
  bool mla;               // names the op in the report: mla_decode, else gqa_decode
};

// One block per (token, head) row: n = ceil(len / chunk) chunks; n == 1 was written
// by the chunk itself, n == 0 (empty sequence) writes zeros. Dynamic shared memory:
// max_chunks floats (the chunk weights 2^(m_s - M)). Head 0's block also checks the
// token's place (the Hopper MLA kernel skips a bad one and leaves the report here).
__global__ void __launch_bounds__(kCombineThreads) decode_combine_kernel(const CombineParams p) {
  extern __shared__ float weight[];
  const std::int64_t row = blockIdx.x;
  const int t = static_cast<int>(row / p.Hq);
  if (threadIdx.x == 0 && row % p.Hq == 0) {
    int s, n;
    load_place(p.slot, p.len, t, p.slots, p.max_len, p.mla ? "mla_decode" : "gqa_decode", s, n);
  }
  const int len = max(p.len[t], 0);
  const int n = min((len + p.chunk - 1) / p.chunk, p.max_chunks);
  float* o = p.out + row * p.W;
  if (n == 1) return;
  if (n == 0) {
    for (int c = threadIdx.x; c < p.W; c += blockDim.x) o[c] = 0.0f;
    return;
  }
  const float2* ml = p.part_ml + row * p.max_chunks;
  float M = -INFINITY;
  for (int s = 0; s < n; ++s) M = fmaxf(M, ml[s].x);
  for (int s = threadIdx.x; s < n; s += blockDim.x) weight[s] = exp2f(ml[s].x - M);
  __syncthreads();
  float L = 0.0f;  // every thread sums in the same order
  for (int s = 0; s < n; ++s) L += weight[s] * ml[s].y;
  const float inv = 1.0f / L;
  const float* po = p.part_o + row * p.max_chunks * p.W;
  for (int c = threadIdx.x; c < p.W; c += blockDim.x) {
    float acc = 0.0f;
    for (int s = 0; s < n; ++s) acc += weight[s] * po[static_cast<std::int64_t>(s) * p.W + c];
    o[c] = acc * inv;
  }
}

void launch_combine(const CombineParams& p, std::int64_t rows, cudaStream_t st) {
  if (rows == 0) return;
  decode_combine_kernel<<<static_cast<unsigned>(rows), kCombineThreads, sizeof(float) * p.max_chunks, st>>>(p);
  CHECK_CUDA_LAUNCH();
}

// ---------------------------------------------------------------------------- GQA

constexpr int kGqaWarps = 4;     // warps per block, one chunk each
constexpr int kGqaChunk = 128;   // keys per chunk (fixed: results independent of the batch)
constexpr int kGqaUnroll = 4;    // key rows loaded before the first is used

struct GqaParams {
  const float* q;            // [T, Hq, d]
  const void* k;             // [slots, capacity, Hkv, d] f32 or bf16
  const void* v;             // same
  const std::int32_t* slot;  // [T]
  const std::int32_t* len;   // [T]
  float* out;                // [T, Hq, d]
  float* part_o;             // [T * Hq, max_chunks, d]; null when max_chunks == 1
  float2* part_ml;           // [T * Hq, max_chunks]; null when max_chunks == 1
  float scale_log2;          // scale * log2(e)
  int Hq, Hkv, d, group, packs, slots, capacity, max_len, max_chunks;
  bool vec;                  // d == 32 kPer and 16-byte aligned bases: vector loads
};

// The lane's kPer dims (lane kPer .. lane kPer + kPer - 1) of a row; dims >= d read 0.
template <int kPer, typename T>
__device__ __forceinline__ void load_lane(const T* row, int lane, int d, bool vec, float (&x)[kPer]) {
  const int base = lane * kPer;
  if (vec) {
    if constexpr (std::is_same_v<T, float>) {
      if constexpr (kPer == 4) {
        const float4 v = *reinterpret_cast<const float4*>(row + base);
        x[0] = v.x, x[1] = v.y, x[2] = v.z, x[3] = v.w;
        return;
      } else if constexpr (kPer == 2) {
        const float2 v = *reinterpret_cast<const float2*>(row + base);
        x[0] = v.x, x[1] = v.y;
        return;
      }
    } else {
      if constexpr (kPer == 4) {
        const uint2 u = *reinterpret_cast<const uint2*>(row + base);
        const float2 a = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&u.x));
        const float2 b = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&u.y));
        x[0] = a.x, x[1] = a.y, x[2] = b.x, x[3] = b.y;
        return;
      } else if constexpr (kPer == 2) {
        const float2 a = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(row + base));
        x[0] = a.x, x[1] = a.y;
        return;
      }
    }
  }
#pragma unroll
  for (int i = 0; i < kPer; ++i) x[i] = base + i < d ? to_f32(row[base + i]) : 0.0f;
}

template <int kPer>
__device__ __forceinline__ void store_lane(float* row, int lane, int d, bool vec, const float (&x)[kPer],
                                           float mul) {
  const int base = lane * kPer;
  if (vec) {
    if constexpr (kPer == 4) {
      *reinterpret_cast<float4*>(row + base) = make_float4(x[0] * mul, x[1] * mul, x[2] * mul, x[3] * mul);
      return;
    } else if constexpr (kPer == 2) {
      *reinterpret_cast<float2*>(row + base) = make_float2(x[0] * mul, x[1] * mul);
      return;
    }
  }
#pragma unroll
  for (int i = 0; i < kPer; ++i)
    if (base + i < d) row[base + i] = x[i] * mul;
}

template <int kPer, int kHeads, typename T>
__global__ void __launch_bounds__(kGqaWarps * 32) f32_gqa_decode_kernel(const GqaParams p) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int t = blockIdx.z, g = blockIdx.y / p.packs, pack = blockIdx.y % p.packs;
  const int chunk = blockIdx.x * kGqaWarps + warp;
  int s, n;
  load_place(p.slot, p.len, t, p.slots, p.max_len, "gqa_decode", s, n);
  const int start = chunk * kGqaChunk;
  if (start >= n) return;  // warp-uniform; no block-level synchronization below
  const int end = min(n, start + kGqaChunk);
  const int h0 = g * p.group + pack * kHeads, nh = min(kHeads, p.group - pack * kHeads);

  float q[kHeads][kPer];
#pragma unroll
  for (int hh = 0; hh < kHeads; ++hh) {
    if (hh < nh) {
      load_lane<kPer>(p.q + (static_cast<std::int64_t>(t) * p.Hq + h0 + hh) * p.d, lane, p.d, p.vec, q[hh]);
#pragma unroll
      for (int i = 0; i < kPer; ++i) q[hh][i] *= p.scale_log2;
    } else {
#pragma unroll
      for (int i = 0; i < kPer; ++i) q[hh][i] = 0.0f;
    }
  }
  const std::int64_t ld = static_cast<std::int64_t>(p.Hkv) * p.d;  // between key rows
  const std::int64_t base = static_cast<std::int64_t>(s) * p.capacity * ld + static_cast<std::int64_t>(g) * p.d;
  const T* kb = static_cast<const T*>(p.k) + base;
  const T* vb = static_cast<const T*>(p.v) + base;

  float m[kHeads], l[kHeads], acc[kHeads][kPer];
#pragma unroll
  for (int hh = 0; hh < kHeads; ++hh) {
    m[hh] = -INFINITY, l[hh] = 0.0f;
#pragma unroll
    for (int i = 0; i < kPer; ++i) acc[hh][i] = 0.0f;
  }
  for (int j0 = start; j0 < end; j0 += kGqaUnroll) {
    float kx[kGqaUnroll][kPer], vx[kGqaUnroll][kPer];
#pragma unroll
    for (int u = 0; u < kGqaUnroll; ++u) {
      const std::int64_t j = min(j0 + u, end - 1);  // the tail repeats the last key, masked below
      load_lane<kPer>(kb + j * ld, lane, p.d, p.vec, kx[u]);
      load_lane<kPer>(vb + j * ld, lane, p.d, p.vec, vx[u]);
    }
    float x[kGqaUnroll][kHeads];
#pragma unroll
    for (int u = 0; u < kGqaUnroll; ++u)
#pragma unroll
      for (int hh = 0; hh < kHeads; ++hh) {
        float dot = 0.0f;
#pragma unroll
        for (int i = 0; i < kPer; ++i) dot += q[hh][i] * kx[u][i];
        dot = warp_sum(dot);
        x[u][hh] = j0 + u < end ? dot : -INFINITY;
      }
#pragma unroll
    for (int hh = 0; hh < kHeads; ++hh) {
      float mx = m[hh];
#pragma unroll
      for (int u = 0; u < kGqaUnroll; ++u) mx = fmaxf(mx, x[u][hh]);
      const float alpha = exp2f(m[hh] - mx);  // 0 on the first keys (m = -inf)
      m[hh] = mx;
      l[hh] *= alpha;
#pragma unroll
      for (int i = 0; i < kPer; ++i) acc[hh][i] *= alpha;
#pragma unroll
      for (int u = 0; u < kGqaUnroll; ++u) {
        const float pe = exp2f(x[u][hh] - mx);
        l[hh] += pe;
#pragma unroll
        for (int i = 0; i < kPer; ++i) acc[hh][i] += pe * vx[u][i];
      }
    }
  }

  const bool single = n <= kGqaChunk;
#pragma unroll
  for (int hh = 0; hh < kHeads; ++hh) {
    if (hh >= nh) continue;
    const std::int64_t row = static_cast<std::int64_t>(t) * p.Hq + h0 + hh;
    if (single) {
      store_lane<kPer>(p.out + row * p.d, lane, p.d, p.vec, acc[hh], 1.0f / l[hh]);
    } else {
      const std::int64_t at = row * p.max_chunks + chunk;
      store_lane<kPer>(p.part_o + at * p.d, lane, p.d, p.vec, acc[hh], 1.0f);
      if (lane == 0) p.part_ml[at] = make_float2(m[hh], l[hh]);
    }
  }
}

template <int kPer, int kHeads, typename T>
void launch_gqa(const GqaParams& p, std::int64_t T_tokens, cudaStream_t st) {
  const dim3 grid(static_cast<unsigned>((p.max_chunks + kGqaWarps - 1) / kGqaWarps),
                  static_cast<unsigned>(p.Hkv * p.packs), static_cast<unsigned>(T_tokens));
  f32_gqa_decode_kernel<kPer, kHeads, T><<<grid, kGqaWarps * 32, 0, st>>>(p);
  CHECK_CUDA_LAUNCH();
}

template <int kHeads, typename T>
void dispatch_gqa_dim(const GqaParams& p, std::int64_t T_tokens, cudaStream_t st) {
  if (p.d <= 32) return launch_gqa<1, kHeads, T>(p, T_tokens, st);
  if (p.d <= 64) return launch_gqa<2, kHeads, T>(p, T_tokens, st);
  return launch_gqa<4, kHeads, T>(p, T_tokens, st);
}

// ---------------------------------------------------------------------------- MLA

constexpr int kMlaHeads = 64;                // query heads per block (4 groups of 16 rows)
constexpr int kMlaKeys = 32;                 // keys per tile
constexpr int kMlaWarps = 8;                 // warp (r, c) = (warp % 4, warp / 4)
constexpr int kMlaThreads = kMlaWarps * 32;
constexpr int kMlaMinChunk = 256;            // keys per split, at least

struct MlaParams {
  const float* q_lat;        // [T, Hq, R]
  const float* q_rope;       // [T, Hq, P]
  const void* ckv;           // [slots, capacity, R] f32 or bf16
  const void* kpe;           // [slots, capacity, P] same dtype
  const std::int32_t* slot;  // [T]
  const std::int32_t* len;   // [T]
  float* out;                // [T, Hq, R]
  float* part_o;             // [T * Hq, max_chunks, R]; null when max_chunks == 1
  float2* part_ml;           // [T * Hq, max_chunks]; null when max_chunks == 1
  float scale_log2;          // scale * log2(e)
  int Hq, slots, capacity, max_len, chunk, max_chunks;  // chunk: keys per split, a multiple of kMlaKeys
};

// Shared memory of one block (byte offsets, each a multiple of 16).
template <int R, int P, typename T>
struct MlaLayout {
  static constexpr int kD = R + P;                  // key width (576)
  static constexpr int kLd = kD + kPad;             // BF16 row stride of the q and key tiles
  static constexpr int kPLd = kMlaKeys + kPad;      // BF16 row stride of P
  static constexpr std::size_t kQ = 0;                                           // bf16 [64][kLd]
  static constexpr std::size_t kK = kQ + sizeof(bf16) * kMlaHeads * kLd;        // bf16 [32][kLd]
  static constexpr std::size_t kRaw = kK + sizeof(bf16) * kMlaKeys * kLd;        // T [32][kD]
  static constexpr std::size_t kP = kRaw + sizeof(T) * kMlaKeys * kD;            // bf16 [64][kPLd]
  static constexpr std::size_t kRed = kP + sizeof(bf16) * kMlaHeads * kPLd;      // f32 [2][2][64]
  static constexpr std::size_t kBytes = kRed + sizeof(float) * 4 * kMlaHeads;
  static_assert(kK % 16 == 0 && kRaw % 16 == 0 && kP % 16 == 0 && kRed % 16 == 0, "16-byte aligned regions");
  static_assert((R * sizeof(T)) % 16 == 0 && (P * sizeof(T)) % 16 == 0, "cache rows in 16-byte pieces");
  static_assert(R % 32 == 0 && P % 16 == 0, "R / 2 in n16 tiles, R + P in k16 steps");
};

__device__ __forceinline__ void cp_async16(void* smem_dst, const void* gmem_src) {
  const auto s = static_cast<std::uint32_t>(__cvta_generic_to_shared(smem_dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(s), "l"(gmem_src) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_group 0;\n" ::: "memory"); }

// Starts the copy of `valid` key rows from j0 (c_kv then k_rope) into raw [kMlaKeys][R + P].
template <int R, int P, typename T>
__device__ __forceinline__ void prefetch_tile(unsigned char* raw, const unsigned char* ckv, const unsigned char* kpe,
                                              int j0, int valid) {
  constexpr int kC = static_cast<int>(R * sizeof(T) / 16), kR = static_cast<int>(P * sizeof(T) / 16);
  constexpr int kRow = kC + kR;
  for (int i = threadIdx.x; i < valid * kRow; i += kMlaThreads) {
    const int r = i / kRow, c = i % kRow;
    const std::int64_t j = j0 + r;
    const unsigned char* src = c < kC ? ckv + j * (R * sizeof(T)) + c * 16 : kpe + j * (P * sizeof(T)) + (c - kC) * 16;
    cp_async16(raw + static_cast<std::size_t>(r) * (R + P) * sizeof(T) + c * 16, src);
  }
  cp_async_commit();
}

// raw (T) -> BF16 key tile; rows >= valid become zeros (they are masked keys, and V
// rows of zeros keep 0 x garbage out of the output).
template <int R, int P, typename T>
__device__ __forceinline__ void convert_tile(bf16* ks, const unsigned char* raw, int valid) {
  using L = MlaLayout<R, P, T>;
  constexpr int kQuads = L::kD / 4;
  for (int i = threadIdx.x; i < kMlaKeys * kQuads; i += kMlaThreads) {
    const int r = i / kQuads, c = (i % kQuads) * 4;
    uint2 v = make_uint2(0u, 0u);
    if (r < valid) {
      if constexpr (std::is_same_v<T, float>) {
        const float4 x = *reinterpret_cast<const float4*>(reinterpret_cast<const float*>(raw) + r * L::kD + c);
        v = make_uint2(pack_bf16(x.x, x.y), pack_bf16(x.z, x.w));
      } else {
        v = *reinterpret_cast<const uint2*>(reinterpret_cast<const bf16*>(raw) + r * L::kD + c);
      }
    }
    *reinterpret_cast<uint2*>(ks + r * L::kLd + c) = v;
  }
}

// The end both MLA kernels share: the row sums l over the quad, then over the block's two
// halves (red_l [2][64], added in a fixed order), and this thread's two rows of the 64-head
// tile: normalized into out (the token has one chunk) or the chunk's partial (o, m, l).
// The thread's n8 tile nn covers columns half R/2 + 8 nn + 2 q4 (+1); value(nn, e) is
// its entry e (0, 1: row_lo; 2, 3: row_lo + 8).
template <int R, int kTiles, typename Value>
__device__ __forceinline__ void mla_store_rows(const MlaParams& p, int t, int h0, int chunk, int n, int half, int q4,
                                               int row_lo, float (&l)[2], const float (&m)[2], float* red_l,
                                               Value value) {
  const int row_hi = row_lo + 8;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
  }
  if (q4 == 0) red_l[half * kMlaHeads + row_lo] = l[0], red_l[half * kMlaHeads + row_hi] = l[1];
  __syncthreads();
  const bool single = n <= p.chunk;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int row = r == 0 ? row_lo : row_hi, h = h0 + row;
    if (h >= p.Hq) continue;
    const float lt = red_l[row] + red_l[kMlaHeads + row];
    const std::int64_t th = static_cast<std::int64_t>(t) * p.Hq + h;
    float* dst;
    float mul;
    if (single) {
      dst = p.out + th * R, mul = 1.0f / lt;
    } else {
      const std::int64_t at = th * p.max_chunks + chunk;
      dst = p.part_o + at * R, mul = 1.0f;
      if (half == 0 && q4 == 0) p.part_ml[at] = make_float2(m[r], lt);
    }
#pragma unroll
    for (int nn = 0; nn < kTiles; ++nn)
      *reinterpret_cast<float2*>(dst + half * (R / 2) + nn * 8 + 2 * q4) =
          make_float2(value(nn, 2 * r) * mul, value(nn, 2 * r + 1) * mul);
  }
}

template <int R, int P, typename T>
__global__ void __launch_bounds__(kMlaThreads, 1) bf16_mla_decode_kernel(const MlaParams p) {
  using L = MlaLayout<R, P, T>;
  constexpr int kD = L::kD;
  constexpr int kOCols = R / 2;      // output columns per warp
  constexpr int kONt = kOCols / 8;   // their n8 tiles
  extern __shared__ __align__(16) unsigned char smem[];
  bf16* qs = reinterpret_cast<bf16*>(smem + L::kQ);
  bf16* ks = reinterpret_cast<bf16*>(smem + L::kK);
  unsigned char* raw = smem + L::kRaw;
  bf16* ps = reinterpret_cast<bf16*>(smem + L::kP);
  float* red_max = reinterpret_cast<float*>(smem + L::kRed);  // [2 key halves][64 rows]
  float* red_l = red_max + 2 * kMlaHeads;                      // [2][64]

  const int h0 = blockIdx.x * kMlaHeads, chunk = blockIdx.y, t = blockIdx.z;
  int s, n;
  load_place(p.slot, p.len, t, p.slots, p.max_len, "mla_decode", s, n);
  const int start = chunk * p.chunk;
  if (start >= n) return;  // block-uniform, before any barrier
  const int end = min(n, start + p.chunk);
  const int n_tiles = (end - start + kMlaKeys - 1) / kMlaKeys;
  const unsigned char* ckv =
      static_cast<const unsigned char*>(p.ckv) + static_cast<std::int64_t>(s) * p.capacity * R * sizeof(T);
  const unsigned char* kpe =
      static_cast<const unsigned char*>(p.kpe) + static_cast<std::int64_t>(s) * p.capacity * P * sizeof(T);

  prefetch_tile<R, P, T>(raw, ckv, kpe, start, min(kMlaKeys, end - start));

  // Q [64 heads][R + P] as BF16 (heads >= Hq: zeros), while the first tile is in flight.
  {
    constexpr int kQuads = kD / 4;
    for (int i = threadIdx.x; i < kMlaHeads * kQuads; i += kMlaThreads) {
      const int r = i / kQuads, c = (i % kQuads) * 4, h = h0 + r;
      float4 x = make_float4(0.f, 0.f, 0.f, 0.f);
      if (h < p.Hq) {
        const std::int64_t th = static_cast<std::int64_t>(t) * p.Hq + h;
        x = c < R ? *reinterpret_cast<const float4*>(p.q_lat + th * R + c)
                  : *reinterpret_cast<const float4*>(p.q_rope + th * P + (c - R));
      }
      *reinterpret_cast<uint2*>(qs + r * L::kLd + c) = make_uint2(pack_bf16(x.x, x.y), pack_bf16(x.z, x.w));
    }
  }

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, gid = lane / 4, tig = lane % 4;
  const int wr = warp % 4, wc = warp / 4;           // head rows 16 wr.., key half / column half wc
  const int row_lo = wr * 16 + gid, row_hi = row_lo + 8;  // this thread's two rows (block-relative)

  float o[kONt][4];
#pragma unroll
  for (int nn = 0; nn < kONt; ++nn) o[nn][0] = o[nn][1] = o[nn][2] = o[nn][3] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};

  for (int it = 0; it < n_tiles; ++it) {
    const int j0 = start + it * kMlaKeys, valid = min(kMlaKeys, end - j0);
    cp_async_wait_all();
    __syncthreads();  // raw holds tile it; the previous tile's reads of ks, ps are done
    convert_tile<R, P, T>(ks, raw, valid);
    __syncthreads();  // ks ready, raw free
    if (it + 1 < n_tiles) prefetch_tile<R, P, T>(raw, ckv, kpe, j0 + kMlaKeys, min(kMlaKeys, end - j0 - kMlaKeys));

    // S = Q K^T: rows 16 wr.., keys 16 wc.. (two n8 tiles).
    float sc[2][4];
#pragma unroll
    for (int nt = 0; nt < 2; ++nt) sc[nt][0] = sc[nt][1] = sc[nt][2] = sc[nt][3] = 0.0f;
#pragma unroll 4
    for (int k0 = 0; k0 < kD; k0 += 16) {
      std::uint32_t a[4];
      load_a<kD>(a, qs, wr * 16, k0, gid, tig);
#pragma unroll
      for (int nt = 0; nt < 2; ++nt) {
        std::uint32_t b0, b1;
        load_b_nt<kD>(b0, b1, ks, wc * 16 + nt * 8, k0, gid, tig);
        mma_bf16(sc[nt], a, b0, b1);
      }
    }
    float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int nt = 0; nt < 2; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int key = wc * 16 + nt * 8 + 2 * tig + (e & 1);
        const float x = key < valid ? sc[nt][e] * p.scale_log2 : -INFINITY;
        sc[nt][e] = x;
        mx[e / 2] = fmaxf(mx[e / 2], x);
      }
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
    }
    if (tig == 0) red_max[wc * kMlaHeads + row_lo] = mx[0], red_max[wc * kMlaHeads + row_hi] = mx[1];
    __syncthreads();
    float mnew[2], alpha[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int row = r == 0 ? row_lo : row_hi;
      // Both key halves see the same maxima, so warps (wr, 0) and (wr, 1) keep equal m.
      mnew[r] = fmaxf(m[r], fmaxf(red_max[row], red_max[kMlaHeads + row]));
      alpha[r] = exp2f(m[r] - mnew[r]);  // 0 on the first tile
      m[r] = mnew[r];
      l[r] *= alpha[r];
    }
#pragma unroll
    for (int nt = 0; nt < 2; ++nt) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float pe = exp2f(sc[nt][e] - mnew[e / 2]);
        sc[nt][e] = pe;
        l[e / 2] += pe;
      }
      const int col = wc * 16 + nt * 8 + 2 * tig;
      *reinterpret_cast<std::uint32_t*>(ps + row_lo * L::kPLd + col) = pack_bf16(sc[nt][0], sc[nt][1]);
      *reinterpret_cast<std::uint32_t*>(ps + row_hi * L::kPLd + col) = pack_bf16(sc[nt][2], sc[nt][3]);
    }
#pragma unroll
    for (int nn = 0; nn < kONt; ++nn) {
      o[nn][0] *= alpha[0], o[nn][1] *= alpha[0];
      o[nn][2] *= alpha[1], o[nn][3] *= alpha[1];
    }
    __syncthreads();  // P complete

    // O += bf16(P) V: rows 16 wr.., columns wc R/2 .., over the tile's keys.
#pragma unroll
    for (int kk = 0; kk < kMlaKeys / 16; ++kk) {
      std::uint32_t a[4];
      load_a<kMlaKeys>(a, ps, wr * 16, kk * 16, gid, tig);
#pragma unroll
      for (int nn = 0; nn < kONt / 2; ++nn) {
        std::uint32_t b[4];
        load_b_kn_x2<kD>(b, ks, kk * 16, wc * kOCols + nn * 16, lane);
        mma_bf16(o[2 * nn], a, b[0], b[1]);
        mma_bf16(o[2 * nn + 1], a, b[2], b[3]);
      }
    }
  }

  mla_store_rows<R, kONt>(p, t, h0, chunk, n, wc, tig, row_lo, l, m, red_l,
                          [&](int nn, int e) { return o[nn][e]; });
}

template <int R, int P, typename T>
void launch_mla(const MlaParams& p, std::int64_t T_tokens, cudaStream_t st) {
  constexpr std::size_t smem = MlaLayout<R, P, T>::kBytes;
  CHECK_CUDA(cudaFuncSetAttribute(bf16_mla_decode_kernel<R, P, T>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                  static_cast<int>(smem)));
  const dim3 grid(static_cast<unsigned>((p.Hq + kMlaHeads - 1) / kMlaHeads), static_cast<unsigned>(p.max_chunks),
                  static_cast<unsigned>(T_tokens));
  bf16_mla_decode_kernel<R, P, T><<<grid, kMlaThreads, smem, st>>>(p);
  CHECK_CUDA_LAUNCH();
}

// ------------------------------------------------------------- MLA on Hopper (wgmma)

constexpr int kWgKeys = 64;  // keys per tile of the Hopper kernel

template <int R>
struct Sm90MlaLayout {
  static constexpr int kD = R + 64;                 // key width (rope width 64)
  static constexpr int kBlockBytes = 64 * 128;      // 64 rows of one 64-column block
  static constexpr std::size_t kTile = std::size_t{kD / 64} * kBlockBytes;  // 64 rows x kD
  static constexpr std::size_t kQ = 0;              // BF16 [64 heads][kD]: a tile's size
  static constexpr std::size_t kK = kQ + kTile;     // two key tiles
  static constexpr std::size_t kP = kK + 2 * kTile;  // BF16 [64 heads][64 keys]: one block
  static constexpr std::size_t kRed = kP + kBlockBytes;                      // f32 [2][2][64]
  static constexpr std::size_t kBytes = kRed + sizeof(float) * 4 * kMlaHeads;
  static constexpr std::size_t kAlloc = kBytes + 1024;  // slack to align the tiles to 1024 bytes
  static_assert(kD % 64 == 0 && R % 256 == 0, "64-column blocks; R / 2 in m64n128 accumulators");
  static_assert(kMlaHeads == 64 && kWgKeys == 64 && kMlaThreads == 256, "one m64 row block, two warpgroups");
  static_assert(kAlloc <= 227 * 1024, "fits the SM's shared memory");
};

template <int N>
__device__ __forceinline__ void cp_async_wait_group() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

// Starts the copy of key rows j0 .. j0 + 63 (latent, then rope) into `tile`: row r, 16-byte
// chunk c of the key goes to block c / 8, swizzled chunk c % 8 of row r. Rows past `last`
// repeat row `last`: finite values under P = 0.
template <int R>
__device__ __forceinline__ void sm90_prefetch_tile(unsigned char* tile, const bf16* ckv, const bf16* kpe, int j0,
                                                   int last) {
  constexpr int kC = R / 8, kRow = kC + 8;
  for (int i = threadIdx.x; i < kWgKeys * kRow; i += kMlaThreads) {
    const int r = i / kRow, c = i % kRow;
    const std::int64_t j = min(j0 + r, last);
    const bf16* src = c < kC ? ckv + j * R + c * 8 : kpe + j * 64 + (c - kC) * 8;
    cp_async16(tile + (c / 8) * Sm90MlaLayout<R>::kBlockBytes + sm90::swizzle128(r, c % 8), src);
  }
  cp_async_commit();
}

template <int R>
__global__ void __launch_bounds__(kMlaThreads, 1) sm90_mla_decode_kernel(const MlaParams p) {
  using L = Sm90MlaLayout<R>;
  constexpr int kCols = R / 2;         // output columns per warpgroup
  constexpr int kAcc = kCols / 128;    // m64n128 accumulators per warpgroup
  extern __shared__ __align__(16) unsigned char smem_raw[];
  unsigned char* smem = smem_raw + ((1024 - (sm90::smem_u32(smem_raw) & 1023)) & 1023);
  unsigned char* qs = smem + L::kQ;
  unsigned char* ks = smem + L::kK;
  unsigned char* ps = smem + L::kP;
  float* red_max = reinterpret_cast<float*>(smem + L::kRed);  // [2 warpgroups][64 rows]
  float* red_l = red_max + 2 * kMlaHeads;                      // [2][64]

  const int h0 = blockIdx.x * kMlaHeads, chunk = blockIdx.y, t = blockIdx.z;
  const int s = p.slot[t], n = p.len[t];
  // A bad place is left to decode_combine_kernel to report (a printf here, a function
  // call, would make ptxas serialize every wgmma of the kernel).
  if (s < 0 || s >= p.slots || n < 0 || n > p.max_len) return;
  const int start = chunk * p.chunk;
  if (start >= n) return;  // block-uniform, before any barrier
  const int end = min(n, start + p.chunk);
  const int n_tiles = (end - start + kWgKeys - 1) / kWgKeys;
  const bf16* ckv = static_cast<const bf16*>(p.ckv) + static_cast<std::int64_t>(s) * p.capacity * R;
  const bf16* kpe = static_cast<const bf16*>(p.kpe) + static_cast<std::int64_t>(s) * p.capacity * 64;

  sm90_prefetch_tile<R>(ks, ckv, kpe, start, end - 1);
  {  // Q [64 heads][R + 64] as BF16 (heads >= Hq: zeros), while the first tile is in flight
    constexpr int kQuads = L::kD / 4;
    for (int i = threadIdx.x; i < kMlaHeads * kQuads; i += kMlaThreads) {
      const int r = i / kQuads, c = (i % kQuads) * 4, h = h0 + r;
      float4 x = make_float4(0.f, 0.f, 0.f, 0.f);
      if (h < p.Hq) {
        const std::int64_t th = static_cast<std::int64_t>(t) * p.Hq + h;
        x = c < R ? *reinterpret_cast<const float4*>(p.q_lat + th * R + c)
                  : *reinterpret_cast<const float4*>(p.q_rope + th * 64 + (c - R));
      }
      *reinterpret_cast<uint2*>(qs + (c / 64) * L::kBlockBytes + sm90::swizzle128(r, (c % 64) / 8) + (c % 8) * 2) =
          make_uint2(pack_bf16(x.x, x.y), pack_bf16(x.z, x.w));
    }
  }

  const int wg = threadIdx.x / 128, tw = threadIdx.x % 128;
  const int g = (tw % 32) / 4, q4 = tw % 4;
  const int row_lo = 16 * (tw / 32) + g, row_hi = row_lo + 8;  // this thread's fragment rows
  const std::uint64_t q_desc = sm90::smem_desc_sw128(qs), p_desc = sm90::smem_desc_sw128(ps);
  constexpr std::uint64_t kBlockStep = L::kBlockBytes >> 4;  // descriptor units (16 bytes)

  float o[kAcc][64];
#pragma unroll
  for (int a = 0; a < kAcc; ++a)
#pragma unroll
    for (int i = 0; i < 64; ++i) o[a][i] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};

  for (int it = 0; it < n_tiles; ++it) {
    unsigned char* tile = ks + (it & 1) * L::kTile;
    const int j0 = start + it * kWgKeys, valid = min(kWgKeys, end - j0);
    __syncthreads();  // the last tile's wgmma reads of the other buffer and of P are done
    if (it + 1 < n_tiles) {
      sm90_prefetch_tile<R>(ks + ((it + 1) & 1) * L::kTile, ckv, kpe, j0 + kWgKeys, end - 1);
      cp_async_wait_group<1>();
    } else {
      cp_async_wait_group<0>();
    }
    sm90::fence_proxy_async_smem();
    __syncthreads();  // tile it (and Q) visible to the tensor cores

    // S = Q K^T for keys 32 wg .. 32 wg + 31 of the tile.
    float sc[16];
#pragma unroll
    for (int i = 0; i < 16; ++i) sc[i] = 0.0f;
    const std::uint64_t k_desc = sm90::smem_desc_sw128(tile + wg * 32 * 128);
    sm90::wgmma_fence();
#pragma unroll
    for (int kb = 0; kb < L::kD / 16; ++kb) {
      const std::uint64_t off = (kb / 4) * kBlockStep + (kb % 4) * 2;
      sm90::wgmma_m64n32k16_bf16(sc, q_desc + off, k_desc + off, kb > 0);
    }
    sm90::wgmma_commit();
    sm90::wgmma_wait<0>();
    sm90::fence_operands(sc);

    // Online softmax over the whole tile: the warpgroups exchange their row maxima.
    float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int key = wg * 32 + 8 * i + 2 * q4 + (e & 1);
        const float x = key < valid ? sc[4 * i + e] * p.scale_log2 : -INFINITY;
        sc[4 * i + e] = x;
        mx[e / 2] = fmaxf(mx[e / 2], x);
      }
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
    }
    if (q4 == 0) red_max[wg * kMlaHeads + row_lo] = mx[0], red_max[wg * kMlaHeads + row_hi] = mx[1];
    __syncthreads();
    float alpha[2], mnew[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int row = r == 0 ? row_lo : row_hi;
      mnew[r] = fmaxf(m[r], fmaxf(red_max[row], red_max[kMlaHeads + row]));
      alpha[r] = exp2f(m[r] - mnew[r]);  // 0 on the first tile
      m[r] = mnew[r];
      l[r] *= alpha[r];
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float pe = exp2f(sc[4 * i + e] - mnew[e / 2]);
        sc[4 * i + e] = pe;
        l[e / 2] += pe;
      }
      // Keys 32 wg + 8 i + 2 q4 (+1): chunk 4 wg + i of the P row, bytes 4 q4.
      *reinterpret_cast<std::uint32_t*>(ps + sm90::swizzle128(row_lo, 4 * wg + i) + 4 * q4) =
          pack_bf16(sc[4 * i], sc[4 * i + 1]);
      *reinterpret_cast<std::uint32_t*>(ps + sm90::swizzle128(row_hi, 4 * wg + i) + 4 * q4) =
          pack_bf16(sc[4 * i + 2], sc[4 * i + 3]);
    }
#pragma unroll
    for (int a = 0; a < kAcc; ++a)
#pragma unroll
      for (int i = 0; i < 16; ++i) {
        o[a][4 * i] *= alpha[0], o[a][4 * i + 1] *= alpha[0];
        o[a][4 * i + 2] *= alpha[1], o[a][4 * i + 3] *= alpha[1];
      }
    sm90::fence_proxy_async_smem();
    __syncthreads();  // P complete

    // O += P V: columns wg R/2 .., the tile's latent rows read N-major.
#pragma unroll
    for (int a = 0; a < kAcc; ++a) sm90::fence_operands(o[a]);
    sm90::wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < kWgKeys / 16; ++kk)
#pragma unroll
      for (int a = 0; a < kAcc; ++a) {
        const unsigned char* v = tile + (wg * kCols / 64 + 2 * a) * L::kBlockBytes + kk * 16 * 128;
        sm90::wgmma_m64n128k16_bf16<true>(o[a], p_desc + kk * 2, sm90::smem_desc_sw128_mn(v, L::kBlockBytes), 1);
      }
    sm90::wgmma_commit();
    sm90::wgmma_wait<0>();
#pragma unroll
    for (int a = 0; a < kAcc; ++a) sm90::fence_operands(o[a]);
  }

  mla_store_rows<R, kCols / 8>(p, t, h0, chunk, n, wg, q4, row_lo, l, m, red_l,
                               [&](int nn, int e) { return o[nn / 16][4 * (nn % 16) + e]; });
}

template <int R>
void launch_sm90_mla(const MlaParams& p, std::int64_t T_tokens, cudaStream_t st) {
  constexpr std::size_t smem = Sm90MlaLayout<R>::kAlloc;
  CHECK_CUDA(cudaFuncSetAttribute(sm90_mla_decode_kernel<R>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                  static_cast<int>(smem)));
  const dim3 grid(static_cast<unsigned>((p.Hq + kMlaHeads - 1) / kMlaHeads), static_cast<unsigned>(p.max_chunks),
                  static_cast<unsigned>(T_tokens));
  sm90_mla_decode_kernel<R><<<grid, kMlaThreads, smem, st>>>(p);
  CHECK_CUDA_LAUNCH();
}

std::atomic<MlaDecodeKernel> g_mla_kernel{MlaDecodeKernel::Auto};

// The Hopper kernel's cases: BF16 caches, R = 512 or 256 (rope 64), a compute
// capability 9.x device (whose sm_90a code this build carries), unless forced off.
bool use_sm90_mla(bool cache_bf16, std::int64_t R) {
  if (!cache_bf16 || (R != 512 && R != 256) || g_mla_kernel.load() == MlaDecodeKernel::MmaSync) return false;
  int dev = 0, major = 0;
  CHECK_CUDA(cudaGetDevice(&dev));
  CHECK_CUDA(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
  return major == 9;
}

int sm_count() {
  int dev = 0, n = 0;
  CHECK_CUDA(cudaGetDevice(&dev));
  CHECK_CUDA(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev));
  return std::max(n, 1);
}

// Splits per token for MLA: the fewest that fill the SMs' waves to >= 85% (one block
// per SM), each at least kMlaMinChunk keys; returns the chunk length (keys per split, a
// multiple of the kernel's key tile `tile_keys`).
std::int64_t mla_chunk(std::int64_t T, std::int64_t head_groups, std::int64_t max_len, std::int64_t tile_keys) {
  const std::int64_t sms = sm_count(), per_split = std::max<std::int64_t>(T * head_groups, 1);
  const std::int64_t max_splits = std::max<std::int64_t>(1, max_len / kMlaMinChunk);
  std::int64_t best = 1;
  double best_eff = 0;
  for (std::int64_t splits = 1; splits <= std::min<std::int64_t>(max_splits, 64); ++splits) {
    const std::int64_t blocks = per_split * splits;
    const double eff = static_cast<double>(blocks) / static_cast<double>(sms * detail::ceil_div(blocks, sms));
    if (eff > best_eff + 1e-9) best = splits, best_eff = eff;
    if (eff >= 0.85) break;
  }
  const std::int64_t chunk = detail::ceil_div(std::max<std::int64_t>(max_len, 1), best);
  return detail::ceil_div(chunk, tile_keys) * tile_keys;
}

// ------------------------------------------------------------------ cache append

template <typename T>
__global__ void kv_cache_append_kernel(const float* src, const std::int32_t* slot, const std::int32_t* pos, T* cache,
                                       std::int64_t width, int slots, int capacity) {
  const int t = blockIdx.x;
  const int s = slot[t], ps = pos[t];
  if (s < 0 || s >= slots || ps < 0 || ps >= capacity)
    CRUCIBLE_DEVICE_FAIL("kv_cache_append: token %d has cache slot %d (slots %d) and position %d (capacity %d)\n",
                         t, s, slots, ps, capacity);
  const float* x = src + static_cast<std::int64_t>(t) * width;
  T* dst = cache + (static_cast<std::int64_t>(s) * capacity + ps) * width;
  for (std::int64_t i = threadIdx.x; i < width; i += blockDim.x) {
    if constexpr (std::is_same_v<T, float>) dst[i] = x[i];
    else dst[i] = __float2bfloat16_rn(x[i]);
  }
}

// ------------------------------------------------------------------- absorption

constexpr int kAbsTokens = 8;  // tokens per block (each weight element serves 8 tokens)

// q_lat[t, h, c] = sum_j q[t, h, j] W[h (nope + dv) + j, c]; block: 128 columns c, one
// head, kAbsTokens tokens; q rows staged in shared memory ([kAbsTokens][nope]).
__global__ void __launch_bounds__(128) mla_absorb_query_kernel(const float* q, const float* w, float* q_lat, int T,
                                                               int Hq, int dqk, int nope, int dv, int R) {
  extern __shared__ float qs[];
  const int c = blockIdx.x * 128 + threadIdx.x, h = blockIdx.y, t0 = blockIdx.z * kAbsTokens;
  for (int i = threadIdx.x; i < kAbsTokens * nope; i += blockDim.x) {
    const int tt = i / nope, j = i % nope;
    qs[i] = t0 + tt < T ? q[(static_cast<std::int64_t>(t0 + tt) * Hq + h) * dqk + j] : 0.0f;
  }
  __syncthreads();
  if (c >= R) return;
  const float* wh = w + static_cast<std::int64_t>(h) * (nope + dv) * R + c;
  float acc[kAbsTokens] = {};
  for (int j = 0; j < nope; ++j) {
    const float wv = wh[static_cast<std::int64_t>(j) * R];
#pragma unroll
    for (int tt = 0; tt < kAbsTokens; ++tt) acc[tt] += qs[tt * nope + j] * wv;
  }
#pragma unroll
  for (int tt = 0; tt < kAbsTokens; ++tt)
    if (t0 + tt < T) q_lat[(static_cast<std::int64_t>(t0 + tt) * Hq + h) * R + c] = acc[tt];
}

// o[t, h, i] = sum_c out_lat[t, h, c] W[h (nope + dv) + nope + i, c]; one warp per
// output dim i and kAbsTokens tokens, lanes over c, a fixed-order warp sum.
__global__ void __launch_bounds__(128) mla_absorb_output_kernel(const float* lat, const float* w, float* o, int T,
                                                                int Hq, int nope, int dv, int R) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int i = blockIdx.x * 4 + warp, h = blockIdx.y, t0 = blockIdx.z * kAbsTokens;
  if (i >= dv) return;
  const float* wr = w + (static_cast<std::int64_t>(h) * (nope + dv) + nope + i) * R;
  float acc[kAbsTokens] = {};
  for (int c = lane; c < R; c += 32) {
    const float wv = wr[c];
#pragma unroll
    for (int tt = 0; tt < kAbsTokens; ++tt)
      if (t0 + tt < T) acc[tt] += lat[(static_cast<std::int64_t>(t0 + tt) * Hq + h) * R + c] * wv;
  }
#pragma unroll
  for (int tt = 0; tt < kAbsTokens; ++tt) {
    const float v = warp_sum(acc[tt]);
    if (lane == 0 && t0 + tt < T) o[(static_cast<std::int64_t>(t0 + tt) * Hq + h) * dv + i] = v;
  }
}

bool aligned16(const void* ptr) { return reinterpret_cast<std::uintptr_t>(ptr) % 16 == 0; }

void check_grid(std::int64_t T, const char* op) {
  CRUCIBLE_CHECK(T <= 65535, op, " (CUDA): ", T, " tokens exceed the grid (at most 65535 per call)");
}

}  // namespace

void set_mla_decode_kernel(MlaDecodeKernel kernel) { g_mla_kernel.store(kernel); }

bool mla_decode_dims_supported(std::int64_t R, std::int64_t P) {
  return (R == 512 && P == 64) || (R == 256 && P == 64) || (R == 64 && P == 16);
}

bool gqa_decode_dim_supported(std::int64_t d) { return d >= 1 && d <= 128; }

void gqa_decode(const float* q, const void* k, const void* v, bool cache_bf16, const std::int32_t* slot,
                const std::int32_t* len, const DecodeShape& s, std::int64_t Hkv, std::int64_t d, float scale,
                float* out, void* stream) {
  CRUCIBLE_CHECK(gqa_decode_dim_supported(d), "gqa_decode (CUDA): head dim d = ", d,
                 " has no kernel; supported: 1 <= d <= 128");
  check_grid(s.T, "gqa_decode");
  CRUCIBLE_CHECK(s.slots * s.capacity * Hkv * d < (std::int64_t{1} << 40) && s.Hq * s.T < (std::int64_t{1} << 31),
                 "gqa_decode (CUDA): cache or batch too large");
  if (s.T == 0 || s.Hq == 0) return;
  const auto st = static_cast<cudaStream_t>(stream);
  const std::int64_t group = s.Hq / Hkv;
  const int kHeads = group <= 4 ? 4 : 8;
  const std::int64_t max_chunks = std::max<std::int64_t>(1, detail::ceil_div(s.max_len, kGqaChunk));
  const int per = d <= 32 ? 1 : (d <= 64 ? 2 : 4);
  const bool vec = d == 32 * per && aligned16(q) && aligned16(k) && aligned16(v) && aligned16(out);
  DeviceScratch part_o, part_ml;
  if (max_chunks > 1) {
    part_o = DeviceScratch(sizeof(float) * s.T * s.Hq * max_chunks * d, st);
    part_ml = DeviceScratch(sizeof(float2) * s.T * s.Hq * max_chunks, st);
  }
  GqaParams p{q, k, v, slot, len, out, part_o.as<float>(), part_ml.as<float2>(), scale * kLog2e,
              static_cast<int>(s.Hq), static_cast<int>(Hkv), static_cast<int>(d), static_cast<int>(group),
              static_cast<int>(detail::ceil_div(group, kHeads)), static_cast<int>(s.slots),
              static_cast<int>(s.capacity), static_cast<int>(s.max_len), static_cast<int>(max_chunks), vec};
  if (s.max_len > 0) {
    if (cache_bf16) {
      if (kHeads == 4) dispatch_gqa_dim<4, bf16>(p, s.T, st);
      else dispatch_gqa_dim<8, bf16>(p, s.T, st);
    } else {
      if (kHeads == 4) dispatch_gqa_dim<4, float>(p, s.T, st);
      else dispatch_gqa_dim<8, float>(p, s.T, st);
    }
  }
  launch_combine({p.part_o, p.part_ml, slot, len, out, p.Hq, p.d, kGqaChunk, p.max_chunks, p.slots, p.max_len,
                  false},
                 s.T * s.Hq, st);
}

void mla_decode(const float* q_lat, const float* q_rope, const void* ckv, const void* kpe, bool cache_bf16,
                const std::int32_t* slot, const std::int32_t* len, const DecodeShape& s, std::int64_t R,
                std::int64_t P, float scale, float* out_lat, void* stream) {
  CRUCIBLE_CHECK(mla_decode_dims_supported(R, P), "mla_decode (CUDA): kv_lora_rank R = ", R, " and rope dim P = ", P,
                 " have no kernel; supported (R, P): (512, 64) (DeepSeek-V2/V3), (256, 64) (h100-teacher), "
                 "(64, 16) (tiny-deepseek-v3)");
  check_grid(s.T, "mla_decode");
  for (const void* ptr : {static_cast<const void*>(q_lat), static_cast<const void*>(q_rope), ckv, kpe,
                          static_cast<const void*>(out_lat)})
    CRUCIBLE_CHECK(aligned16(ptr), "mla_decode (CUDA): q_lat, q_rope, the caches and out_lat must be 16-byte aligned");
  CRUCIBLE_CHECK(s.Hq * s.T < (std::int64_t{1} << 31), "mla_decode (CUDA): batch too large");
  if (s.T == 0 || s.Hq == 0) return;
  const auto st = static_cast<cudaStream_t>(stream);
  const std::int64_t groups = detail::ceil_div(s.Hq, kMlaHeads);
  const bool sm90 = use_sm90_mla(cache_bf16, R) && P == 64;
  const std::int64_t chunk = mla_chunk(s.T, groups, s.max_len, sm90 ? kWgKeys : kMlaKeys);
  const std::int64_t max_chunks = std::max<std::int64_t>(1, detail::ceil_div(s.max_len, chunk));
  CRUCIBLE_CHECK(max_chunks <= 65535, "mla_decode (CUDA): too many splits");
  DeviceScratch part_o, part_ml;
  if (max_chunks > 1) {
    part_o = DeviceScratch(sizeof(float) * s.T * s.Hq * max_chunks * R, st);
    part_ml = DeviceScratch(sizeof(float2) * s.T * s.Hq * max_chunks, st);
  }
  const MlaParams p{q_lat, q_rope, ckv, kpe, slot, len, out_lat, part_o.as<float>(), part_ml.as<float2>(),
                    scale * kLog2e, static_cast<int>(s.Hq), static_cast<int>(s.slots), static_cast<int>(s.capacity),
                    static_cast<int>(s.max_len), static_cast<int>(chunk), static_cast<int>(max_chunks)};
  if (s.max_len > 0 && sm90) {
    if (R == 512) launch_sm90_mla<512>(p, s.T, st);
    else launch_sm90_mla<256>(p, s.T, st);
  } else if (s.max_len > 0) {
    if (R == 512) {
      if (cache_bf16) launch_mla<512, 64, bf16>(p, s.T, st);
      else launch_mla<512, 64, float>(p, s.T, st);
    } else if (R == 256) {
      if (cache_bf16) launch_mla<256, 64, bf16>(p, s.T, st);
      else launch_mla<256, 64, float>(p, s.T, st);
    } else {
      if (cache_bf16) launch_mla<64, 16, bf16>(p, s.T, st);
      else launch_mla<64, 16, float>(p, s.T, st);
    }
  }
  launch_combine({p.part_o, p.part_ml, slot, len, out_lat, p.Hq, static_cast<int>(R), p.chunk, p.max_chunks, p.slots,
                  p.max_len, true},
                 s.T * s.Hq, st);
}

void kv_cache_append(const float* src, const std::int32_t* slot, const std::int32_t* pos, void* cache,
                     bool cache_bf16, std::int64_t T, std::int64_t width, std::int64_t slots,
                     std::int64_t capacity, void* stream) {
  CRUCIBLE_CHECK(T < (std::int64_t{1} << 31) && slots < (std::int64_t{1} << 31) && capacity < (std::int64_t{1} << 31),
                 "kv_cache_append (CUDA): sizes exceed the grid");
  if (T == 0 || width == 0) return;
  const auto st = static_cast<cudaStream_t>(stream);
  const int threads = width >= 256 ? 256 : 64;
  if (cache_bf16)
    kv_cache_append_kernel<bf16><<<static_cast<unsigned>(T), threads, 0, st>>>(
        src, slot, pos, static_cast<bf16*>(cache), width, static_cast<int>(slots), static_cast<int>(capacity));
  else
    kv_cache_append_kernel<float><<<static_cast<unsigned>(T), threads, 0, st>>>(
        src, slot, pos, static_cast<float*>(cache), width, static_cast<int>(slots), static_cast<int>(capacity));
  CHECK_CUDA_LAUNCH();
}

void mla_absorb_query(const float* q, const float* kv_b, float* q_lat, std::int64_t T, std::int64_t Hq,
                      std::int64_t dqk, std::int64_t nope, std::int64_t dv, std::int64_t R, void* stream) {
  CRUCIBLE_CHECK(detail::ceil_div(T, kAbsTokens) <= 65535 && Hq <= 65535 && nope <= 4096,
                 "mla_absorb_query (CUDA): sizes exceed the grid");
  if (T == 0 || Hq == 0 || R == 0) return;
  const dim3 grid(static_cast<unsigned>(detail::ceil_div(R, 128)), static_cast<unsigned>(Hq),
                  static_cast<unsigned>(detail::ceil_div(T, kAbsTokens)));
  mla_absorb_query_kernel<<<grid, 128, sizeof(float) * kAbsTokens * nope, static_cast<cudaStream_t>(stream)>>>(
      q, kv_b, q_lat, static_cast<int>(T), static_cast<int>(Hq), static_cast<int>(dqk), static_cast<int>(nope),
      static_cast<int>(dv), static_cast<int>(R));
  CHECK_CUDA_LAUNCH();
}

void mla_absorb_output(const float* out_lat, const float* kv_b, float* o, std::int64_t T, std::int64_t Hq,
                       std::int64_t nope, std::int64_t dv, std::int64_t R, void* stream) {
  CRUCIBLE_CHECK(detail::ceil_div(T, kAbsTokens) <= 65535 && Hq <= 65535,
                 "mla_absorb_output (CUDA): sizes exceed the grid");
  if (T == 0 || Hq == 0 || dv == 0) return;
  const dim3 grid(static_cast<unsigned>(detail::ceil_div(dv, 4)), static_cast<unsigned>(Hq),
                  static_cast<unsigned>(detail::ceil_div(T, kAbsTokens)));
  mla_absorb_output_kernel<<<grid, 128, 0, static_cast<cudaStream_t>(stream)>>>(
      out_lat, kv_b, o, static_cast<int>(T), static_cast<int>(Hq), static_cast<int>(nope), static_cast<int>(dv),
      static_cast<int>(R));
  CHECK_CUDA_LAUNCH();
}

}  // namespace crucible::cuda
