// kernels/cuda/sm90_wgmma.cuh: the Hopper (sm_90a) warpgroup MMA pieces shared by the grouped
// GEMM kernels and the MLA decode kernel: shared-memory matrix descriptors for 128-byte-
// swizzled tiles (K-major, and MN-major for BF16), the wgmma fences, and m64n128 / m64n32
// instructions for E4M3 (k32) and BF16 (k16) with FP32 accumulators.
//
// Shared-memory tile layout ("128B swizzle", PTX ISA "Shared Memory Matrix Layout" and
// "Matrix Descriptor Format"): a tile of R rows x 128 bytes of K, row r at r * 128, starting
// 1024-byte aligned; the 16-byte chunk c of row r is stored at chunk c ^ (r % 8). A
// descriptor names 8-row atoms 1024 bytes apart (stride byte offset); stepping K by 32 bytes
// inside the row is a +32 on the start address, as the hardware applies the XOR to the
// final address bits.
//
// Fragment of a m64nN FP32 accumulator (PTX ISA "wgmma Register Fragments"): thread t of
// the warpgroup (warp w = t / 32, g = (t % 32) / 4, q = t % 4) holds, for i < N / 8,
//   d[4i + 0, 1] = D[16 w + g][8 i + 2 q + {0, 1}],  d[4i + 2, 3] = D[16 w + g + 8][8 i + 2 q + {0, 1}].
//
// The instructions exist only in the arch-specific sm_90a target; the portable compute_90
// PTX that the build also emits gets a trap in their place (callers check the device's
// compute capability before launching).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define CRUCIBLE_SM90A 1
#endif

namespace crucible::cuda::sm90 {

__device__ __forceinline__ unsigned smem_u32(const void* p) {
  return static_cast<unsigned>(__cvta_generic_to_shared(p));
}

// Byte offset of the 16-byte chunk `chunk` of row `row` in a 128-byte-swizzled tile.
__device__ __forceinline__ int swizzle128(int row, int chunk) { return row * 128 + ((chunk ^ (row & 7)) << 4); }

// Descriptor of a 128-byte-swizzled K-major tile starting at `tile` (1024-byte aligned):
// start address >> 4 in bits 0-13, leading byte offset 16 (unused by this layout) in
// bits 16-29, stride byte offset 1024 in bits 32-45, base offset 0, layout 1 (128B
// swizzle) in bits 62-63. Add 2 per 32 bytes of K.
__device__ __forceinline__ std::uint64_t smem_desc_sw128(const void* tile) {
  const std::uint64_t addr = smem_u32(tile);
  return ((addr & 0x3FFFF) >> 4) | (std::uint64_t{16 >> 4} << 16) | (std::uint64_t{1024 >> 4} << 32) |
         (std::uint64_t{1} << 62);
}

// Descriptor of a 128-byte-swizzled MN-major tile (the operand's M or N index runs along
// the 128-byte rows, one row per k; trans bit set in the instruction), PTX ISA "Matrix
// Descriptor Format" and CUTLASS's canonical MN-major SW128 layout: 64 BF16 of M or N per
// row, rows k = 0..7 form a 1024-byte atom, the next 8 k are 1024 bytes on (stride byte
// offset), the next 64 of M or N are `mn_block_bytes` on (leading byte offset).
__device__ __forceinline__ std::uint64_t smem_desc_sw128_mn(const void* tile, unsigned mn_block_bytes) {
  const std::uint64_t addr = smem_u32(tile);
  return ((addr & 0x3FFFF) >> 4) | (std::uint64_t{(mn_block_bytes >> 4) & 0x3FFF} << 16) |
         (std::uint64_t{1024 >> 4} << 32) | (std::uint64_t{1} << 62);
}

// Generic-proxy shared-memory writes (st.shared, cp.async) made visible to the async proxy
// that wgmma reads through; each writer fences, then the block synchronizes.
__device__ __forceinline__ void fence_proxy_async_smem() {
#ifdef CRUCIBLE_SM90A
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void wgmma_fence() {
#ifdef CRUCIBLE_SM90A
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void wgmma_commit() {
#ifdef CRUCIBLE_SM90A
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#endif
}
template <int N>
__device__ __forceinline__ void wgmma_wait() {
#ifdef CRUCIBLE_SM90A
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
#endif
}
// Pins the accumulator registers at this point of the program: their reads after a
// wgmma_wait cannot be moved above it, nor their writes below a later wgmma.
template <int N>
__device__ __forceinline__ void fence_operands(float (&d)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(d[i])::"memory");
}

// The 64 FP32 accumulator registers of an m64n128 fragment d: the operand list %0 .. %63
// and the asm outputs.
#define CRUCIBLE_WGMMA_D64                                                                      \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, " \
  "%20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, "  \
  "%38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, "  \
  "%56, %57, %58, %59, %60, %61, %62, %63}"
#define CRUCIBLE_WGMMA_D64_OUT(d)                                                                  \
  "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),       \
      "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]),         \
      "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]),       \
      "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]),       \
      "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]),       \
      "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]),       \
      "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]),       \
      "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]),       \
      "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])

// d (64x128 f32, the warpgroup's fragment) (+)= A (64x32 E4M3) B (32x128 E4M3)^T, both K-major.
__device__ __forceinline__ void wgmma_m64n128k32_e4m3(float (&d)[64], std::uint64_t desc_a,
                                                      std::uint64_t desc_b, int accumulate) {
#ifdef CRUCIBLE_SM90A
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k32.f32.e4m3.e4m3 "
      CRUCIBLE_WGMMA_D64 ", "
      "%64, %65, p, 1, 1;\n}\n"
      : CRUCIBLE_WGMMA_D64_OUT(d)
      : "l"(desc_a), "l"(desc_b), "r"(accumulate));
#else
  (void)d, (void)desc_a, (void)desc_b, (void)accumulate;
  __trap();
#endif
}

// d (64x128 f32) (+)= A (64x16 BF16, K-major) B (16x128 BF16): B K-major (B^T stored,
// desc_b from smem_desc_sw128), or N-major with kBNMajor (desc_b from smem_desc_sw128_mn).
template <bool kBNMajor = false>
__device__ __forceinline__ void wgmma_m64n128k16_bf16(float (&d)[64], std::uint64_t desc_a,
                                                      std::uint64_t desc_b, int accumulate) {
#ifdef CRUCIBLE_SM90A
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 "
      CRUCIBLE_WGMMA_D64 ", "
      "%64, %65, p, 1, 1, 0, %67;\n}\n"
      : CRUCIBLE_WGMMA_D64_OUT(d)
      : "l"(desc_a), "l"(desc_b), "r"(accumulate), "n"(kBNMajor ? 1 : 0));
#else
  (void)d, (void)desc_a, (void)desc_b, (void)accumulate;
  __trap();
#endif
}

// d (64x32 f32: thread t holds 16 of it, i < 4 above) (+)= A (64x16 BF16) B (16x32 BF16)^T,
// both K-major.
__device__ __forceinline__ void wgmma_m64n32k16_bf16(float (&d)[16], std::uint64_t desc_a, std::uint64_t desc_b,
                                                     int accumulate) {
#ifdef CRUCIBLE_SM90A
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %18, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n32k16.f32.bf16.bf16 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15}, "
      "%16, %17, p, 1, 1, 0, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
        "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15])
      : "l"(desc_a), "l"(desc_b), "r"(accumulate));
#else
  (void)d, (void)desc_a, (void)desc_b, (void)accumulate;
  __trap();
#endif
}

}  // namespace crucible::cuda::sm90

#undef CRUCIBLE_WGMMA_D64_OUT
#undef CRUCIBLE_WGMMA_D64
