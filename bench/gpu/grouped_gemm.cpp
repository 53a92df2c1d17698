// bench/gpu/grouped_gemm.cpp: TFLOP/s of the FP8 grouped GEMM (kernels/cuda/grouped_linear_fp8.cu)
// at DeepSeek-V3 MoE shapes, against the per-expert cuBLASLt loop measured in the same run.
//
// Routed rows: 4096 tokens x top-8 = 32768, over G = 32 or 64 local experts, loads uniform or
// skewed (expert e gets a share ~ 1 / (e + 1), every load a multiple of 8, so cuBLASLt takes
// its direct path with no padding). Shapes y_e = x_e W_e^T: gate/up 7168 -> 2048, down
// 2048 -> 7168. Columns (TFLOP/s = 2 M N K / time, M = 32768):
//   gemm grp   ours: one grouped launch on operands quantized beforehand (GEMM only)
//   gemm loop  per-expert cuBLASLt FP8 block-scaled GEMMs on the same pre-quantized operands
//   fwd op     ops::grouped_linear_forward, Fp8: quantize x once, the G weights, one launch
//   fwd loop   the per-expert ops::linear_forward loop (cuda::grouped_linear_forward_loop)
//   bwd op / bwd loop   the same for grouped_linear_backward (Dgrad + Wgrad: 4 M N K FLOP)
//   ratios     loop time / grouped time (> 1: grouped is faster)
// Timing: bench/gpu/bench_timing.h (events, 3 warm-ups, median of 20). L2 is not flushed; at
// these sizes operands (>= 235 MB of FP8 x and weights) far exceed the 50 MB L2.
//
// A second table decides GroupedImpl::Auto (kernels/grouped_linear.cpp) where it matters
// today: the h100-teacher's experts (configs/models/h100-teacher.toml: 32 experts, hidden
// 1024, moe_intermediate 512, top-4) at a training step's rows (8 x 1024 tokens x 4) and at
// decode batches (32 and 256 sequences x 4), loads skewed ~ 1 / (e + 1) and not rounded (so
// the loop meets unaligned groups), with the weights cached (ops::WeightCacheScope, as in a
// training step or a generate call). Columns: microseconds of the op, one launch vs loop; in
// FP8 and in BF16 (the BF16 grouped kernel against the per-expert cuBLASLt BF16 loop).
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "bench/gpu/bench_timing.h"
#include "core/cuda_check.h"
#include "core/tensor.h"
#include "kernels/cuda/gemm_cublaslt.h"
#include "kernels/cuda/grouped_linear_cuda.h"
#include "kernels/cuda/grouped_linear_fp8_cuda.h"
#include "kernels/cuda/linear_cuda.h"
#include "kernels/grouped_linear.h"
#include "kernels/linear.h"

using namespace crucible;
using namespace crucible::cuda;
using crucible::bench::fill;
using crucible::bench::kReps;
using crucible::bench::median_ms;

namespace {

constexpr std::int64_t kRows = 4096 * 8;

// G loads summing to `rows`, shares ~ 1 / (e + 1), not rounded; the remainder to expert 0.
std::vector<std::int64_t> skewed_loads(std::int64_t G, std::int64_t rows) {
  double total = 0;
  for (std::int64_t e = 0; e < G; ++e) total += 1.0 / static_cast<double>(e + 1);
  std::vector<std::int64_t> n(static_cast<std::size_t>(G));
  std::int64_t used = 0;
  for (std::int64_t e = 0; e < G; ++e)
    used += n[e] = static_cast<std::int64_t>(1.0 / static_cast<double>(e + 1) / total * static_cast<double>(rows));
  n[0] += rows - used;
  return n;
}

// G loads summing to kRows, each a multiple of 8: uniform or ~ 1 / (e + 1).
std::vector<std::int64_t> loads(std::int64_t G, bool skewed) {
  std::vector<double> share(static_cast<std::size_t>(G));
  double total = 0;
  for (std::int64_t e = 0; e < G; ++e) total += share[e] = skewed ? 1.0 / static_cast<double>(e + 1) : 1.0;
  std::vector<std::int64_t> n(static_cast<std::size_t>(G));
  std::int64_t used = 0;
  for (std::int64_t e = 0; e < G; ++e) used += n[e] = static_cast<std::int64_t>(share[e] / total * kRows / 8) * 8;
  n[0] += kRows - used;  // the remainder (a multiple of 8) to the busiest expert
  return n;
}

Tensor device_tensor(Shape shape, std::uint32_t seed, const char* name) {
  std::vector<float> host(static_cast<std::size_t>(shape.numel()));
  fill(host, seed);
  Tensor t(shape, DType::F32, Device::cuda(0), name);
  CHECK_CUDA(cudaMemcpy(t.raw(), host.data(), host.size() * sizeof(float), cudaMemcpyHostToDevice));
  return t;
}

// The second table (see the file comment).
void teacher_table(ops::GemmPrecision p) {
  constexpr std::int64_t G = 32, H = 1024, I = 512;
  struct Shape2 {
    const char* name;
    std::int64_t K, N;
  };
  const Shape2 shapes[] = {{"gate/up 1024->512", H, I}, {"down 512->1024", I, H}};
  const std::int64_t row_counts[] = {8 * 1024 * 4, 256 * 4, 32 * 4};
  const Stream stream;
  std::printf("\n%s grouped op, h100-teacher experts (G %lld), weights cached; us (median of %d); ratio = loop / one launch\n",
              p == ops::GemmPrecision::Fp8 ? "FP8" : "BF16", static_cast<long long>(G), kReps);
  std::printf("%-19s %6s | %8s %8s %6s | %8s %8s %6s\n", "shape (K->N)", "rows", "fwd one", "fwd loop", "ratio",
              "bwd one", "bwd loop", "ratio");
  for (const Shape2& s : shapes)
    for (std::int64_t rows : row_counts) {
      const std::vector<std::int64_t> n = skewed_loads(G, rows);
      std::vector<std::int64_t> offsets{0};
      for (std::int64_t v : n) offsets.push_back(offsets.back() + v);
      const Tensor x = device_tensor(Shape{rows, s.K}, 1, "x");
      const Tensor dy = device_tensor(Shape{rows, s.N}, 2, "dy");
      const Tensor arena = device_tensor(Shape{G * s.N, s.K}, 3, "w");
      std::vector<Tensor> w, dw;
      for (std::int64_t e = 0; e < G; ++e) {
        w.push_back(arena.slice(e * s.N, (e + 1) * s.N));
        dw.push_back(Tensor(Shape{s.N, s.K}, DType::F32, Device::cuda(0), "dw"));
      }
      Tensor y(Shape{rows, s.N}, DType::F32, Device::cuda(0), "y");
      Tensor dx(Shape{rows, s.K}, DType::F32, Device::cuda(0), "dx");
      const ops::WeightCacheScope cached;  // the warm-up calls make the weights' forms
      auto us = [&](ops::GroupedImpl impl, bool backward) {
        return 1e3 * median_ms(
                         [&] {
                           if (backward)
                             ops::grouped_linear_backward(dy, x, w, offsets, dx, dw, p, stream, impl);
                           else
                             ops::grouped_linear_forward(x, w, offsets, y, p, stream, impl);
                         },
                         nullptr);
      };
      const double f1 = us(ops::GroupedImpl::OneLaunch, false), fl = us(ops::GroupedImpl::Loop, false);
      const double b1 = us(ops::GroupedImpl::OneLaunch, true), bl = us(ops::GroupedImpl::Loop, true);
      std::printf("%-19s %6lld | %8.1f %8.1f %6.2f | %8.1f %8.1f %6.2f\n", s.name, static_cast<long long>(rows), f1,
                  fl, fl / f1, b1, bl, bl / b1);
    }
}

}  // namespace

int main(int argc, char** argv) {
  // --teacher: the second table only.
  if (argc > 1 && std::string(argv[1]) == "--teacher") {
    teacher_table(ops::GemmPrecision::Fp8);
    teacher_table(ops::GemmPrecision::Bf16);
    return 0;
  }
  struct Shape2 {
    const char* name;
    std::int64_t K, N;
  };
  const Shape2 shapes[] = {{"gate/up 7168->2048", 7168, 2048}, {"down 2048->7168", 2048, 7168}};
  const std::int64_t experts[] = {32, 64};
  const Stream stream;  // the legacy default stream
  const cudaStream_t st = nullptr;

  std::printf("FP8 grouped GEMM, DeepSeek-V3 MoE, %lld routed rows, TFLOP/s (median of %d); ratio = loop / grouped\n",
              static_cast<long long>(kRows), kReps);
  std::printf("%-19s %3s %-7s | %8s %9s %6s | %7s %8s %6s | %7s %8s %6s\n", "shape (K->N)", "G", "loads", "gemm grp",
              "gemm loop", "ratio", "fwd op", "fwd loop", "ratio", "bwd op", "bwd loop", "ratio");
  for (const Shape2& s : shapes)
    for (std::int64_t G : experts)
      for (bool skewed : {false, true}) {
        const std::int64_t K = s.K, N = s.N;
        const std::vector<std::int64_t> n = loads(G, skewed);
        std::vector<std::int64_t> offsets{0};
        for (std::int64_t v : n) offsets.push_back(offsets.back() + v);
        const Tensor x = device_tensor(Shape{kRows, K}, 1, "x");
        const Tensor dy = device_tensor(Shape{kRows, N}, 2, "dy");
        const Tensor arena = device_tensor(Shape{G * N, K}, 3, "w");
        std::vector<Tensor> w, dw;
        for (std::int64_t e = 0; e < G; ++e) {
          w.push_back(arena.slice(e * N, (e + 1) * N));
          dw.push_back(Tensor(Shape{N, K}, DType::F32, Device::cuda(0), "dw"));
        }
        Tensor y(Shape{kRows, N}, DType::F32, Device::cuda(0), "y");
        Tensor dx(Shape{kRows, K}, DType::F32, Device::cuda(0), "dx");

        // Pre-quantized operands: x as a whole (grouped) and per expert (cuBLASLt loop).
        const Fp8GemmInput qx = quantize_gemm_operand(static_cast<const float*>(x.raw()), kRows, K,
                                                      ScaleLayout::Tile1x128, kRows, K, st);
        std::vector<Fp8GemmInput> qw, qxe;
        std::vector<Fp8GroupedProblem> problems;
        const std::int64_t L4 = (K / 128 + 3) / 4 * 4;
        for (std::int64_t e = 0; e < G; ++e) {
          const std::int64_t r0 = offsets[e];
          qw.push_back(quantize_gemm_operand(static_cast<const float*>(w[e].raw()), N, K,
                                             ScaleLayout::Block128x128, N, K, st));
          qxe.push_back(quantize_gemm_operand(static_cast<const float*>(x.raw()) + r0 * K, n[e], K,
                                              ScaleLayout::Tile1x128, n[e], K, st));
          Fp8GroupedProblem q;
          q.a = static_cast<const std::uint8_t*>(qx.q.get()) + r0 * K;
          q.lda = K;
          q.a_scale = qx.scale.as<float>() + r0;
          q.a_scale_row = 1;
          q.a_scale_kb = kRows;
          q.b = static_cast<const std::uint8_t*>(qw.back().q.get());
          q.ldb = K;
          q.b_scale = qw.back().scale.as<float>();
          q.b_scale_group = 128;
          q.b_scale_row = L4;
          q.b_scale_kb = 1;
          q.c = static_cast<float*>(y.raw()) + r0 * N;
          q.ldc = N;
          q.M = static_cast<std::int32_t>(n[e]);
          q.N = static_cast<std::int32_t>(N);
          q.K = static_cast<std::int32_t>(K);
          problems.push_back(q);
        }
        float* yp = static_cast<float*>(y.raw());
        const double t_grp = median_ms([&] { sm90_fp8_grouped_gemm_nt(problems, st); }, st);
        const double t_loop = median_ms(
            [&] {
              for (std::int64_t e = 0; e < G; ++e)
                if (n[e] > 0)
                  gemm_rowmajor(false, true, n[e], N, K, qxe[e].operand, qw[e].operand, yp + offsets[e] * N, 0.0f,
                                st);
            },
            st);
        const auto p = ops::GemmPrecision::Fp8;
        const double t_fwd = median_ms([&] { ops::grouped_linear_forward(x, w, offsets, y, p, stream, ops::GroupedImpl::OneLaunch); }, st);
        const double t_fwd_loop =
            median_ms([&] { grouped_linear_forward_loop(x, w, offsets, y, p, stream); }, st);
        const double t_bwd =
            median_ms([&] { ops::grouped_linear_backward(dy, x, w, offsets, dx, dw, p, stream, ops::GroupedImpl::OneLaunch); }, st);
        const double t_bwd_loop =
            median_ms([&] { grouped_linear_backward_loop(dy, x, w, offsets, dx, dw, p, stream); }, st);
        CHECK_CUDA(cudaDeviceSynchronize());

        const double flop = 2.0 * kRows * N * K;
        auto tf = [&](double ms, double f) { return f / (ms * 1e-3) / 1e12; };
        std::printf("%-19s %3lld %-7s | %8.0f %9.0f %6.2f | %7.0f %8.0f %6.2f | %7.0f %8.0f %6.2f\n", s.name,
                    static_cast<long long>(G), skewed ? "skewed" : "uniform", tf(t_grp, flop), tf(t_loop, flop),
                    t_loop / t_grp, tf(t_fwd, flop), tf(t_fwd_loop, flop), t_fwd_loop / t_fwd,
                    tf(t_bwd, 2 * flop), tf(t_bwd_loop, 2 * flop), t_bwd_loop / t_bwd);
      }
  teacher_table(ops::GemmPrecision::Fp8);
  teacher_table(ops::GemmPrecision::Bf16);
  return 0;
}
