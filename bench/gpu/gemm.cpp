// bench/gpu/gemm.cpp: TFLOP/s of the linear-layer GEMMs on DeepSeek-V3 shapes, with ratios
// against the cuBLASLt peers measured in the same run.
//
// y [M, N] = x [M, K] W [N, K]^T, FP32 output, M = tokens (4096, 16384), (K -> N) = expert
// gate/up 7168->2048, expert down 2048->7168, dense gate/up 7168->18432, dense down
// 18432->7168, q_a 7168->1536, kv_a 7168->576. Columns:
//   bf16        cuBLASLt BF16 x BF16, FP32 accumulate (operands cast beforehand)
//   fp8 tensor  cuBLASLt FP8 E4M3 with one scale per tensor: the peer ceiling for FP8
//   fp8 block   ours: cuBLASLt FP8 with DeepSeek-V3 scaling (x 1x128 VEC128, W 128x128
//               BLK128x128), operands quantized beforehand: GEMM only
//   block+q     the same plus the quantization of the activation x (quantize kernel and
//               scale re-layout), W quantized beforehand as a training step would cache it
//   ratios      fp8 block and block+q over bf16 and over fp8 tensor
// Timing: CUDA events around each call on one stream, 3 warm-up calls, the median of 20.
// NOTE: L2 is not flushed between calls (as cuBLAS' own benchmarks); for the smaller shapes
// part of the operands stays in the 50 MB L2 across calls. 2 M N K FLOP per GEMM.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "bench/gpu/bench_timing.h"
#include "core/cuda_check.h"
#include "kernels/cuda/gemm_cublaslt.h"
#include "kernels/cuda/gemm_prep_cuda.h"
#include "kernels/cuda/linear_cuda.h"

using namespace crucible;
using namespace crucible::cuda;
using crucible::bench::fill;
using crucible::bench::kReps;
using crucible::bench::median_ms;

int main() {
  struct Case {
    const char* name;
    std::int64_t K, N;
  };
  const Case cases[] = {{"expert gate/up 7168->2048", 7168, 2048},
                        {"expert down 2048->7168", 2048, 7168},
                        {"dense gate/up 7168->18432", 7168, 18432},
                        {"dense down 18432->7168", 18432, 7168},
                        {"q_a 7168->1536", 7168, 1536},
                        {"kv_a 7168->576", 7168, 576}};
  const std::int64_t tokens[] = {4096, 16384};
  cudaStream_t st = nullptr;  // the legacy default stream

  // One x and one W buffer, large enough for every case; each case uses a prefix.
  std::int64_t max_x = 0, max_w = 0;
  for (const Case& c : cases) {
    max_x = std::max(max_x, tokens[1] * c.K);
    max_w = std::max(max_w, c.N * c.K);
  }
  float *x = nullptr, *w = nullptr, *y = nullptr, *one = nullptr;
  std::uint16_t *xb = nullptr, *wb = nullptr;
  {
    std::vector<float> host(static_cast<std::size_t>(std::max(max_x, max_w)));
    fill(host, 1);
    CHECK_CUDA(cudaMalloc(&x, max_x * sizeof(float)));
    CHECK_CUDA(cudaMemcpy(x, host.data(), max_x * sizeof(float), cudaMemcpyHostToDevice));
    fill(host, 2);
    CHECK_CUDA(cudaMalloc(&w, max_w * sizeof(float)));
    CHECK_CUDA(cudaMemcpy(w, host.data(), max_w * sizeof(float), cudaMemcpyHostToDevice));
  }
  std::int64_t max_y = 0;
  for (const Case& c : cases) max_y = std::max(max_y, tokens[1] * c.N);
  CHECK_CUDA(cudaMalloc(&y, max_y * sizeof(float)));
  CHECK_CUDA(cudaMalloc(&xb, max_x * 2));
  CHECK_CUDA(cudaMalloc(&wb, max_w * 2));
  CHECK_CUDA(cudaMalloc(&one, sizeof(float)));
  const float host_one = 1.0f;
  CHECK_CUDA(cudaMemcpy(one, &host_one, sizeof(float), cudaMemcpyHostToDevice));

  std::printf("y = x W^T, FP32 out, TFLOP/s (median of %d); ratios of fp8 block and block+q\n", kReps);
  std::printf("%-27s %6s %8s %8s %8s %8s | %8s %8s %8s %8s\n", "shape (K->N)", "M", "bf16", "fp8 tens",
              "fp8 blk", "blk+q", "blk/bf16", "blk/tens", "b+q/bf16", "b+q/tens");
  for (std::int64_t M : tokens)
    for (const Case& c : cases) {
      const std::int64_t K = c.K, N = c.N;
      const double flop = 2.0 * M * N * K;
      cast_f32_to_bf16(x, xb, M * K, st);
      cast_f32_to_bf16(w, wb, N * K, st);
      const GemmOperand a_bf16{xb, DType::BF16}, b_bf16{wb, DType::BF16};
      // Every shape here is aligned (M, N % 4, K % 128): no padding.
      const Fp8GemmInput qx = quantize_gemm_operand(x, M, K, ScaleLayout::Tile1x128, M, K, st);
      const Fp8GemmInput qw = quantize_gemm_operand(w, N, K, ScaleLayout::Block128x128, N, K, st);
      const GemmOperand a_tens{qx.operand.data, DType::E4M3, one, Fp8ScaleMode::PerTensor};
      const GemmOperand b_tens{qw.operand.data, DType::E4M3, one, Fp8ScaleMode::PerTensor};

      const double t_bf16 =
          median_ms([&] { gemm_rowmajor(false, true, M, N, K, a_bf16, b_bf16, y, 0.0f, st); }, st);
      const double t_tens =
          median_ms([&] { gemm_rowmajor(false, true, M, N, K, a_tens, b_tens, y, 0.0f, st); }, st);
      const double t_blk =
          median_ms([&] { gemm_rowmajor(false, true, M, N, K, qx.operand, qw.operand, y, 0.0f, st); }, st);
      const double t_blkq = median_ms(
          [&] {
            const Fp8GemmInput q = quantize_gemm_operand(x, M, K, ScaleLayout::Tile1x128, M, K, st);
            gemm_rowmajor(false, true, M, N, K, q.operand, qw.operand, y, 0.0f, st);
          },
          st);
      auto tflops = [&](double ms) { return flop / (ms * 1e-3) / 1e12; };
      std::printf("%-27s %6lld %8.0f %8.0f %8.0f %8.0f | %8.2f %8.2f %8.2f %8.2f\n", c.name,
                  static_cast<long long>(M), tflops(t_bf16), tflops(t_tens), tflops(t_blk), tflops(t_blkq),
                  t_bf16 / t_blk, t_tens / t_blk, t_bf16 / t_blkq, t_tens / t_blkq);
    }
  CHECK_CUDA(cudaDeviceSynchronize());
  cudaFree(x);
  cudaFree(w);
  cudaFree(y);
  cudaFree(xb);
  cudaFree(wb);
  cudaFree(one);
  return 0;
}
