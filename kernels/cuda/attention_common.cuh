// kernels/cuda/attention_common.cuh: pieces shared by the attention forward and
// backward kernels: the BF16 tensor-core primitive (mma.sync m16n8k16, FP32
// accumulators), ldmatrix, FP32 -> BF16 tile staging into padded shared memory, and
// the map from a block index to a tile of one packed sequence.
//
// Fragment layouts (PTX ISA, "Matrix Fragments for mma.m16n8k16", .bf16): lane = 4 gid
// + tig. A (16 x 16, row-major) a0 = (gid, 2tig..2tig+1), a1 = (gid + 8, same),
// a2 = (gid, 2tig + 8..), a3 = (gid + 8, 2tig + 8..). B (16 x 8, k x n) b0 = (k = 2tig..
// 2tig+1, n = gid), b1 = (k = 2tig + 8.., n = gid). C (16 x 8) c0, c1 = (gid, 2tig..
// 2tig+1), c2, c3 = (gid + 8, same). Two C tiles side by side (n 0..15) are therefore
// exactly one A fragment (k 0..15) once packed to BF16: the FlashAttention-2 register
// reuse of P and dS.
//
// NOTE: shared-memory rows are padded by kPad = 8 BF16 (16 bytes), so a row is
// (d + 8) * 2 bytes = 4 (mod 32) words for d % 64 == 0: the 32-bit fragment loads of a
// warp (8 rows x 4 words) and ldmatrix's 8 row reads of 16 bytes hit 32 distinct banks.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>

namespace crucible::cuda::attn {

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kPad = 8;  // BF16 elements of padding per shared-memory row
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

using bf16 = __nv_bfloat16;

// Two floats -> one register of two BF16 (RNE); `lo` is the lower k (or column) index.
__device__ __forceinline__ std::uint32_t pack_bf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const std::uint32_t*>(&v);
}

// c += a b for one 16 x 8 x 16 tile: BF16 operands, FP32 accumulators.
__device__ __forceinline__ void mma_bf16(float (&c)[4], const std::uint32_t (&a)[4], std::uint32_t b0,
                                         std::uint32_t b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Four 8 x 8 BF16 matrices, transposed on the way: lane l names row l % 8 of matrix
// l / 8; register i of lane (4 gid + tig) receives matrix i's elements (rows 2tig,
// 2tig + 1; column gid), i.e. a B fragment of a row-major [k][n] tile.
// volatile: it reads shared memory the compiler cannot see, so it must stay between
// the barriers that surround it.
__device__ __forceinline__ void ldmatrix_x4_trans(std::uint32_t (&r)[4], const bf16* row_ptr) {
  const auto addr = static_cast<std::uint32_t>(__cvta_generic_to_shared(row_ptr));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

__device__ __forceinline__ std::uint32_t lds32(const bf16* p) { return *reinterpret_cast<const std::uint32_t*>(p); }

// A fragment of rows row0 .. row0 + 15, columns k0 .. k0 + 15 of a padded [rows][D]
// shared-memory tile (row stride D + kPad).
template <int D>
__device__ __forceinline__ void load_a(std::uint32_t (&a)[4], const bf16* tile, int row0, int k0, int gid,
                                       int tig) {
  const bf16* p = tile + (row0 + gid) * (D + kPad) + k0 + 2 * tig;
  a[0] = lds32(p);
  a[1] = lds32(p + 8 * (D + kPad));
  a[2] = lds32(p + 8);
  a[3] = lds32(p + 8 * (D + kPad) + 8);
}

// B fragment (k = k0 .. k0 + 15, n = n0 .. n0 + 7) of B = X^T for a padded [n][D] tile X
// (B[k][n] = X[n][k]: keys as columns of Q K^T, or queries as columns of K Q^T).
template <int D>
__device__ __forceinline__ void load_b_nt(std::uint32_t& b0, std::uint32_t& b1, const bf16* tile, int n0, int k0,
                                          int gid, int tig) {
  const bf16* p = tile + (n0 + gid) * (D + kPad) + k0 + 2 * tig;
  b0 = lds32(p);
  b1 = lds32(p + 8);
}

// B fragments of B = X for a padded row-major [k][D] tile X, for k = k0 .. k0 + 15 and
// the two n tiles n0 .. n0 + 7 (b[0], b[1]) and n0 + 8 .. n0 + 15 (b[2], b[3]).
template <int D>
__device__ __forceinline__ void load_b_kn_x2(std::uint32_t (&b)[4], const bf16* tile, int k0, int n0, int lane) {
  const int row = k0 + ((lane >> 3) & 1) * 8 + (lane & 7);
  const int col = n0 + (lane >> 4) * 8;
  ldmatrix_x4_trans(b, tile + row * (D + kPad) + col);
}

// 16-byte global -> shared copies (cp.async.cg; zero-filled when !valid), their commit
// groups, and the wait for all but the newest N groups.
__device__ __forceinline__ void cp_async16_zfill(void* smem_dst, const void* gmem_src, bool valid) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem_dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem_src), "r"(valid ? 16 : 0)
               : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

// dst [ROWS][D + kPad] <- ROWS rows of D BF16 (row r at src + r * ld), rows >= valid
// zero-filled, as 16-byte cp.async pieces (one commit group is the caller's). src 16-byte
// aligned, ld a multiple of 8. All kThreads threads call.
template <int ROWS, int D>
__device__ __forceinline__ void stage_rows_async(bf16* dst, const bf16* src, std::int64_t ld, int valid) {
  constexpr int kChunks = D / 8;  // 16-byte pieces per row
  static_assert((ROWS * kChunks) % kThreads == 0, "tile must split evenly over the block");
#pragma unroll
  for (int it = 0; it < ROWS * kChunks / kThreads; ++it) {
    const int i = it * kThreads + threadIdx.x, r = i / kChunks, c = (i % kChunks) * 8;
    cp_async16_zfill(dst + r * (D + kPad) + c, r < valid ? src + r * ld + c : src, r < valid);
  }
}

// Key/value tile kt (ROWS keys from key kt ROWS of a sequence of len keys, K rows at
// kg + j ldk, V rows at vg + j ldv) into buffer kt % 2 of ks0 / vs0 (each two
// [ROWS][D + kPad] tiles), as one commit group: the double-buffered loops' stage.
template <int ROWS, int DQK, int DV>
__device__ __forceinline__ void stage_kv_tile(bf16* ks0, bf16* vs0, const bf16* kg, std::int64_t ldk,
                                              const bf16* vg, std::int64_t ldv, int kt, int len) {
  const int j0 = kt * ROWS, valid = min(ROWS, len - j0), b = kt % 2;
  stage_rows_async<ROWS, DQK>(ks0 + b * ROWS * (DQK + kPad), kg + j0 * ldk, ldk, valid);
  stage_rows_async<ROWS, DV>(vs0 + b * ROWS * (DV + kPad), vg + j0 * ldv, ldv, valid);
  cp_async_commit();
}

// One tile of `rows` consecutive tokens of one sequence: tokens t0 + row0 ..
// t0 + min(row0 + rows, len) - 1.
struct Tile {
  int t0;    // first token of the sequence in the packed tensor
  int len;   // sequence length
  int row0;  // first row of the tile, relative to t0
};

// The tiles of every sequence, sequence by sequence, rows ascending; tile `index` of
// them (or, with reverse, counted from the last). False when index is past the last
// tile. Checks cu_seqlens [n_seq + 1] on the way (0 first, non-decreasing, T last);
// a bad offset prints and traps (the CPU twin throws the same complaint).
// NOTE: every thread walks the (small) offset table; the reads are uniform, so they
// broadcast from L1. A walk costs O(n_seq) per block, nothing beside the tile's work.
__device__ __forceinline__ bool find_tile(const std::int32_t* __restrict__ cu, int n_seq, int T, int rows,
                                          int index, bool reverse, Tile& tile) {
  int total = 0, prev = cu[0];
  bool ok = prev == 0;
  for (int b = 0; b < n_seq; ++b) {
    const int next = cu[b + 1];
    ok = ok && next >= prev;
    total += next > prev ? (next - prev + rows - 1) / rows : 0;
    prev = next;
  }
  ok = ok && prev == T;
  if (!ok) {
    if (threadIdx.x == 0 && blockIdx.x == 0 && blockIdx.y == 0)
      printf("attention (CUDA): cu_seqlens must run from 0 to T = %d, non-decreasing; got %d .. %d\n", T, cu[0],
             cu[n_seq]);
    __trap();
  }
  if (index >= total) return false;
  if (reverse) index = total - 1 - index;
  for (int b = 0; b < n_seq; ++b) {
    const int t0 = cu[b], len = cu[b + 1] - t0;
    const int n = len > 0 ? (len + rows - 1) / rows : 0;
    if (index < n) {
      tile = Tile{t0, len, index * rows};
      return true;
    }
    index -= n;
  }
  return false;  // unreachable: index < total
}

}  // namespace crucible::cuda::attn
