// kernels/cuda/gemm_prep.cu: the memory-bound kernels around the cuBLASLt GEMMs (see the
// header for each contract). None of them rounds except the BF16 cast (RNE, as the CPU
// twin) and the FP32 adds of the bias epilogue and bias gradient, which run in the CPU
// twin's order so that results are bit-identical.
#include <cuda_bf16.h>

#include <algorithm>

#include "core/cuda_check.h"
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
  cast_f32_to_bf16_kernel<<<grid_for(n), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      x, reinterpret_cast<__nv_bfloat16*>(y), n);
  CHECK_CUDA_LAUNCH();
}

DeviceScratch bf16_copy(const float* x, std::int64_t n, void* stream) {
  DeviceScratch out(static_cast<std::size_t>(n) * sizeof(__nv_bfloat16), static_cast<cudaStream_t>(stream));
  cast_f32_to_bf16(x, out.as<std::uint16_t>(), n, stream);
  return out;
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
