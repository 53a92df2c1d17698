// bench/gpu/attention.cpp: TFLOP/s of the CUDA causal attention forward and backward
// at the MLA and GQA training shapes of tests/gpu/attention_cases.h (4 packed
// sequences of 4096 tokens). tools/bench_sdpa.py times PyTorch's
// scaled_dot_product_attention (BF16, is_causal, a batch of 4) on the same shapes and
// prints the same keys; tools/device_run.sh prints the ratio ours / SDPA.
//
// FLOPs count the causal products once (the diagonal included), with pairs =
// sum_b L_b (L_b + 1) / 2 visible (query, key) pairs per head:
//   forward  2 Hq pairs (dqk + dv)          (S = Q K^T, O = P V)
//   backward 2 Hq pairs (3 dqk + 2 dv)      (S, dP = dO V^T, dV, dK, dQ: FlashAttention's 5)
// Our backward recomputes S and dP for dQ (7 products) for determinism; the extra
// work is not counted, so it shows as lower TFLOP/s. Each figure is the median of
// `iters` runs timed with CUDA events. Lines "attn <key> <ms> <TFLOP/s>" are the
// machine-readable table (keys fwd/<case>, bwd/<case>, fwd+bwd/<case>).
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "core/cuda_check.h"
#include "kernels/attention.h"
#include "tests/gpu/attention_cases.h"
#include "tests/gpu/gpu_random.h"

using namespace crucible;

namespace {

const Device kGpu = Device::cuda(0);

double median_ms(const std::function<void()>& f, int iters) {
  cudaEvent_t a, b;
  CHECK_CUDA(cudaEventCreate(&a));
  CHECK_CUDA(cudaEventCreate(&b));
  f();  // warm-up (and the first-call shared-memory attribute setup)
  CHECK_CUDA(cudaDeviceSynchronize());
  std::vector<float> ms(static_cast<std::size_t>(iters));
  for (float& m : ms) {
    CHECK_CUDA(cudaEventRecord(a));
    f();
    CHECK_CUDA(cudaEventRecord(b));
    CHECK_CUDA(cudaEventSynchronize(b));
    CHECK_CUDA(cudaEventElapsedTime(&m, a, b));
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

Tensor gpu_uniform(Shape shape, std::uint64_t seed, const char* name) {
  return gpu_test::uniform_tensor(shape, seed, name).to(kGpu);
}

void report(const std::string& key, double flops, double ms) {
  std::printf("attn %-36s %10.3f %10.1f\n", key.c_str(), ms, flops / (ms * 1e-3) / 1e12);
}

}  // namespace

int main() {
  const int iters = 5;
  std::printf("CUDA attention (BF16 mma.sync, FP32 in/out); columns: key, median ms, TFLOP/s\n");
  for (const gpu_cases::AttentionCase& c : gpu_cases::kAttentionBenchCases) {
    const std::vector<std::int32_t> cu = c.cu_seqlens();
    const std::int64_t T = cu.back();
    double pairs = 0;
    for (std::int32_t L : c.lengths) pairs += 0.5 * static_cast<double>(L) * (L + 1);
    const double fwd_flops = 2.0 * c.Hq * pairs * static_cast<double>(c.dqk + c.dv);
    const double bwd_flops = 2.0 * c.Hq * pairs * static_cast<double>(3 * c.dqk + 2 * c.dv);

    Tensor cu_h(Shape{static_cast<std::int64_t>(cu.size())}, DType::I32, Device::cpu(), "cu_seqlens");
    std::copy(cu.begin(), cu.end(), cu_h.data<std::int32_t>());
    const Tensor cu_g = cu_h.to(kGpu);
    const Tensor q = gpu_uniform(Shape{T, c.Hq, c.dqk}, 1, "q"), k = gpu_uniform(Shape{T, c.Hkv, c.dqk}, 2, "k");
    const Tensor v = gpu_uniform(Shape{T, c.Hkv, c.dv}, 3, "v"), dout = gpu_uniform(Shape{T, c.Hq, c.dv}, 4, "dout");
    Tensor out(Shape{T, c.Hq, c.dv}, DType::F32, kGpu, "out"), lse(Shape{T, c.Hq}, DType::F32, kGpu, "lse");
    Tensor dq(q.shape(), DType::F32, kGpu, "dq"), dk(k.shape(), DType::F32, kGpu, "dk"),
        dv(v.shape(), DType::F32, kGpu, "dv");
    const float scale = 1.0f / std::sqrt(static_cast<float>(c.dqk));

    const double fwd_ms = median_ms([&] { ops::attention_forward(q, k, v, cu_g, scale, out, lse); }, iters);
    const double bwd_ms = median_ms(
        [&] { ops::attention_backward(dout, q, k, v, out, lse, cu_g, scale, dq, dk, dv); }, iters);
    report(std::string("fwd/") + c.name, fwd_flops, fwd_ms);
    report(std::string("bwd/") + c.name, bwd_flops, bwd_ms);
    report(std::string("fwd+bwd/") + c.name, fwd_flops + bwd_flops, fwd_ms + bwd_ms);
  }
  return 0;
}
