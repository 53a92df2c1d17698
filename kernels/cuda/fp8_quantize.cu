// kernels/cuda/fp8_quantize.cu: block-scaled FP8 quantize/dequantize on the GPU.
//
// The CUDA twin of core/fp8_tensor.cpp: same amax (finite values only), same scale
// (amax / fp8_max in FP32, 1 for an all-zero tile, optional power-of-two rounding
// up), same code (cvt.satfinite of x / scale, round to nearest even). Division is
// IEEE-exact in CUDA without fast-math, so codes agree bit for bit.
//
// NOTE: one warp per 1x128 tile (4 floats per lane, one 16-byte load) and one
// 256-thread block per 128x128 block. Both kernels are memory bound (read 4 B,
// write 1 B per element); they read x twice (amax, then quantize) and rely on L1/L2
// for the second read. A fused single-read version is a later optimization.
#include <cuda_fp8.h>

#include <cfloat>
#include <cstdint>
#include <vector>

#include "core/cuda_check.h"
#include "core/error.h"
#include "kernels/cuda/cublaslt_context.h"
#include "kernels/cuda/device_utils.cuh"
#include "kernels/cuda/fp8_quantize_cuda.h"

namespace crucible::cuda {

namespace {

constexpr int kBlock = 128;

__device__ __forceinline__ float finite_abs(float v) { return isfinite(v) ? fabsf(v) : 0.0f; }

__device__ __forceinline__ float scale_from_amax(float amax, float fp8_max, bool pow2) {
  if (amax == 0.0f) return 1.0f;
  float s = amax / fp8_max;
  if (s == 0.0f) s = FLT_TRUE_MIN;  // amax below ~3e-43 underflows: as the CPU twin
  if (pow2) {
    int e = 0;
    const float m = frexpf(s, &e);  // s = m * 2^e, m in [0.5, 1)
    s = m == 0.5f ? s : ldexpf(1.0f, e);
  }
  return s;
}

__device__ __forceinline__ std::uint8_t encode(float v, __nv_fp8_interpretation_t fmt) {
  return static_cast<std::uint8_t>(__nv_cvt_float_to_fp8(v, __NV_SATFINITE, fmt));
}

__device__ __forceinline__ float decode(std::uint8_t code, __nv_fp8_interpretation_t fmt) {
  const __half_raw h = __nv_cvt_fp8_to_halfraw(static_cast<__nv_fp8_storage_t>(code), fmt);
  return __half2float(__half(h));
}

// One warp per tile of 1 row x 128 columns; lane l holds columns 4l .. 4l + 3 of the tile
// (one 16-byte load when `vec`: x 16-byte aligned and cols % 4 == 0). Codes of row r go to
// q + r ldq, the columns [cols, ldq) of the row written 0 (ldq <= tiles_per_row 128; packed
// 4-byte stores when ldq % 4 == 0); the tile's scale to scale[r scale_row + kb scale_kb].
__global__ void quantize_tile1x128_kernel(const float* __restrict__ x, std::uint8_t* __restrict__ q,
                                          float* __restrict__ scale, std::int64_t rows,
                                          std::int64_t cols, std::int64_t tiles_per_row, std::int64_t ldq,
                                          std::int64_t scale_row, std::int64_t scale_kb, bool vec,
                                          float fp8_max, bool pow2, __nv_fp8_interpretation_t fmt) {
  const int lane = threadIdx.x % 32;
  const std::int64_t tile = (static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  if (tile >= rows * tiles_per_row) return;
  const std::int64_t row = tile / tiles_per_row, kb = tile % tiles_per_row;
  const std::int64_t col0 = kb * kBlock + lane * 4;
  const float* src = x + row * cols;
  float v[4];
  if (vec && col0 + 3 < cols) {
    const float4 f = *reinterpret_cast<const float4*>(src + col0);
    v[0] = f.x, v[1] = f.y, v[2] = f.z, v[3] = f.w;
  } else {
#pragma unroll
    for (int i = 0; i < 4; ++i) v[i] = col0 + i < cols ? src[col0 + i] : 0.0f;
  }
  float amax = 0.0f;
#pragma unroll
  for (int i = 0; i < 4; ++i) amax = fmaxf(amax, finite_abs(v[i]));
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2)
    amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, offset));
  const float s = scale_from_amax(amax, fp8_max, pow2);
  if (lane == 0) scale[row * scale_row + kb * scale_kb] = s;
  std::uint8_t c[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) c[i] = col0 + i < cols ? encode(v[i] / s, fmt) : std::uint8_t{0};
  std::uint8_t* dst = q + row * ldq;
  if (ldq % 4 == 0 && col0 + 3 < ldq) {
    *reinterpret_cast<std::uint32_t*>(dst + col0) = static_cast<std::uint32_t>(c[0]) |
                                                     static_cast<std::uint32_t>(c[1]) << 8 |
                                                     static_cast<std::uint32_t>(c[2]) << 16 |
                                                     static_cast<std::uint32_t>(c[3]) << 24;
  } else {
#pragma unroll
    for (int i = 0; i < 4; ++i)
      if (col0 + i < ldq) dst[col0 + i] = c[i];
  }
}

// One 256-thread block per 128 x 128 block; thread t owns column t % 128 of rows
// t / 128, t / 128 + 2, ... (coalesced along the row).
__global__ void quantize_block128x128_kernel(const float* __restrict__ x, std::uint8_t* __restrict__ q,
                                             float* __restrict__ scale, std::int64_t rows,
                                             std::int64_t cols, std::int64_t blocks_per_row,
                                             float fp8_max, bool pow2, __nv_fp8_interpretation_t fmt) {
  __shared__ float warp_max[32];
  const std::int64_t br = blockIdx.x / blocks_per_row, bc = blockIdx.x % blocks_per_row;
  const std::int64_t col = bc * kBlock + threadIdx.x % kBlock;
  const std::int64_t row_begin = br * kBlock + threadIdx.x / kBlock;
  const std::int64_t row_end = min(rows, (br + 1) * kBlock);
  float amax = 0.0f;
  if (col < cols)
    for (std::int64_t r = row_begin; r < row_end; r += 2) amax = fmaxf(amax, finite_abs(x[r * cols + col]));
  amax = detail::block_max(amax, warp_max);
  const float s = scale_from_amax(amax, fp8_max, pow2);
  if (threadIdx.x == 0) scale[blockIdx.x] = s;
  if (col < cols)
    for (std::int64_t r = row_begin; r < row_end; r += 2) q[r * cols + col] = encode(x[r * cols + col] / s, fmt);
}

// One 256-thread block per 128x128 block (br, bc) of weight blockIdx.y's operand [R, C]
// (W, or W^T read from W). Thread t reads operand elements along the direction that is
// contiguous in W (coalesced), once for the amax and once to encode; the codes pass through
// shared memory so that the operand's rows are written 16 bytes per thread.
__global__ void quantize_weight_blocks_kernel(const float* const* __restrict__ w, std::int64_t rows,
                                              std::int64_t cols, bool transposed, std::uint8_t* __restrict__ q,
                                              float* __restrict__ scale, std::int64_t rows_p, std::int64_t k_p,
                                              std::int64_t Rp, std::int64_t L4, float fp8_max,
                                              __nv_fp8_interpretation_t fmt) {
  __shared__ float warp_max[32];
  __shared__ __align__(16) std::uint8_t tile[kBlock][kBlock + 16];
  const float* __restrict__ x = w[blockIdx.y];
  const std::int64_t R = transposed ? cols : rows, C = transposed ? rows : cols;
  const std::int64_t br = blockIdx.x / L4, bc = blockIdx.x % L4;
  const std::int64_t r0 = br * kBlock, c0 = bc * kBlock;
  float* s_out = scale + static_cast<std::int64_t>(blockIdx.y) * Rp * L4 + blockIdx.x;
  if (r0 >= R || c0 >= C) {  // a padding block: scale 0 (its codes, if any, are outside [rows_p, k_p])
    if (threadIdx.x == 0) *s_out = 0.0f;
    return;
  }
  // Operand element (r0 + i, c0 + j) is x[(r0 + i) cols + c0 + j], or x[(c0 + j) cols + r0 + i]
  // for W^T. Thread t: fast index f = t % 128 along W's contiguous direction, slow index
  // s = t / 128 + 2 n.
  const int f = static_cast<int>(threadIdx.x) % kBlock, s0 = static_cast<int>(threadIdx.x) / kBlock;
  const std::int64_t n_fast = min(std::int64_t{kBlock}, transposed ? R - r0 : C - c0);
  const std::int64_t n_slow = min(std::int64_t{kBlock}, transposed ? C - c0 : R - r0);
  const float* base = transposed ? x + c0 * cols + r0 : x + r0 * cols + c0;  // slow stride: cols
  float amax = 0.0f;
  if (f < n_fast)
    for (std::int64_t sl = s0; sl < n_slow; sl += 2) amax = fmaxf(amax, finite_abs(base[sl * cols + f]));
  amax = detail::block_max(amax, warp_max);
  const float sc = scale_from_amax(amax, fp8_max, false);
  if (threadIdx.x == 0) *s_out = sc;
  for (int sl = s0; sl < kBlock; sl += 2) {
    const std::uint8_t code = f < n_fast && sl < n_slow ? encode(base[sl * cols + f] / sc, fmt) : 0;
    if (transposed) tile[f][sl] = code;  // operand row f, column sl
    else tile[sl][f] = code;
  }
  __syncthreads();
  // Rows r0 .. min(r0 + 128, rows_p), columns c0 .. min(c0 + 128, k_p) (a multiple of 16).
  const std::int64_t out_rows = min(std::int64_t{kBlock}, rows_p - r0);
  const std::int64_t out_chunks = min(std::int64_t{kBlock}, k_p - c0) / 16;
  std::uint8_t* dst = q + static_cast<std::int64_t>(blockIdx.y) * rows_p * k_p + r0 * k_p + c0;
  for (int id = static_cast<int>(threadIdx.x); id < kBlock * 8; id += 256) {
    const int i = id / 8, chunk = id % 8;
    if (i < out_rows && chunk < out_chunks)
      *reinterpret_cast<uint4*>(dst + i * k_p + chunk * 16) = *reinterpret_cast<const uint4*>(&tile[i][chunk * 16]);
  }
}

__global__ void dequantize_kernel(const std::uint8_t* __restrict__ q, const float* __restrict__ scale,
                                  float* __restrict__ x, std::int64_t rows, std::int64_t cols,
                                  std::int64_t scale_cols, bool block_rows,
                                  __nv_fp8_interpretation_t fmt) {
  const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= rows * cols) return;
  const std::int64_t r = i / cols, c = i % cols;
  const std::int64_t sr = block_rows ? r / kBlock : r;
  x[i] = decode(q[i], fmt) * scale[sr * scale_cols + c / kBlock];
}

__nv_fp8_interpretation_t interpretation(DType format) {
  return format == DType::E5M2 ? __NV_E5M2 : __NV_E4M3;
}

// The largest finite value of the format: E4M3 448, E5M2 57344.
float fp8_max_of(DType format) { return format == DType::E5M2 ? 57344.0f : 448.0f; }

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

// Transposed quantization of row groups (quantize_fp8_transposed): one 256-thread block per
// (128-row tile of a group, 32 columns). The tile goes through shared memory; lane l of a
// warp owns rows l, l + 32, l + 64, l + 96 of a column (conflict-free reads of the padded
// tile), so a column's 128 values reduce with one warp shuffle and its codes leave as
// 32-byte warp stores along the transposed row.
constexpr int kColsPerBlock = 32;

// kSingle: one group, passed by value as `one` (tile blockIdx.x starts at row 128 blockIdx.x),
// so that a plain transposed quantization uploads no lists.
template <bool kSingle>
__global__ void quantize_transposed_kernel(const float* __restrict__ x, std::int64_t cols,
                                           const Fp8TransposedGroup* __restrict__ groups,
                                           const int2* __restrict__ tiles, Fp8TransposedGroup one,
                                           std::uint8_t* __restrict__ q, float* __restrict__ scale, float fp8_max,
                                           bool pow2, __nv_fp8_interpretation_t fmt) {
  __shared__ float tile[kBlock][kColsPerBlock + 1];
  const int2 t = kSingle ? int2{0, static_cast<int>(blockIdx.x) * kBlock} : tiles[blockIdx.x];
  const Fp8TransposedGroup g = kSingle ? one : groups[t.x];
  const std::int64_t r0 = t.y;  // the tile's first row within the group
  const std::int64_t c0 = static_cast<std::int64_t>(blockIdx.y) * kColsPerBlock;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  for (int i = warp; i < kBlock; i += 8) {
    const std::int64_t r = r0 + i, c = c0 + lane;
    tile[i][lane] = r < g.rows && c < cols ? x[(g.row0 + r) * cols + c] : 0.0f;
  }
  __syncthreads();
  for (int j = warp * 4; j < warp * 4 + 4; ++j) {
    const std::int64_t c = c0 + j;
    if (c >= cols) break;  // warp-uniform
    float v[4];
    float amax = 0.0f;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      v[i] = tile[lane + 32 * i][j];
      amax = fmaxf(amax, finite_abs(v[i]));
    }
#pragma unroll
    for (int offset = 16; offset > 0; offset /= 2)
      amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, offset));
    const float s = scale_from_amax(amax, fp8_max, pow2);
    if (lane == 0) scale[g.scale_offset + c * g.scale_col + (r0 / kBlock) * g.scale_kb] = s;
    std::uint8_t* row = q + g.code_offset + c * g.ld;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const std::int64_t r = r0 + lane + 32 * i;  // rows past g.rows hold 0: code 0 (the padding)
      if (r < g.ld) row[r] = encode(v[i] / s, fmt);
    }
  }
}

}  // namespace

void quantize_fp8_tiles(const float* x, std::int64_t rows, std::int64_t cols, std::uint8_t* q, std::int64_t ldq,
                        float* scale, std::int64_t scale_row, std::int64_t scale_kb, Fp8Options opts,
                        cudaStream_t stream) {
  if (rows == 0 || cols == 0) return;
  const std::int64_t tiles_per_row = ceil_div(cols, kBlock);
  CRUCIBLE_CHECK(ldq >= cols && ldq <= tiles_per_row * kBlock, "quantize_fp8_tiles: ldq ", ldq, " for ", cols,
                 " columns (want cols <= ldq <= cols rounded up to 128)");
  const bool vec = cols % 4 == 0 && reinterpret_cast<std::uintptr_t>(x) % 16 == 0;
  const std::int64_t threads = rows * tiles_per_row * 32;
  const int block = 256;
  quantize_tile1x128_kernel<<<static_cast<unsigned>(ceil_div(threads, block)), block, 0, stream>>>(
      x, q, scale, rows, cols, tiles_per_row, ldq, scale_row, scale_kb, vec,
      fp8_max_of(opts.format), opts.pow2_scales, interpretation(opts.format));
  CHECK_CUDA_LAUNCH();
}

void quantize_fp8(const float* x, std::uint8_t* q, float* scale, std::int64_t rows, std::int64_t cols,
                  ScaleLayout layout, Fp8Options opts, void* stream) {
  if (rows == 0 || cols == 0) return;
  auto st = static_cast<cudaStream_t>(stream);
  const std::int64_t tiles_per_row = ceil_div(cols, kBlock);
  if (layout == ScaleLayout::Tile1x128) {
    quantize_fp8_tiles(x, rows, cols, q, cols, scale, tiles_per_row, 1, opts, st);
    return;
  }
  const std::int64_t blocks = ceil_div(rows, kBlock) * tiles_per_row;
  quantize_block128x128_kernel<<<static_cast<unsigned>(blocks), 256, 0, st>>>(
      x, q, scale, rows, cols, tiles_per_row, fp8_max_of(opts.format), opts.pow2_scales, interpretation(opts.format));
  CHECK_CUDA_LAUNCH();
}

void dequantize_fp8(const std::uint8_t* q, const float* scale, float* x, std::int64_t rows,
                    std::int64_t cols, ScaleLayout layout, DType format, void* stream) {
  if (rows == 0 || cols == 0) return;
  const std::int64_t n = rows * cols;
  const int block = 256;
  dequantize_kernel<<<static_cast<unsigned>(ceil_div(n, block)), block, 0, static_cast<cudaStream_t>(stream)>>>(
      q, scale, x, rows, cols, ceil_div(cols, kBlock), layout == ScaleLayout::Block128x128,
      interpretation(format));
  CHECK_CUDA_LAUNCH();
}

void quantize_fp8_transposed(const float* x, std::int64_t cols, std::span<const Fp8TransposedGroup> groups,
                             std::uint8_t* q, float* scale, Fp8Options opts, cudaStream_t stream) {
  if (cols == 0) return;
  std::vector<Fp8TransposedGroup> work;
  std::vector<int2> tiles;
  for (const Fp8TransposedGroup& g : groups) {
    CRUCIBLE_CHECK(g.rows >= 0 && g.ld >= g.rows && g.ld <= ceil_div(g.rows, kBlock) * kBlock && g.ld % 4 == 0,
                   "quantize_fp8_transposed: a group of ", g.rows, " rows cannot have ld ", g.ld,
                   " (want rows <= ld <= rows rounded up to 128, a multiple of 4)");
    if (g.rows == 0) continue;
    for (std::int64_t r0 = 0; r0 < g.rows; r0 += kBlock)
      tiles.push_back(int2{static_cast<int>(work.size()), static_cast<int>(r0)});
    work.push_back(g);
  }
  if (tiles.empty()) return;
  CRUCIBLE_CHECK(ceil_div(cols, kColsPerBlock) < 65536, "quantize_fp8_transposed: ", cols, " columns exceed the grid");
  if (work.size() == 1) {  // one group (a dense linear's Wgrad operand): nothing to upload
    const dim3 grid(static_cast<unsigned>(tiles.size()), static_cast<unsigned>(ceil_div(cols, kColsPerBlock)));
    quantize_transposed_kernel<true><<<grid, 256, 0, stream>>>(x, cols, nullptr, nullptr, work[0], q, scale,
                                                               fp8_max_of(opts.format), opts.pow2_scales,
                                                               interpretation(opts.format));
    CHECK_CUDA_LAUNCH();
    return;
  }
  // NOTE: pageable uploads return once staged; the buffer is freed in stream order.
  const std::size_t group_bytes = work.size() * sizeof(Fp8TransposedGroup);
  DeviceScratch meta(group_bytes + tiles.size() * sizeof(int2), stream);
  CHECK_CUDA(cudaMemcpyAsync(meta.get(), work.data(), group_bytes, cudaMemcpyHostToDevice, stream));
  CHECK_CUDA(cudaMemcpyAsync(meta.as<char>() + group_bytes, tiles.data(), tiles.size() * sizeof(int2),
                             cudaMemcpyHostToDevice, stream));
  const dim3 grid(static_cast<unsigned>(tiles.size()), static_cast<unsigned>(ceil_div(cols, kColsPerBlock)));
  quantize_transposed_kernel<false><<<grid, 256, 0, stream>>>(
      x, cols, meta.as<Fp8TransposedGroup>(), reinterpret_cast<const int2*>(meta.as<char>() + group_bytes),
      Fp8TransposedGroup{}, q, scale, fp8_max_of(opts.format), opts.pow2_scales, interpretation(opts.format));
  CHECK_CUDA_LAUNCH();
}

void quantize_fp8_weight_blocks(std::span<const float* const> w, std::int64_t rows, std::int64_t cols,
                                bool transposed, std::uint8_t* q, float* scale, std::int64_t rows_p,
                                std::int64_t k_p, cudaStream_t stream) {
  const std::int64_t R = transposed ? cols : rows, C = transposed ? rows : cols;
  CRUCIBLE_CHECK(rows_p >= R && rows_p % 4 == 0 && k_p >= C && k_p % 16 == 0, "quantize_fp8_weight_blocks: [", R,
                 ", ", C, "] cannot be padded to [", rows_p, ", ", k_p, "]");
  CRUCIBLE_CHECK(w.size() < 65536, "quantize_fp8_weight_blocks: ", w.size(), " weights exceed the grid");
  if (w.empty() || rows_p == 0 || k_p == 0) return;
  const std::int64_t Rp = ceil_div(rows_p, kBlock), L4 = (ceil_div(k_p, kBlock) + 3) / 4 * 4;
  CRUCIBLE_CHECK(Rp * L4 < (std::int64_t{1} << 31), "quantize_fp8_weight_blocks: too many blocks");
  // NOTE: a pageable upload returns once staged; the list is freed in stream order.
  DeviceScratch list(w.size() * sizeof(const float*), stream);
  CHECK_CUDA(cudaMemcpyAsync(list.get(), w.data(), w.size() * sizeof(const float*), cudaMemcpyHostToDevice, stream));
  const dim3 grid(static_cast<unsigned>(Rp * L4), static_cast<unsigned>(w.size()));
  quantize_weight_blocks_kernel<<<grid, 256, 0, stream>>>(list.as<const float*>(), rows, cols, transposed, q, scale,
                                                          rows_p, k_p, Rp, L4, fp8_max_of(DType::E4M3),
                                                          interpretation(DType::E4M3));
  CHECK_CUDA_LAUNCH();
}

}  // namespace crucible::cuda
