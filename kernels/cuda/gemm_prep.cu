// kernels/cuda/gemm_prep.cu: the memory-bound kernels around the cuBLASLt GEMMs (see the
// header for each contract). None of them rounds except the BF16 cast (RNE, as the CPU
// twin) and the FP32 adds of the bias epilogue and bias gradient, which run in the CPU
// twin's order so that results are bit-identical.
#include <cuda_bf16.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/cuda_check.h"
#include "core/error.h"
#include "kernels/cuda/gemm_prep_cuda.h"

namespace crucible::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kTile = 32;  // transpose tile (kTile x kTile floats through shared memory)

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

// A grid for a grid-stride loop over n items: enough blocks to fill the GPU, capped.
unsigned grid_for(std::int64_t n) {
  return static_cast<unsigned>(std::clamp<std::int64_t>(ceil_div(n, kThreads), 1, 65536));
}

__global__ void cast_f32_to_bf16_kernel(const float* __restrict__ x, __nv_bfloat16* __restrict__ y,
                                        std::int64_t n) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    y[i] = __float2bfloat16_rn(x[i]);
}

// NOTE: 8 elements per thread (two 16-byte loads, one 16-byte store): the scalar loop
// above moves 6 bytes per thread per iteration and reaches about half the bandwidth.
// Needs x and y 16-byte aligned; n8 = n / 8 groups (the caller casts the tail).
__global__ void cast_f32_to_bf16_x8_kernel(const float4* __restrict__ x, uint4* __restrict__ y, std::int64_t n8) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n8; i += stride) {
    const float4 a = x[2 * i], b = x[2 * i + 1];
    const __nv_bfloat162 p0 = __floats2bfloat162_rn(a.x, a.y), p1 = __floats2bfloat162_rn(a.z, a.w);
    const __nv_bfloat162 p2 = __floats2bfloat162_rn(b.x, b.y), p3 = __floats2bfloat162_rn(b.z, b.w);
    uint4 out;
    out.x = *reinterpret_cast<const unsigned*>(&p0);
    out.y = *reinterpret_cast<const unsigned*>(&p1);
    out.z = *reinterpret_cast<const unsigned*>(&p2);
    out.w = *reinterpret_cast<const unsigned*>(&p3);
    y[i] = out;
  }
}

// One block per (band, 32-row tile) x 32-column tile, through shared memory as the
// transpose below: reads along the source rows, writes along the destination rows.
__global__ void bf16_bands_kernel(const Bf16Band* __restrict__ bands, const int2* __restrict__ tiles,
                                  std::int64_t cols, bool transposed) {
  __shared__ float t[kTile][kTile + 1];
  const int2 at = tiles[blockIdx.x];  // (band, first row)
  const Bf16Band b = bands[at.x];
  const std::int64_t r0 = at.y, c0 = static_cast<std::int64_t>(blockIdx.y) * kTile;
  const int tx = static_cast<int>(threadIdx.x) % kTile, ty = static_cast<int>(threadIdx.x) / kTile;
  for (int i = ty; i < kTile; i += kThreads / kTile) {
    const std::int64_t r = r0 + i, c = c0 + tx;
    t[i][tx] = r < b.rows && c < cols ? b.src[r * cols + c] : 0.0f;
  }
  __syncthreads();
  auto* dst = reinterpret_cast<__nv_bfloat16*>(b.dst);
  for (int i = ty; i < kTile; i += kThreads / kTile) {
    if (!transposed) {
      const std::int64_t r = r0 + i, c = c0 + tx;
      if (r < b.rows && c < b.ld) dst[r * b.ld + c] = __float2bfloat16_rn(t[i][tx]);
    } else {
      const std::int64_t c = c0 + i, r = r0 + tx;
      if (c < cols && r < b.ld) dst[c * b.ld + r] = __float2bfloat16_rn(t[tx][i]);
    }
  }
}

// NOTE: the classic shared-memory transpose: a block reads a 32x32 tile with coalesced
// row loads and writes it with coalesced row stores; the +1 column breaks bank conflicts.
__global__ void transpose_f32_kernel(const float* __restrict__ x, float* __restrict__ y, std::int64_t rows,
                                     std::int64_t cols) {
  __shared__ float tile[kTile][kTile + 1];
  const std::int64_t c0 = static_cast<std::int64_t>(blockIdx.x) * kTile;
  for (std::int64_t r0 = static_cast<std::int64_t>(blockIdx.y) * kTile; r0 < rows;
       r0 += static_cast<std::int64_t>(gridDim.y) * kTile) {
    for (int i = threadIdx.y; i < kTile; i += blockDim.y) {
      const std::int64_t r = r0 + i, c = c0 + threadIdx.x;
      if (r < rows && c < cols) tile[i][threadIdx.x] = x[r * cols + c];
    }
    __syncthreads();
    for (int i = threadIdx.y; i < kTile; i += blockDim.y) {
      const std::int64_t c = c0 + i, r = r0 + threadIdx.x;  // y [cols, rows]
      if (c < cols && r < rows) y[c * rows + r] = tile[threadIdx.x][i];
    }
    __syncthreads();
  }
}

__global__ void copy_scales_2d_kernel(const float* __restrict__ src, std::int64_t src_rows,
                                      std::int64_t src_cols, bool transpose, float* __restrict__ dst,
                                      std::int64_t dst_rows, std::int64_t dst_cols) {
  const std::int64_t n = dst_rows * dst_cols;
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    const std::int64_t r = i / dst_cols, c = i % dst_cols;
    const std::int64_t sr = transpose ? c : r, sc = transpose ? r : c;
    dst[i] = sr < src_rows && sc < src_cols ? src[sr * src_cols + sc] : 0.0f;
  }
}

__global__ void add_bias_rows_kernel(float* __restrict__ y, const float* __restrict__ bias, std::int64_t rows,
                                     std::int64_t cols) {
  const std::int64_t n = rows * cols;
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    y[i] += bias[i % cols];
}

// NOTE: one thread per column, rows ascending, to reproduce the CPU twin's FP32 sum bit for
// bit. Loads are coalesced across the warp; the sequential sum limits parallelism to `cols`
// threads, which is fine for the bias widths this serves (q/k/v biases) but not a
// bandwidth-optimal reduction.
__global__ void column_sum_accumulate_kernel(const float* __restrict__ dy, float* __restrict__ dbias,
                                             std::int64_t rows, std::int64_t cols) {
  const std::int64_t c = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= cols) return;
  float sum = 0.0f;
  for (std::int64_t r = 0; r < rows; ++r) sum += dy[r * cols + c];
  dbias[c] += sum;
}

}  // namespace

void cast_f32_to_bf16(const float* x, std::uint16_t* y, std::int64_t n, void* stream) {
  if (n == 0) return;
  const auto st = static_cast<cudaStream_t>(stream);
  const bool aligned = reinterpret_cast<std::uintptr_t>(x) % 16 == 0 && reinterpret_cast<std::uintptr_t>(y) % 16 == 0;
  const std::int64_t n8 = aligned ? n / 8 : 0;
  if (n8 > 0) {
    cast_f32_to_bf16_x8_kernel<<<grid_for(n8), kThreads, 0, st>>>(reinterpret_cast<const float4*>(x),
                                                                   reinterpret_cast<uint4*>(y), n8);
    CHECK_CUDA_LAUNCH();
  }
  if (n8 * 8 < n) {
    cast_f32_to_bf16_kernel<<<grid_for(n - n8 * 8), kThreads, 0, st>>>(
        x + n8 * 8, reinterpret_cast<__nv_bfloat16*>(y) + n8 * 8, n - n8 * 8);
    CHECK_CUDA_LAUNCH();
  }
}

DeviceScratch bf16_copy(const float* x, std::int64_t n, void* stream) {
  DeviceScratch out(static_cast<std::size_t>(n) * sizeof(__nv_bfloat16), static_cast<cudaStream_t>(stream));
  cast_f32_to_bf16(x, out.as<std::uint16_t>(), n, stream);
  return out;
}

void bf16_bands(std::span<const Bf16Band> bands, std::int64_t cols, bool transposed, cudaStream_t stream) {
  std::vector<int2> tiles;
  for (std::size_t i = 0; i < bands.size(); ++i) {
    const Bf16Band& b = bands[i];
    const std::int64_t width = transposed ? b.rows : cols;  // the destination's columns before padding
    CRUCIBLE_CHECK(b.rows >= 0 && b.ld >= width && b.ld % 8 == 0 && reinterpret_cast<std::uintptr_t>(b.dst) % 16 == 0,
                   "bf16_bands: band ", i, " of ", b.rows, " rows x ", cols, " columns cannot have ld ", b.ld,
                   (transposed ? " transposed" : ""), " (want ld >= ", width,
                   ", a multiple of 8, and a 16-byte aligned destination)");
    // Rows are covered in 32-row tiles, enough for the padding too (ld <= rows rounded up to 32
    // when transposed, as ld is a multiple of 8 below the next tile).
    const std::int64_t span = transposed ? b.ld : b.rows;
    for (std::int64_t r0 = 0; r0 < span; r0 += kTile) tiles.push_back(int2{static_cast<int>(i), static_cast<int>(r0)});
  }
  if (tiles.empty() || cols == 0) return;
  std::int64_t ld_max = 0;
  for (const Bf16Band& b : bands) ld_max = std::max(ld_max, b.ld);
  const std::int64_t col_span = transposed ? cols : ld_max;  // destination columns (non-transposed) to cover
  CRUCIBLE_CHECK(ceil_div(col_span, kTile) < 65536 && tiles.size() < (std::size_t{1} << 31),
                 "bf16_bands: the operands exceed the grid");
  // NOTE: pageable uploads return once staged; the buffer is freed in stream order.
  const std::size_t band_bytes = bands.size() * sizeof(Bf16Band);
  DeviceScratch meta(band_bytes + tiles.size() * sizeof(int2), stream);
  CHECK_CUDA(cudaMemcpyAsync(meta.get(), bands.data(), band_bytes, cudaMemcpyHostToDevice, stream));
  CHECK_CUDA(cudaMemcpyAsync(meta.as<char>() + band_bytes, tiles.data(), tiles.size() * sizeof(int2),
                             cudaMemcpyHostToDevice, stream));
  const dim3 grid(static_cast<unsigned>(tiles.size()), static_cast<unsigned>(ceil_div(col_span, kTile)));
  bf16_bands_kernel<<<grid, kThreads, 0, stream>>>(
      meta.as<Bf16Band>(), reinterpret_cast<const int2*>(meta.as<char>() + band_bytes), cols, transposed);
  CHECK_CUDA_LAUNCH();
}

void transpose_f32(const float* x, float* y, std::int64_t rows, std::int64_t cols, void* stream) {
  if (rows == 0 || cols == 0) return;
  const dim3 block(kTile, 8);
  const dim3 grid(static_cast<unsigned>(ceil_div(cols, kTile)),
                  static_cast<unsigned>(std::min<std::int64_t>(ceil_div(rows, kTile), 65535)));
  transpose_f32_kernel<<<grid, block, 0, static_cast<cudaStream_t>(stream)>>>(x, y, rows, cols);
  CHECK_CUDA_LAUNCH();
}

void copy_scales_2d(const float* src, std::int64_t src_rows, std::int64_t src_cols, bool transpose,
                    float* dst, std::int64_t dst_rows, std::int64_t dst_cols, void* stream) {
  const std::int64_t n = dst_rows * dst_cols;
  if (n == 0) return;
  copy_scales_2d_kernel<<<grid_for(n), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      src, src_rows, src_cols, transpose, dst, dst_rows, dst_cols);
  CHECK_CUDA_LAUNCH();
}

void add_bias_rows(float* y, const float* bias, std::int64_t rows, std::int64_t cols, void* stream) {
  const std::int64_t n = rows * cols;
  if (n == 0) return;
  add_bias_rows_kernel<<<grid_for(n), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(y, bias, rows, cols);
  CHECK_CUDA_LAUNCH();
}

void column_sum_accumulate(const float* dy, float* dbias, std::int64_t rows, std::int64_t cols,
                           void* stream) {
  if (cols == 0) return;
  column_sum_accumulate_kernel<<<static_cast<unsigned>(ceil_div(cols, 128)), 128, 0,
                                 static_cast<cudaStream_t>(stream)>>>(dy, dbias, rows, cols);
  CHECK_CUDA_LAUNCH();
}

}  // namespace crucible::cuda
