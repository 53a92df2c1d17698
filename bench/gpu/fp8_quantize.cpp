// bench/gpu/fp8_quantize.cpp: FP8 block-scaled quantization bandwidth on the GPU,
// as a ratio of the device-to-device copy bandwidth measured in the same run.
//
// Quantization reads 4 B and writes 1 B (+ scales) per element: it is memory bound,
// so the roofline is the copy bandwidth (bytes read + written per second).
// Shapes: DeepSeek-V3 activations [tokens, 7168] and weights [2048, 7168].
#include <cuda_runtime.h>

#include <cstdio>
#include <random>

#include "core/cuda_check.h"
#include "kernels/fp8_quantize.h"

using namespace crucible;

namespace {

template <typename F>
double time_ms(F&& f, int iters) {
  cudaEvent_t a, b;
  CHECK_CUDA(cudaEventCreate(&a));
  CHECK_CUDA(cudaEventCreate(&b));
  f();  // warm-up
  CHECK_CUDA(cudaDeviceSynchronize());
  CHECK_CUDA(cudaEventRecord(a));
  for (int i = 0; i < iters; ++i) f();
  CHECK_CUDA(cudaEventRecord(b));
  CHECK_CUDA(cudaEventSynchronize(b));
  float ms = 0;
  CHECK_CUDA(cudaEventElapsedTime(&ms, a, b));
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return ms / iters;
}

}  // namespace

int main() {
  const int iters = 50;
  // Copy bandwidth: 1 GiB buffer, bytes read + written.
  const std::size_t copy_bytes = std::size_t(1) << 30;
  void *src = nullptr, *dst = nullptr;
  CHECK_CUDA(cudaMalloc(&src, copy_bytes));
  CHECK_CUDA(cudaMalloc(&dst, copy_bytes));
  CHECK_CUDA(cudaMemset(src, 0, copy_bytes));
  const double copy_ms = time_ms([&] { CHECK_CUDA(cudaMemcpyAsync(dst, src, copy_bytes, cudaMemcpyDeviceToDevice)); }, 20);
  const double copy_gbs = 2.0 * copy_bytes / (copy_ms * 1e-3) / 1e9;
  cudaFree(src);
  cudaFree(dst);

  std::printf("%-34s %10s %10s %10s\n", "fp8 quantize (e4m3)", "us", "GB/s", "vs copy");
  std::printf("%-34s %10.1f %10.0f %10.2f\n", "device-to-device copy (1 GiB)", copy_ms * 1e3, copy_gbs, 1.0);
  struct Case { const char* name; std::int64_t rows, cols; ScaleLayout layout; };
  const Case cases[] = {{"act 1x128 [4096, 7168]", 4096, 7168, ScaleLayout::Tile1x128},
                        {"act 1x128 [16384, 7168]", 16384, 7168, ScaleLayout::Tile1x128},
                        {"weight 128x128 [2048, 7168]", 2048, 7168, ScaleLayout::Block128x128},
                        {"weight 128x128 [18432, 7168]", 18432, 7168, ScaleLayout::Block128x128}};
  for (const Case& c : cases) {
    Tensor host(Shape{c.rows, c.cols}, DType::F32);
    std::mt19937 gen(1);
    std::normal_distribution<float> nd;
    for (float& v : host.span<float>()) v = nd(gen);
    const Tensor x = host.to(Device::cuda(0));
    const Fp8Tensor warm = ops::quantize_fp8(x, c.layout);
    const double bytes = c.rows * c.cols * 5.0 + warm.scale.nbytes();
    const double ms = time_ms([&] { (void)ops::quantize_fp8(x, c.layout); }, iters);
    const double gbs = bytes / (ms * 1e-3) / 1e9;
    std::printf("%-34s %10.1f %10.0f %10.2f\n", c.name, ms * 1e3, gbs, gbs / copy_gbs);
  }
  return 0;
}
