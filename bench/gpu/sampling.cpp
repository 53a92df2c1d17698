// bench/gpu/sampling.cpp: next-token sampling (ops::sample_tokens) for 128 sequences over
// DeepSeek-V3's vocabulary (129280), greedy and sampled, as GB/s of logits read (4 n V
// bytes, once) against the device-to-device copy bandwidth measured in the same run, and
// the CPU twin (the generator's former host sampler) on the same logits for scale.
//
// Greedy reads the row twice (argmax, then the sum of exp): its roofline is half the
// copy bandwidth. Sampled runs sort every row (several passes over 8 bytes per logit)
// before the row passes, so it sits far below the copy; what matters is that a decode
// step's sampling is small next to the step's forward.
#include <cuda_runtime.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "bench/gpu/bench_timing.h"
#include "core/cuda_check.h"
#include "kernels/sampling.h"
#include "tests/gpu/gpu_random.h"

using namespace crucible;

namespace {

const Device kGpu = Device::cuda(0);

void report(const std::string& name, double bytes, double ms, double copy_gbs) {
  const double gbs = bytes / (ms * 1e-3) / 1e9;
  std::printf("%-52s %10.1f %10.0f %10.3f\n", name.c_str(), ms * 1e3, gbs, gbs / copy_gbs);
}

}  // namespace

int main() {
  const std::int64_t n = 128, V = 129280;
  // Copy bandwidth: 1 GiB buffer, bytes read + written.
  const std::size_t copy_bytes = std::size_t(1) << 30;
  void *src = nullptr, *dst = nullptr;
  CHECK_CUDA(cudaMalloc(&src, copy_bytes));
  CHECK_CUDA(cudaMalloc(&dst, copy_bytes));
  CHECK_CUDA(cudaMemset(src, 0, copy_bytes));
  const double copy_ms = bench::median_ms(
      [&] { CHECK_CUDA(cudaMemcpyAsync(dst, src, copy_bytes, cudaMemcpyDeviceToDevice, nullptr)); }, nullptr);
  const double copy_gbs = 2.0 * copy_bytes / (copy_ms * 1e-3) / 1e9;
  cudaFree(src);
  cudaFree(dst);

  std::printf("%-52s %10s %10s %10s\n", "op [128 x 129280]", "us", "GB/s", "vs copy");
  report("device-to-device copy (1 GiB)", 2.0 * copy_bytes, copy_ms, copy_gbs);

  const Tensor logits = gpu_test::uniform_tensor(Shape{n, V}, 1, "logits", -8.0f, 8.0f);
  Tensor u(Shape{n}, DType::F64, Device::cpu(), "u");
  gpu_test::SplitMix rng{2};
  for (double& v : u.span<double>()) v = static_cast<double>(rng.next() >> 11) * 0x1p-53;
  const Tensor logits_g = logits.to(kGpu), u_g = u.to(kGpu);
  Tensor tok(Shape{n}, DType::I32, kGpu, "tokens"), lp(Shape{n}, DType::F32, kGpu, "logprobs");
  const double bytes = 4.0 * n * V;
  struct Named {
    const char* name;
    ops::SamplingOptions o;
  };
  const Named runs[] = {{"greedy", {0.0, 1.0, 0}},
                        {"temperature 1", {1.0, 1.0, 0}},
                        {"temperature 0.6, top_p 0.95", {0.6, 0.95, 0}},
                        {"temperature 0.6, top_p 0.95, top_k 50", {0.6, 0.95, 50}}};
  for (const Named& r : runs)
    report(std::string("sample_tokens ") + r.name, bytes,
           bench::median_ms([&] { ops::sample_tokens(logits_g, u_g, r.o, tok, lp); }, nullptr), copy_gbs);

  // The CPU twin once (it takes about a second).
  Tensor tok_c(Shape{n}, DType::I32, Device::cpu(), "tokens"), lp_c(Shape{n}, DType::F32, Device::cpu(), "lp");
  const auto t0 = std::chrono::steady_clock::now();
  ops::sample_tokens(logits, u, {1.0, 1.0, 0}, tok_c, lp_c);
  const double cpu_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  report("CPU twin, temperature 1 (one run)", bytes, cpu_ms, copy_gbs);
  return 0;
}
