// bench/gpu/elementwise.cpp: bandwidth of the memory-bound CUDA ops (RMSNorm forward
// and backward, SwiGLU forward and backward, AdamW with FP32 and BF16 moments) at
// DeepSeek-V3 sizes, as a ratio of the device-to-device copy bandwidth measured in
// the same run.
//
// Every op here is memory bound, so its roofline is the copy bandwidth (bytes read +
// written per second). GB/s counts the bytes the op must move at least: each input
// read once and each output written once (RMSNorm backward's dw partials and any
// second read of a row from L2 are not counted, so they show as a lower ratio).
// Shapes: tests/gpu/elementwise_cases.h.
#include <cuda_runtime.h>

#include <cstdio>
#include <functional>
#include <string>

#include "core/cuda_check.h"
#include "kernels/adamw.h"
#include "kernels/elementwise.h"
#include "tests/gpu/elementwise_cases.h"
#include "tests/gpu/gpu_random.h"

using namespace crucible;
namespace cases = crucible::gpu_cases;

namespace {

const Device kGpu = Device::cuda(0);

double time_ms(const std::function<void()>& f, int iters) {
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

Tensor gpu_uniform(Shape shape, std::uint64_t seed, const char* name, float lo = -1.0f, float hi = 1.0f) {
  return gpu_test::uniform_tensor(shape, seed, name, lo, hi).to(kGpu);
}

double g_copy_gbs = 0;

void report(const std::string& name, double bytes, double ms) {
  const double gbs = bytes / (ms * 1e-3) / 1e9;
  std::printf("%-44s %10.1f %10.0f %10.2f\n", name.c_str(), ms * 1e3, gbs, gbs / g_copy_gbs);
}

}  // namespace

int main() {
  const int iters = 20;
  // Copy bandwidth: 1 GiB buffer, bytes read + written.
  const std::size_t copy_bytes = std::size_t(1) << 30;
  void *src = nullptr, *dst = nullptr;
  CHECK_CUDA(cudaMalloc(&src, copy_bytes));
  CHECK_CUDA(cudaMalloc(&dst, copy_bytes));
  CHECK_CUDA(cudaMemset(src, 0, copy_bytes));
  const double copy_ms =
      time_ms([&] { CHECK_CUDA(cudaMemcpyAsync(dst, src, copy_bytes, cudaMemcpyDeviceToDevice)); }, iters);
  g_copy_gbs = 2.0 * copy_bytes / (copy_ms * 1e-3) / 1e9;
  cudaFree(src);
  cudaFree(dst);

  std::printf("%-44s %10s %10s %10s\n", "op [shape]", "us", "GB/s", "vs copy");
  report("device-to-device copy (1 GiB)", 2.0 * copy_bytes, copy_ms);

  // RMSNorm at the hidden size, one and four micro-batches of tokens.
  for (std::int64_t T : {cases::kTokens, 4 * cases::kTokens}) {
    const std::int64_t D = cases::kHidden;
    const std::string shape = " [" + std::to_string(T) + ", " + std::to_string(D) + "]";
    const Tensor x = gpu_uniform(Shape{T, D}, 1, "x"), w = gpu_uniform(Shape{D}, 2, "w");
    const Tensor dy = gpu_uniform(Shape{T, D}, 3, "dy");
    Tensor y(Shape{T, D}, DType::F32, kGpu, "y"), r(Shape{T}, DType::F32, kGpu, "rstd");
    Tensor dx(Shape{T, D}, DType::F32, kGpu, "dx"), dw(Shape{D}, DType::F32, kGpu, "dw");
    const double act = 4.0 * T * D, vec = 4.0 * D, rows = 4.0 * T;
    report("rmsnorm forward" + shape, 2 * act + vec + rows,
           time_ms([&] { ops::rmsnorm_forward(x, w, 1e-6f, y, r); }, iters));
    report("rmsnorm backward" + shape, 3 * act + 3 * vec + rows,
           time_ms([&] { ops::rmsnorm_backward(dy, x, w, r, dx, dw); }, iters));
  }

  // SwiGLU at the dense-MLP and routed-expert widths.
  for (const cases::RowsCase& c : cases::kSwiGluCases) {
    if (c.rows < cases::kTokens) continue;  // the odd shapes are for the tests
    const Shape shape{c.rows, c.cols};
    const Tensor gate = gpu_uniform(shape, 4, "gate", -8.0f, 8.0f), up = gpu_uniform(shape, 5, "up");
    const Tensor dout = gpu_uniform(shape, 6, "dout");
    Tensor out(shape, DType::F32, kGpu, "out"), dg(shape, DType::F32, kGpu, "dgate"),
        du(shape, DType::F32, kGpu, "dup");
    const double act = 4.0 * c.rows * c.cols;
    report(std::string("swiglu forward ") + c.name, 3 * act,
           time_ms([&] { ops::swiglu_forward(gate, up, out); }, iters));
    report(std::string("swiglu backward ") + c.name, 5 * act,
           time_ms([&] { ops::swiglu_backward(dout, gate, up, dg, du); }, iters));
  }

  // AdamW over the dense MLP's weight (132M parameters). FP32 moments: read p, g, m, v
  // and write p, m, v (28 B); BF16 moments: 20 B.
  const std::int64_t n = cases::kDenseInter * cases::kHidden;
  Tensor p = gpu_uniform(Shape{n}, 7, "param", -0.05f, 0.05f);
  const Tensor g = gpu_uniform(Shape{n}, 8, "grad");
  ops::AdamWStep s;
  s.weight_decay = 0.1f;
  for (DType moments : {DType::F32, DType::BF16}) {
    Tensor m(Shape{n}, moments, kGpu, "m"), v(Shape{n}, moments, kGpu, "v");
    const double bytes = static_cast<double>(n) * (moments == DType::F32 ? 28 : 20);
    report("adamw " + std::string(dtype_name(moments)) + " moments [18432 x 7168]", bytes,
           time_ms([&] { ops::adamw_update(p, g, m, v, s); }, iters));
  }
  report("sum_squares [18432 x 7168] (with sync)", 4.0 * n,
         time_ms([&] { (void)ops::sum_squares(g); }, iters));
  return 0;
}
