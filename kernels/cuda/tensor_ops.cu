// kernels/cuda/tensor_ops.cu: copy_columns, repeat_columns, sum_repeated_columns, axpy,
// fill and gather_rows on the GPU (FP32).
//
// The CUDA twins of kernels/cpu/tensor_ops.cpp, bit for bit: copies move bits, the
// accumulating copy adds once per element, axpy rounds the product then the sum
// (__fmul_rn/__fadd_rn: no FMA, as the CPU). scatter_add_rows lives in embedding.cu
// (the same deterministic sorted scatter as the embedding backward).
// NOTE: memory bound and simple: grid-stride loops, one element per thread for the
// flat ops, one block per row (16-byte accesses when aligned) for gather_rows.
#include <cuda_runtime.h>

#include "core/cuda_check.h"
#include "kernels/cuda/device_utils.cuh"
#include "kernels/cuda/tensor_ops_cuda.h"

namespace crucible::cuda {

namespace {

using detail::aligned;
using detail::ceil_div;
using detail::load_vec;
using detail::store_vec;
using detail::Vec;

constexpr int kThreads = 256;

unsigned flat_blocks(std::int64_t n) {
  return static_cast<unsigned>(std::min<std::int64_t>(ceil_div(n, kThreads), 65535LL * 16));
}

__global__ void axpy_kernel(float alpha, const float* __restrict__ x, float* __restrict__ y, std::int64_t n) {
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x)
    y[i] = __fadd_rn(y[i], __fmul_rn(alpha, x[i]));
}

__global__ void fill_kernel(float* __restrict__ x, float value, std::int64_t n) {
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x)
    x[i] = value;
}

// Grid (row blocks, column blocks).
__global__ void copy_columns_kernel(const float* __restrict__ src, std::int64_t src_ld, float* __restrict__ dst,
                                    std::int64_t dst_ld, std::int64_t rows, std::int64_t width, bool accumulate) {
  const std::int64_t c = static_cast<std::int64_t>(blockIdx.y) * blockDim.x + threadIdx.x;
  if (c >= width) return;
  for (std::int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float v = src[r * src_ld + c];
    float* d = dst + r * dst_ld + c;
    *d = accumulate ? *d + v : v;
  }
}

// Grid (row blocks, column blocks); each thread one column c of the block, all k.
__global__ void repeat_columns_kernel(const float* __restrict__ src, std::int64_t src_ld, float* __restrict__ dst,
                                      std::int64_t dst_ld, std::int64_t rows, std::int64_t width, std::int64_t count,
                                      std::int64_t stride) {
  const std::int64_t c = static_cast<std::int64_t>(blockIdx.y) * blockDim.x + threadIdx.x;
  if (c >= width) return;
  for (std::int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float v = src[r * src_ld + c];
    for (std::int64_t k = 0; k < count; ++k) dst[r * dst_ld + k * stride + c] = v;
  }
}

__global__ void sum_repeated_columns_kernel(const float* __restrict__ src, std::int64_t src_ld,
                                            float* __restrict__ dst, std::int64_t dst_ld, std::int64_t rows,
                                            std::int64_t width, std::int64_t count, std::int64_t stride) {
  const std::int64_t c = static_cast<std::int64_t>(blockIdx.y) * blockDim.x + threadIdx.x;
  if (c >= width) return;
  for (std::int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    float acc = dst[r * dst_ld + c];
    for (std::int64_t k = 0; k < count; ++k) acc = __fadd_rn(acc, src[r * src_ld + k * stride + c]);
    dst[r * dst_ld + c] = acc;
  }
}

// One block per output row i: out[i] = src[index[i]].
template <int kVec>
__global__ void __launch_bounds__(kThreads)
    gather_rows_kernel(const float* __restrict__ src, const std::int32_t* __restrict__ index,
                       float* __restrict__ out, std::int64_t src_rows, std::int64_t w) {
  const std::int64_t i = blockIdx.x;
  const std::int32_t r = index[i];
  if (r < 0 || r >= src_rows) {
    if (threadIdx.x == 0)
      CRUCIBLE_DEVICE_FAIL("gather_rows: index[%lld] = %d is outside the source rows [0, %lld)\n",
                           static_cast<long long>(i), r, static_cast<long long>(src_rows));
    return;
  }
  const float* s = src + static_cast<std::int64_t>(r) * w;
  float* d = out + i * w;
  for (std::int64_t c = threadIdx.x * kVec; c < w; c += kThreads * kVec) store_vec<kVec>(d + c, load_vec<kVec>(s + c));
}

}  // namespace

void copy_columns(const float* src, std::int64_t src_ld, std::int64_t src_col, float* dst, std::int64_t dst_ld,
                  std::int64_t dst_col, std::int64_t rows, std::int64_t width, bool accumulate, void* stream) {
  if (rows == 0 || width == 0) return;
  const dim3 grid(static_cast<unsigned>(std::min<std::int64_t>(rows, 65535)),
                  static_cast<unsigned>(ceil_div(width, kThreads)));
  copy_columns_kernel<<<grid, kThreads, 0, static_cast<cudaStream_t>(stream)>>>(src + src_col, src_ld, dst + dst_col,
                                                                                dst_ld, rows, width, accumulate);
  CHECK_CUDA_LAUNCH();
}

namespace {
dim3 column_grid(std::int64_t rows, std::int64_t width) {
  return dim3(static_cast<unsigned>(std::min<std::int64_t>(rows, 65535)), static_cast<unsigned>(ceil_div(width, kThreads)));
}
}  // namespace

void repeat_columns(const float* src, std::int64_t src_ld, std::int64_t src_col, float* dst, std::int64_t dst_ld,
                    std::int64_t dst_col, std::int64_t rows, std::int64_t width, std::int64_t count,
                    std::int64_t stride, void* stream) {
  if (rows == 0 || width == 0 || count == 0) return;
  repeat_columns_kernel<<<column_grid(rows, width), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      src + src_col, src_ld, dst + dst_col, dst_ld, rows, width, count, stride);
  CHECK_CUDA_LAUNCH();
}

void sum_repeated_columns(const float* src, std::int64_t src_ld, std::int64_t src_col, float* dst,
                          std::int64_t dst_ld, std::int64_t dst_col, std::int64_t rows, std::int64_t width,
                          std::int64_t count, std::int64_t stride, void* stream) {
  if (rows == 0 || width == 0 || count == 0) return;
  sum_repeated_columns_kernel<<<column_grid(rows, width), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      src + src_col, src_ld, dst + dst_col, dst_ld, rows, width, count, stride);
  CHECK_CUDA_LAUNCH();
}

void axpy(float alpha, const float* x, float* y, std::int64_t n, void* stream) {
  if (n == 0) return;
  axpy_kernel<<<flat_blocks(n), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(alpha, x, y, n);
  CHECK_CUDA_LAUNCH();
}

void fill(float* x, float value, std::int64_t n, void* stream) {
  if (n == 0) return;
  fill_kernel<<<flat_blocks(n), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(x, value, n);
  CHECK_CUDA_LAUNCH();
}

void gather_rows(const float* src, const std::int32_t* index, float* out, std::int64_t n, std::int64_t src_rows,
                 std::int64_t w, void* stream) {
  if (n == 0 || w == 0) return;
  auto st = static_cast<cudaStream_t>(stream);
  const auto grid = static_cast<unsigned>(n);
  if (w % 4 == 0 && aligned(src, 16) && aligned(out, 16))
    gather_rows_kernel<4><<<grid, kThreads, 0, st>>>(src, index, out, src_rows, w);
  else
    gather_rows_kernel<1><<<grid, kThreads, 0, st>>>(src, index, out, src_rows, w);
  CHECK_CUDA_LAUNCH();
}

}  // namespace crucible::cuda
