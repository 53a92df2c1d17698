// bench/gpu/decode_attention.cpp: bandwidth of the CUDA decode attention (absorbed MLA
// at DeepSeek-V3 shapes, GQA at Llama/Qwen shapes) over FP32 and BF16 KV caches, as a
// ratio of the device-to-device copy bandwidth measured in the same run.
//
// Decode is memory bound: the roofline is the copy bandwidth (bytes read + written per
// second). GB/s counts the bytes the op must move at least: the cache rows each token
// attends to read once (MLA: 576 values per position shared by all 128 heads; GQA: K
// and V per kv head), q read once and out written once. The second head group's L2
// reads (MLA), the split partials and the combine are not counted, so they show as a
// lower ratio. Shapes: tests/gpu/decode_attention_cases.h (batch of B tokens, one per
// sequence, all at cache length L). Each figure is the median of `iters` runs timed
// with CUDA events. Lines "decode <key> <us> <GB/s> <vs copy>" are the table; MLA over a
// BF16 cache also runs the mma.sync kernel (key suffix _mma) that Hopper's wgmma kernel
// replaces.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "core/cuda_check.h"
#include "core/numerics.h"
#include "kernels/cuda/decode_attention_cuda.h"
#include "kernels/decode_attention.h"
#include "tests/gpu/decode_attention_cases.h"
#include "tests/gpu/gpu_random.h"

using namespace crucible;

namespace {

const Device kGpu = Device::cuda(0);

double median_ms(const std::function<void()>& f, int iters) {
  cudaEvent_t a, b;
  CHECK_CUDA(cudaEventCreate(&a));
  CHECK_CUDA(cudaEventCreate(&b));
  f();  // warm-up
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

// A device tensor of `dtype` filled with uniform [-1, 1) values: a 4M-element random
// block made on the host, tiled over the buffer (fast for multi-GB caches).
Tensor gpu_random(Shape shape, DType dtype, std::uint64_t seed, const char* name) {
  Tensor t(shape, dtype, kGpu, name);
  const std::int64_t n = t.numel(), block = std::min<std::int64_t>(n, 1 << 22);
  Tensor h = gpu_test::uniform_tensor(Shape{block}, seed, name);
  if (dtype == DType::BF16) {
    Tensor b(Shape{block}, DType::BF16);
    for (std::int64_t i = 0; i < block; ++i) b.data<std::uint16_t>()[i] = f32_to_bf16(h.data<float>()[i]);
    h = b;
  }
  const std::size_t el = dtype_size(dtype);
  for (std::int64_t off = 0; off < n; off += block) {
    const std::int64_t len = std::min(block, n - off);
    CHECK_CUDA(cudaMemcpy(static_cast<char*>(t.raw()) + off * el, h.raw(), static_cast<std::size_t>(len) * el,
                          cudaMemcpyHostToDevice));
  }
  return t;
}

Tensor gpu_i32(std::int64_t n, std::int32_t (*value)(std::int64_t, std::int64_t), std::int64_t arg) {
  Tensor h(Shape{n}, DType::I32);
  for (std::int64_t i = 0; i < n; ++i) h.data<std::int32_t>()[i] = value(i, arg);
  return h.to(kGpu);
}

double g_copy_gbs = 0;

void report(const std::string& key, double bytes, double ms) {
  const double gbs = bytes / (ms * 1e-3) / 1e9;
  std::printf("decode %-40s %10.1f %10.0f %10.2f\n", key.c_str(), ms * 1e3, gbs, gbs / g_copy_gbs);
}

}  // namespace

int main() {
  const int iters = 20;
  const std::size_t copy_bytes = std::size_t(1) << 30;
  void *src = nullptr, *dst = nullptr;
  CHECK_CUDA(cudaMalloc(&src, copy_bytes));
  CHECK_CUDA(cudaMalloc(&dst, copy_bytes));
  CHECK_CUDA(cudaMemset(src, 0, copy_bytes));
  const double copy_ms =
      median_ms([&] { CHECK_CUDA(cudaMemcpyAsync(dst, src, copy_bytes, cudaMemcpyDeviceToDevice)); }, iters);
  g_copy_gbs = 2.0 * copy_bytes / (copy_ms * 1e-3) / 1e9;
  cudaFree(src);
  cudaFree(dst);

  std::printf("CUDA decode attention; columns: key, median us, GB/s (cache + q + out), ratio to copy\n");
  report("device-to-device_copy_1GiB", 2.0 * copy_bytes, copy_ms);
  for (const gpu_cases::DecodeBenchCase& c : gpu_cases::kDecodeBenchCases) {
    const std::int64_t B = c.batch, L = c.len, Hq = c.Hq;
    const Tensor slot = gpu_i32(B, [](std::int64_t i, std::int64_t) { return static_cast<std::int32_t>(i); }, 0);
    const Tensor len = gpu_i32(B, [](std::int64_t, std::int64_t l) { return static_cast<std::int32_t>(l); }, L);
    const float scale = c.mla ? 0.0721688f : 1.0f / std::sqrt(static_cast<float>(c.d));
    for (DType dt : {DType::F32, DType::BF16}) {
      const double el = static_cast<double>(dtype_size(dt));
      const std::string key = std::string(c.name) + "_" + std::string(dtype_name(dt));
      if (c.mla) {
        const Tensor ql = gpu_random(Shape{B, Hq, c.d}, DType::F32, 1, "q_lat");
        const Tensor qr = gpu_random(Shape{B, Hq, c.rope}, DType::F32, 2, "q_rope");
        const Tensor ckv = gpu_random(Shape{B, L, c.d}, dt, 3, "ckv"), kpe = gpu_random(Shape{B, L, c.rope}, dt, 4, "kpe");
        Tensor out(Shape{B, Hq, c.d}, DType::F32, kGpu, "out_lat");
        const double bytes = static_cast<double>(B) * L * (c.d + c.rope) * el +
                             4.0 * B * Hq * (c.d + c.rope) + 4.0 * B * Hq * c.d;
        report(key, bytes, median_ms([&] { ops::mla_decode(ql, qr, ckv, kpe, slot, len, L, scale, out); }, iters));
        if (dt == DType::BF16) {  // the mma.sync kernel that Hopper's wgmma kernel replaces, for the ratio
          const cuda::ScopedMlaDecodeKernel pick(cuda::MlaDecodeKernel::MmaSync);
          report(key + "_mma", bytes,
                 median_ms([&] { ops::mla_decode(ql, qr, ckv, kpe, slot, len, L, scale, out); }, iters));
        }
      } else {
        const Tensor q = gpu_random(Shape{B, Hq, c.d}, DType::F32, 5, "q");
        const Tensor k = gpu_random(Shape{B, L, c.Hkv, c.d}, dt, 6, "k"), v = gpu_random(Shape{B, L, c.Hkv, c.d}, dt, 7, "v");
        Tensor out(Shape{B, Hq, c.d}, DType::F32, kGpu, "out");
        const double bytes = 2.0 * B * L * c.Hkv * c.d * el + 8.0 * B * Hq * c.d;
        report(key, bytes, median_ms([&] { ops::gqa_decode(q, k, v, slot, len, L, scale, out); }, iters));
      }
    }
  }
  return 0;
}
