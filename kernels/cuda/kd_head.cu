// kernels/cuda/kd_head.cu: logit KD through two LM heads on the GPU (kernels/kd_head.h).
//
// The CUDA twin of kernels/cpu/kd_head.cpp, block by block of `rows` tokens in the same
// order:
//   zs [R, V] = hs[r0 : r0 + R] ws^T,  zt [R, V] = ht[r0 : r0 + R] wt^T
//             cuBLASLt FP32 (pedantic FFMA, no TF32), as the log-prob head.
//   forward   one 256-thread block per token row: the max of each row, then in FP64 as
//             the CPU: x = z / tau - m, lse = m + log(sum exp x), lp = z / tau - lse, and
//             loss = tau^2 sum_v exp(lpt) (lpt - lps), rounded to FP32 once.
//   backward  the block's logits again, then per row, in place over zs:
//             dz = (float) (dloss tau (exp(lps) - exp(lpt))) (rows with dloss == 0 get 0,
//             as the CPU skips them), then dhs[block] = dz ws (=) and dws += dz^T hs[block]:
//             two more FP32 GEMMs.
// Every rounding step the CPU makes in FP64 is made here with the explicitly rounded
// intrinsics (no contraction); exp and log are CUDA's FP64 ones (<= 1 ulp in FP64, far
// below the FP32 outputs' rounding). What differs from the CPU: the GEMMs' summation
// order and the FP64 block sums' order; tests/gpu/test_kd_head.cpp bounds both.
// Deterministic: no atomics; every reduction order is fixed by the launch shape.
//
// NOTE: GEMM bound like the log-prob head: per block 2 R V (Ds + Dt) FLOPs of GEMM in the
// forward (plus 4 R V Ds for dhs and dws in the backward) against two [R, V] blocks that
// the row kernel reads three times (66 MB at R = 64, V = 129280). The default rows = 64
// gives thin GEMMs (M = 64); a larger `rows` trades scratch (2 rows V 4 bytes) for GEMM
// efficiency. Untimed.
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cmath>

#include "core/cuda_check.h"
#include "core/error.h"
#include "kernels/cuda/cublaslt_context.h"
#include "kernels/cuda/device_utils.cuh"
#include "kernels/cuda/gemm_cublaslt.h"
#include "kernels/cuda/kd_head_cuda.h"

namespace crucible::cuda {

namespace {

using detail::block_max;
using detail::kWarp;

constexpr int kThreads = 256;
static_assert(kThreads % kWarp == 0 && kThreads / kWarp <= kWarp);


// z / tau - c in FP64, each operation rounded once (the CPU's static_cast<double>(z) / tau - c).
__device__ __forceinline__ double tempered(float z, double tau, double c) {
  return __dadd_rn(__ddiv_rn(static_cast<double>(z), tau), -c);
}

// log sum_v exp(z[v] / tau) of one row, as the CPU: m = max z / tau (division is monotonic,
// so max(z) / tau is the CPU's max of the quotients), lse = m + log(sum exp(z / tau - m)).
__device__ double row_lse(const float* __restrict__ z, std::int64_t V, double tau, float* fscratch,
                          double* dscratch) {
  float zm = -INFINITY;
  for (std::int64_t j = threadIdx.x; j < V; j += kThreads) zm = fmaxf(zm, z[j]);
  zm = block_max(zm, fscratch);
  const double m = __ddiv_rn(static_cast<double>(zm), tau);
  double s = 0.0;
  for (std::int64_t j = threadIdx.x; j < V; j += kThreads) s = __dadd_rn(s, exp(tempered(z[j], tau, m)));
  s = detail::block_sum(s, dscratch);
  return __dadd_rn(m, log(s));
}

// One block per row r of a block of logits zs, zt [R, V]: loss[r] = tau^2 KL(pt || ps).
__global__ void __launch_bounds__(kThreads)
    kd_loss_kernel(const float* __restrict__ zs_blk, const float* __restrict__ zt_blk, std::int64_t V, double tau,
                   float* __restrict__ loss) {
  __shared__ float fscratch[kWarp];
  __shared__ double dscratch[kWarp];
  const std::int64_t r = blockIdx.x;
  const float* zs = zs_blk + r * V;
  const float* zt = zt_blk + r * V;
  const double lse_s = row_lse(zs, V, tau, fscratch, dscratch);
  const double lse_t = row_lse(zt, V, tau, fscratch, dscratch);
  double kl = 0.0;
  for (std::int64_t j = threadIdx.x; j < V; j += kThreads) {
    const double lpt = tempered(zt[j], tau, lse_t), lps = tempered(zs[j], tau, lse_s);
    kl = __dadd_rn(kl, __dmul_rn(exp(lpt), __dadd_rn(lpt, -lps)));
  }
  kl = detail::block_sum(kl, dscratch);
  if (threadIdx.x == 0) loss[r] = static_cast<float>(__dmul_rn(__dmul_rn(tau, tau), kl));
}

// One block per row r: zs[r] (in place) -> dz = dloss[r] tau (exp(lps) - exp(lpt)).
__global__ void __launch_bounds__(kThreads)
    kd_grad_kernel(float* __restrict__ zs_blk, const float* __restrict__ zt_blk, std::int64_t V, double tau,
                   const float* __restrict__ dloss) {
  __shared__ float fscratch[kWarp];
  __shared__ double dscratch[kWarp];
  const std::int64_t r = blockIdx.x;
  float* zs = zs_blk + r * V;
  const float* zt = zt_blk + r * V;
  const float dl = dloss[r];
  if (dl == 0.0f) {  // the whole block takes this branch, before any barrier
    for (std::int64_t j = threadIdx.x; j < V; j += kThreads) zs[j] = 0.0f;
    return;
  }
  const double lse_s = row_lse(zs, V, tau, fscratch, dscratch);
  const double lse_t = row_lse(zt, V, tau, fscratch, dscratch);
  const double g = __dmul_rn(static_cast<double>(dl), tau);
  // Each thread reads then writes only its own elements; row_lse's last barrier ordered
  // every other thread's reads of zs before these writes.
  for (std::int64_t j = threadIdx.x; j < V; j += kThreads) {
    const double ps = exp(tempered(zs[j], tau, lse_s)), pt = exp(tempered(zt[j], tau, lse_t));
    zs[j] = static_cast<float>(__dmul_rn(g, __dadd_rn(ps, -pt)));
  }
}

// logits [R, V] = h[r0 : r0 + R] w^T, h [T, D], w [V, D] (FP32).
void block_logits(const float* h, const float* w, std::int64_t r0, std::int64_t R, std::int64_t D, std::int64_t V,
                  float* logits, cudaStream_t st) {
  gemm_rowmajor(false, true, R, V, D, GemmOperand{h + r0 * D, DType::F32}, GemmOperand{w, DType::F32}, logits, 0.0f,
                st);
}

void check_rows(std::int64_t rows, const char* op) {
  CRUCIBLE_CHECK(rows > 0 && rows <= INT_MAX, op, ": rows = ", rows, " must lie in [1, ", INT_MAX, "]");
}

}  // namespace

void kd_head_forward(const float* hs, const float* ws, const float* ht, const float* wt, float* loss,
                     std::int64_t T, std::int64_t Ds, std::int64_t Dt, std::int64_t V, float temperature,
                     std::int64_t rows, void* stream) {
  if (T == 0) return;
  auto st = static_cast<cudaStream_t>(stream);
  if (V == 0) {  // empty distributions: KL = 0, as the CPU
    CHECK_CUDA(cudaMemsetAsync(loss, 0, static_cast<std::size_t>(T) * sizeof(float), st));
    return;
  }
  check_rows(rows, "kd_head_forward");
  const double tau = temperature;
  const std::size_t block_bytes = static_cast<std::size_t>(rows * V) * sizeof(float);
  DeviceScratch zs(block_bytes, st), zt(block_bytes, st);  // [rows, V] each
  for (std::int64_t r0 = 0; r0 < T; r0 += rows) {
    const std::int64_t R = std::min(rows, T - r0);
    block_logits(hs, ws, r0, R, Ds, V, zs.as<float>(), st);
    block_logits(ht, wt, r0, R, Dt, V, zt.as<float>(), st);
    kd_loss_kernel<<<static_cast<unsigned>(R), kThreads, 0, st>>>(zs.as<float>(), zt.as<float>(), V, tau,
                                                                   loss + r0);
    CHECK_CUDA_LAUNCH();
  }
}

void kd_head_backward(const float* dloss, const float* hs, const float* ws, const float* ht, const float* wt,
                      float* dhs, float* dws, std::int64_t T, std::int64_t Ds, std::int64_t Dt, std::int64_t V,
                      float temperature, std::int64_t rows, void* stream) {
  if (T == 0) return;
  auto st = static_cast<cudaStream_t>(stream);
  if (V == 0) {  // no logits: dhs = 0 (the CPU's K = 0 GEMM), dws [0, Ds] untouched
    CHECK_CUDA(cudaMemsetAsync(dhs, 0, static_cast<std::size_t>(T * Ds) * sizeof(float), st));
    return;
  }
  check_rows(rows, "kd_head_backward");
  const double tau = temperature;
  const std::size_t block_bytes = static_cast<std::size_t>(rows * V) * sizeof(float);
  DeviceScratch zs(block_bytes, st), zt(block_bytes, st);  // [rows, V] each; zs becomes dz
  float* dz = zs.as<float>();
  for (std::int64_t r0 = 0; r0 < T; r0 += rows) {
    const std::int64_t R = std::min(rows, T - r0);
    block_logits(hs, ws, r0, R, Ds, V, dz, st);
    block_logits(ht, wt, r0, R, Dt, V, zt.as<float>(), st);
    kd_grad_kernel<<<static_cast<unsigned>(R), kThreads, 0, st>>>(dz, zt.as<float>(), V, tau, dloss + r0);
    CHECK_CUDA_LAUNCH();
    // dhs[block] = dz ws ;  dws += dz^T hs[block]
    gemm_rowmajor(false, false, R, Ds, V, GemmOperand{dz, DType::F32}, GemmOperand{ws, DType::F32}, dhs + r0 * Ds,
                  0.0f, st);
    gemm_rowmajor(true, false, V, Ds, R, GemmOperand{dz, DType::F32}, GemmOperand{hs + r0 * Ds, DType::F32}, dws,
                  1.0f, st);
  }
}

}  // namespace crucible::cuda
