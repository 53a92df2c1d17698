// kernels/cuda/rmsnorm.cu: RMSNorm forward and backward on the GPU (FP32).
//
// The CUDA twin of rmsnorm_forward/backward in kernels/cpu/elementwise.cpp, with the
// same formulas evaluated in the same order per element:
//   forward   r = 1 / sqrt(sum(x^2) / D + eps);  y = (x r) w
//   backward  gw = dy w;  k = sum(gw x) (r r) / D;  dx = r (gw - k x);  dw += sum_t dy (x r)
// Only the row sums differ from the CPU (another fixed order), so the tests bound the
// difference by the reduction length (tests/gpu/test_elementwise.cpp). The per-element
// steps use __fmul_rn/__fadd_rn/__fsub_rn where nvcc would otherwise contract a
// multiply-add into an FMA that the CPU does not do.
//
// Determinism (DESIGN.md principle 14): no atomics. The forward and dx use one
// 256-thread block per row and a fixed-order block sum. dw is a two-pass sum: the
// backward kernel gives each block a run of `rows_per_block` consecutive rows and
// accumulates dy x r for them in shared memory (column i owned by one thread, rows
// ascending), then writes one partial row per block; rmsnorm_dw_reduce_kernel adds the
// partials in ascending block order and then adds the result to dw (+=).
// rows_per_block depends on the row count only, never on the GPU, so the bits of dw
// are the same on every device. With a single block (rows <= 8) the order is the
// CPU's and dw matches it bit for bit.
//
// NOTE: memory bound. Rows are read with 16-byte loads when D % 4 == 0 and the
// pointers are 16-byte aligned (a scalar variant otherwise). Each kernel reads its row
// twice (the sum, then the output); the second read mostly hits L1/L2 (a 7168-wide row
// is 28 KiB). The dw partials cost rows / rows_per_block * D floats written and read
// (1/8 of a row's traffic at most).
#include <algorithm>

#include "core/cuda_check.h"
#include "kernels/cuda/device_utils.cuh"
#include "kernels/cuda/elementwise_cuda.h"

namespace crucible::cuda {

namespace {

using detail::aligned;
using detail::ceil_div;
using detail::kWarp;
using detail::load_vec;
using detail::store_vec;
using detail::Vec;

constexpr int kThreads = 256;
// dw partial reduction: a block covers kReduceCols columns with kReduceRows threads each.
constexpr int kReduceCols = 32, kReduceRows = 16;

// One block per row. x, y [rows, D]; w [D]; rstd [rows].
template <int kVec>
__global__ void __launch_bounds__(kThreads)
    rmsnorm_forward_kernel(const float* __restrict__ x, const float* __restrict__ w, float eps,
                           float* __restrict__ y, float* __restrict__ rstd, std::int64_t D) {
  __shared__ float scratch[kWarp];
  const std::int64_t row = blockIdx.x;
  const float* xr = x + row * D;
  float* yr = y + row * D;
  float ss = 0.0f;
  for (std::int64_t i = threadIdx.x * kVec; i < D; i += kThreads * kVec) {
    const Vec<kVec> v = load_vec<kVec>(xr + i);
#pragma unroll
    for (int j = 0; j < kVec; ++j) ss += v.v[j] * v.v[j];
  }
  ss = detail::block_sum(ss, scratch);
  const float r = 1.0f / sqrtf(ss / static_cast<float>(D) + eps);  // IEEE sqrt and division
  if (threadIdx.x == 0) rstd[row] = r;
  for (std::int64_t i = threadIdx.x * kVec; i < D; i += kThreads * kVec) {
    const Vec<kVec> xv = load_vec<kVec>(xr + i), wv = load_vec<kVec>(w + i);
    Vec<kVec> out;
#pragma unroll
    for (int j = 0; j < kVec; ++j) out.v[j] = (xv.v[j] * r) * wv.v[j];
    store_vec<kVec>(yr + i, out);
  }
}

// One block per run of rows [blockIdx.x * rows_per_block, +rows_per_block). Writes dx
// for those rows and this block's partial dw row, dw_partial[blockIdx.x, :] = sum over
// its rows (ascending) of dy x r. Dynamic shared memory: D floats.
template <int kVec>
__global__ void __launch_bounds__(kThreads)
    rmsnorm_backward_kernel(const float* __restrict__ dy, const float* __restrict__ x,
                            const float* __restrict__ w, const float* __restrict__ rstd,
                            float* __restrict__ dx, float* __restrict__ dw_partial, std::int64_t rows,
                            std::int64_t D, std::int64_t rows_per_block) {
  extern __shared__ float dw_acc[];  // [D]; column i is read and written by one thread only
  __shared__ float scratch[kWarp];
  const std::int64_t row_begin = blockIdx.x * rows_per_block;
  const std::int64_t row_end = min(rows, row_begin + rows_per_block);
  for (std::int64_t i = threadIdx.x * kVec; i < D; i += kThreads * kVec)
    store_vec<kVec>(dw_acc + i, Vec<kVec>{});
  for (std::int64_t row = row_begin; row < row_end; ++row) {
    const float* gr = dy + row * D;
    const float* xr = x + row * D;
    float* dxr = dx + row * D;
    const float r = rstd[row];
    float dot = 0.0f;
    for (std::int64_t i = threadIdx.x * kVec; i < D; i += kThreads * kVec) {
      const Vec<kVec> g = load_vec<kVec>(gr + i), xv = load_vec<kVec>(xr + i), wv = load_vec<kVec>(w + i);
#pragma unroll
      for (int j = 0; j < kVec; ++j) dot += __fmul_rn(g.v[j], wv.v[j]) * xv.v[j];
    }
    dot = detail::block_sum(dot, scratch);
    const float k = dot * (r * r) / static_cast<float>(D);
    for (std::int64_t i = threadIdx.x * kVec; i < D; i += kThreads * kVec) {
      const Vec<kVec> g = load_vec<kVec>(gr + i), xv = load_vec<kVec>(xr + i), wv = load_vec<kVec>(w + i);
      Vec<kVec> acc = load_vec<kVec>(dw_acc + i), out;
#pragma unroll
      for (int j = 0; j < kVec; ++j) {
        const float gw = __fmul_rn(g.v[j], wv.v[j]);
        out.v[j] = __fmul_rn(r, __fsub_rn(gw, __fmul_rn(k, xv.v[j])));
        acc.v[j] = __fadd_rn(acc.v[j], __fmul_rn(g.v[j], __fmul_rn(xv.v[j], r)));
      }
      store_vec<kVec>(dxr + i, out);
      store_vec<kVec>(dw_acc + i, acc);
    }
  }
  float* part = dw_partial + static_cast<std::int64_t>(blockIdx.x) * D;
  for (std::int64_t i = threadIdx.x * kVec; i < D; i += kThreads * kVec)
    store_vec<kVec>(part + i, load_vec<kVec>(dw_acc + i));
}

// dw[c] += sum over b ascending of partial[b, c], in a fixed tree: thread (c, ty) sums
// b = ty, ty + kReduceRows, ...; then the kReduceRows sums are added in ty order.
__global__ void rmsnorm_dw_reduce_kernel(const float* __restrict__ partial, float* __restrict__ dw,
                                         std::int64_t n_partials, std::int64_t D) {
  __shared__ float sums[kReduceRows][kReduceCols + 1];  // +1: no bank conflicts on the column read
  const std::int64_t col = static_cast<std::int64_t>(blockIdx.x) * kReduceCols + threadIdx.x;
  float s = 0.0f;
  if (col < D)
    for (std::int64_t b = threadIdx.y; b < n_partials; b += kReduceRows) s += partial[b * D + col];
  sums[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y == 0 && col < D) {
    float total = 0.0f;
#pragma unroll
    for (int k = 0; k < kReduceRows; ++k) total += sums[k][threadIdx.x];
    dw[col] += total;
  }
}

// Rows per backward block: a function of the row count only (see the file header).
// At least 8 rows keeps the partials small; at most 1024 blocks (about 8 per SM).
std::int64_t backward_rows_per_block(std::int64_t rows) {
  return std::max<std::int64_t>(8, ceil_div(rows, 1024));
}

bool vectorizable(std::int64_t D, std::initializer_list<const void*> ptrs) {
  if (D % 4 != 0) return false;
  for (const void* p : ptrs)
    if (!aligned(p, 16)) return false;
  return true;
}

template <int kVec>
void launch_backward(const float* dy, const float* x, const float* w, const float* rstd, float* dx,
                     float* partial, std::int64_t rows, std::int64_t D, std::int64_t rows_per_block,
                     std::int64_t blocks, cudaStream_t st) {
  const std::size_t smem = static_cast<std::size_t>(D) * sizeof(float);
  if (smem > 48 * 1024)
    CHECK_CUDA(cudaFuncSetAttribute(rmsnorm_backward_kernel<kVec>,
                                    cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  rmsnorm_backward_kernel<kVec><<<static_cast<unsigned>(blocks), kThreads, smem, st>>>(
      dy, x, w, rstd, dx, partial, rows, D, rows_per_block);
  CHECK_CUDA_LAUNCH();
}

}  // namespace

void rmsnorm_forward(const float* x, const float* w, float eps, float* y, float* rstd, std::int64_t rows,
                     std::int64_t D, void* stream) {
  if (rows == 0) return;
  auto st = static_cast<cudaStream_t>(stream);
  const auto grid = static_cast<unsigned>(rows);
  if (vectorizable(D, {x, w, y}))
    rmsnorm_forward_kernel<4><<<grid, kThreads, 0, st>>>(x, w, eps, y, rstd, D);
  else
    rmsnorm_forward_kernel<1><<<grid, kThreads, 0, st>>>(x, w, eps, y, rstd, D);
  CHECK_CUDA_LAUNCH();
}

void rmsnorm_backward(const float* dy, const float* x, const float* w, const float* rstd, float* dx,
                      float* dw, std::int64_t rows, std::int64_t D, void* stream) {
  if (rows == 0 || D == 0) return;
  auto st = static_cast<cudaStream_t>(stream);
  int device = 0, smem_max = 0;
  CHECK_CUDA(cudaGetDevice(&device));
  CHECK_CUDA(cudaDeviceGetAttribute(&smem_max, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  CRUCIBLE_CHECK(static_cast<std::size_t>(D + kWarp) * sizeof(float) <= static_cast<std::size_t>(smem_max),
                 "rmsnorm_backward: a row of ", D, " floats does not fit the ", smem_max,
                 " bytes of shared memory a block may use on this GPU");
  const std::int64_t rows_per_block = backward_rows_per_block(rows);
  const std::int64_t blocks = ceil_div(rows, rows_per_block);
  float* partial = nullptr;  // [blocks, D], stream-ordered scratch
  CHECK_CUDA(cudaMallocAsync(reinterpret_cast<void**>(&partial),
                             static_cast<std::size_t>(blocks * D) * sizeof(float), st));
  if (vectorizable(D, {dy, x, w, dx}))
    launch_backward<4>(dy, x, w, rstd, dx, partial, rows, D, rows_per_block, blocks, st);
  else
    launch_backward<1>(dy, x, w, rstd, dx, partial, rows, D, rows_per_block, blocks, st);
  rmsnorm_dw_reduce_kernel<<<static_cast<unsigned>(ceil_div(D, kReduceCols)), dim3(kReduceCols, kReduceRows),
                             0, st>>>(partial, dw, blocks, D);
  CHECK_CUDA_LAUNCH();
  CHECK_CUDA(cudaFreeAsync(partial, st));
}

}  // namespace crucible::cuda
