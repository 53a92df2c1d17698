// ops::WeightCacheScope on CUDA (kernels/linear.h, kernels/cuda/weight_cache.h): inside a
// scope, linear_forward / linear_backward and the grouped linear ops (the loop and the one
// launch, Bf16 and Fp8) give the same bits as without one, and each weight's GEMM form is
// made once: the first use of a form misses, every later use hits; the outermost scope's end
// releases them all. The one launch's weight groups (weight_fp8_group, weight_bf16_group)
// hold every weight's bits of the per-weight forms.
#include <cuda_runtime.h>

#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "core/device_memory.h"
#include "kernels/cuda/weight_cache.h"
#include "kernels/grouped_linear.h"
#include "kernels/linear.h"
#include "tests/catch.h"
#include "tests/gpu/gpu_random.h"

using namespace crucible;
using ops::GemmPrecision;

namespace {

Tensor gpu(const Tensor& t) { return t.to(Device::cuda(0)); }

void require_same_bits(const Tensor& a_gpu, const Tensor& b_gpu, const std::string& what) {
  const Tensor a = a_gpu.to(Device::cpu()), b = b_gpu.to(Device::cpu());
  INFO(what);
  REQUIRE(a.nbytes() == b.nbytes());
  REQUIRE(std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0);
}

struct LinearOut {
  Tensor y, dx, dw;
};

LinearOut run_linear(const Tensor& x, const Tensor& w, const Tensor& dy, const Tensor& dw0, GemmPrecision p) {
  LinearOut o{Tensor(Shape{x.dim(0), w.dim(0)}, DType::F32, Device::cuda(0), "y"),
              Tensor(x.shape(), DType::F32, Device::cuda(0), "dx"), dw0.clone()};
  ops::linear_forward(x, w, Tensor(), o.y, p);
  Tensor none;
  ops::linear_backward(dy, x, w, o.dx, o.dw, none, p);
  return o;
}

}  // namespace

TEST_CASE("WeightCacheScope: linear ops give the same bits, each weight form is made once", "[gpu][weight_cache]") {
  REQUIRE(cuda_device_count() > 0);
  struct Case {
    std::int64_t T, in, out;
  };
  const Case cases[] = {{5, 300, 130}, {64, 512, 384}};  // FP8 padding on every side; aligned
  std::uint64_t seed = 700;
  for (GemmPrecision p : {GemmPrecision::Bf16, GemmPrecision::Fp8}) {
    for (const Case& c : cases) {
      seed += 10;
      const Tensor x = gpu(gpu_test::uniform_tensor(Shape{c.T, c.in}, seed, "x"));
      const Tensor w = gpu(gpu_test::uniform_tensor(Shape{c.out, c.in}, seed + 1, "w"));
      const Tensor dy = gpu(gpu_test::uniform_tensor(Shape{c.T, c.out}, seed + 2, "dy"));
      const Tensor dw0 = gpu(gpu_test::uniform_tensor(Shape{c.out, c.in}, seed + 3, "dw0"));
      const std::string what = std::string(p == GemmPrecision::Fp8 ? "fp8" : "bf16") + " T=" + std::to_string(c.T) +
                               " in=" + std::to_string(c.in) + " out=" + std::to_string(c.out);
      REQUIRE_FALSE(ops::weight_cache_active());
      const LinearOut fresh = run_linear(x, w, dy, dw0, p);
      REQUIRE(cuda::weight_cache_stats().misses == 0);  // no scope: nothing cached
      {
        const ops::WeightCacheScope scope;
        REQUIRE(ops::weight_cache_active());
        const LinearOut first = run_linear(x, w, dy, dw0, p);
        // Bf16: one copy of W serves Fprop and Dgrad. Fp8: W's blocks (Fprop), W^T's (Dgrad).
        const std::int64_t forms = p == GemmPrecision::Fp8 ? 2 : 1;
        CHECK(cuda::weight_cache_stats().misses == forms);
        CHECK(cuda::weight_cache_stats().hits == 2 - forms);
        {
          const ops::WeightCacheScope nested;  // an inner scope shares the outer one's cache
          const LinearOut second = run_linear(x, w, dy, dw0, p);
          require_same_bits(fresh.y, second.y, "y, second call in the scope, " + what);
          require_same_bits(fresh.dx, second.dx, "dx, second call in the scope, " + what);
          require_same_bits(fresh.dw, second.dw, "dw, second call in the scope, " + what);
        }
        CHECK(cuda::weight_cache_stats().misses == forms);  // still cached after the inner scope
        CHECK(cuda::weight_cache_stats().hits == 4 - forms);
        require_same_bits(fresh.y, first.y, "y, first call in the scope, " + what);
        require_same_bits(fresh.dx, first.dx, "dx, first call in the scope, " + what);
        require_same_bits(fresh.dw, first.dw, "dw, first call in the scope, " + what);
      }
      REQUIRE_FALSE(ops::weight_cache_active());
      CHECK(cuda::weight_cache_stats().misses == 0);  // released with the outermost scope
      CHECK(cuda::weight_cache_stats().bytes == 0);
    }
  }
}

TEST_CASE("WeightCacheScope: grouped linear ops give the same bits with and without a scope", "[gpu][weight_cache]") {
  REQUIRE(cuda_device_count() > 0);
  const std::vector<std::int64_t> rows{5, 0, 7, 12};  // an empty group: no entry in the loops
  std::vector<std::int64_t> offsets{0};
  for (std::int64_t r : rows) offsets.push_back(offsets.back() + r);
  const std::int64_t M = offsets.back(), K = 300, N = 130, G = static_cast<std::int64_t>(rows.size());
  const Tensor x = gpu(gpu_test::uniform_tensor(Shape{M, K}, 11, "x"));
  const Tensor dy = gpu(gpu_test::uniform_tensor(Shape{M, N}, 12, "dy"));
  const Tensor arena = gpu(gpu_test::uniform_tensor(Shape{G * N, K}, 13, "w"));
  std::vector<Tensor> w;
  for (std::int64_t g = 0; g < G; ++g) w.push_back(arena.slice(g * N, (g + 1) * N));
  const std::int64_t used = 3;  // groups with rows

  struct Run {
    GemmPrecision p;
    ops::GroupedImpl impl;
    const char* name;
    std::int64_t forms;    // weight forms per group
    std::int64_t counted;  // groups whose weights are looked up: the used ones, or (one
                           // launch quantizes the whole list) all of them
  };
  const Run runs[] = {{GemmPrecision::Bf16, ops::GroupedImpl::Loop, "bf16 loop", 1, used},
                      {GemmPrecision::Fp8, ops::GroupedImpl::Loop, "fp8 loop", 2, used},
                      {GemmPrecision::Bf16, ops::GroupedImpl::OneLaunch, "bf16 one launch", 2, G},
                      {GemmPrecision::Fp8, ops::GroupedImpl::OneLaunch, "fp8 one launch", 2, G}};
  for (const Run& r : runs) {
    auto run = [&] {
      Tensor y(Shape{M, N}, DType::F32, Device::cuda(0), "y"), dx(Shape{M, K}, DType::F32, Device::cuda(0), "dx");
      std::vector<Tensor> dw;
      for (std::int64_t g = 0; g < G; ++g) dw.push_back(gpu(gpu_test::uniform_tensor(Shape{N, K}, 20 + g, "dw")));
      ops::grouped_linear_forward(x, w, offsets, y, r.p, Stream(), r.impl);
      ops::grouped_linear_backward(dy, x, w, offsets, dx, dw, r.p, Stream(), r.impl);
      std::vector<Tensor> out{y, dx};
      out.insert(out.end(), dw.begin(), dw.end());
      return out;
    };
    const std::vector<Tensor> fresh = run();
    const ops::WeightCacheScope scope;
    for (int pass = 0; pass < 2; ++pass) {
      const std::vector<Tensor> cached = run();
      for (std::size_t i = 0; i < fresh.size(); ++i)
        require_same_bits(fresh[i], cached[i],
                          std::string(r.name) + " pass " + std::to_string(pass) + " output " + std::to_string(i));
      CHECK(cuda::weight_cache_stats().misses == r.counted * r.forms);
      CHECK(cuda::weight_cache_stats().hits == (pass + 1) * 2 * r.counted - r.counted * r.forms);
    }
  }
}

TEST_CASE("weight_fp8_group: one launch gives every weight's weight_fp8 bits, W and W^T", "[gpu][weight_cache]") {
  REQUIRE(cuda_device_count() > 0);
  REQUIRE_FALSE(ops::weight_cache_active());
  struct Case {
    std::int64_t rows, cols;
  };
  const Case cases[] = {{130, 300}, {512, 1024}, {7, 16}};  // padding on every side; aligned; one block
  std::uint64_t seed = 900;
  for (const Case& c : cases) {
    const std::int64_t G = 3;
    Tensor host = gpu_test::uniform_tensor(Shape{G * c.rows, c.cols}, ++seed, "w");
    host.data<float>()[5] = std::numeric_limits<float>::infinity();  // skipped by the amax, saturates
    host.data<float>()[c.cols + 1] = std::numeric_limits<float>::quiet_NaN();
    const Tensor arena = gpu(host);
    std::vector<Tensor> w;
    for (std::int64_t g = 0; g < G; ++g) w.push_back(arena.slice(g * c.rows, (g + 1) * c.rows));
    for (bool transposed : {false, true}) {
      const std::int64_t R = transposed ? c.cols : c.rows, C = transposed ? c.rows : c.cols;
      const std::int64_t rows_p = (R + 3) / 4 * 4, k_p = (C + 15) / 16 * 16;
      cuda::Fp8WeightGroup group;
      const cuda::Fp8WeightGroup& wq = cuda::weight_fp8_group(w, transposed, rows_p, k_p, group, nullptr);
      for (std::int64_t g = 0; g < G; ++g) {
        cuda::Fp8GemmInput one;
        const cuda::Fp8GemmInput& ref = cuda::weight_fp8(w[g], transposed, rows_p, k_p, one, nullptr);
        const std::size_t code_bytes = static_cast<std::size_t>(rows_p * k_p);
        const std::size_t scale_bytes = static_cast<std::size_t>(wq.Rp() * wq.L4()) * sizeof(float);
        std::vector<unsigned char> a(code_bytes), b(code_bytes), sa(scale_bytes), sb(scale_bytes);
        REQUIRE(cudaMemcpy(a.data(), wq.codes(g), code_bytes, cudaMemcpyDeviceToHost) == cudaSuccess);
        REQUIRE(cudaMemcpy(b.data(), ref.q.get(), code_bytes, cudaMemcpyDeviceToHost) == cudaSuccess);
        REQUIRE(cudaMemcpy(sa.data(), wq.scales(g), scale_bytes, cudaMemcpyDeviceToHost) == cudaSuccess);
        REQUIRE(cudaMemcpy(sb.data(), ref.scale.get(), scale_bytes, cudaMemcpyDeviceToHost) == cudaSuccess);
        INFO("rows " << c.rows << " cols " << c.cols << (transposed ? " W^T" : " W") << " weight " << g);
        CHECK(a == b);
        CHECK(sa == sb);
      }
    }
  }
}

TEST_CASE("weight_bf16_group: one launch gives every weight's BF16 bits, W and W^T, zero-padded",
          "[gpu][weight_cache]") {
  REQUIRE(cuda_device_count() > 0);
  REQUIRE_FALSE(ops::weight_cache_active());
  const std::int64_t G = 3, rows = 37, cols = 300;
  Tensor host = gpu_test::uniform_tensor(Shape{G * rows, cols}, 950, "w");
  host.data<float>()[7] = std::numeric_limits<float>::quiet_NaN();
  host.data<float>()[cols + 3] = -std::numeric_limits<float>::infinity();
  const Tensor arena = gpu(host);
  std::vector<Tensor> w;
  for (std::int64_t g = 0; g < G; ++g) w.push_back(arena.slice(g * rows, (g + 1) * rows));
  for (bool transposed : {false, true}) {
    const std::int64_t R = transposed ? cols : rows, C = transposed ? rows : cols, ld = (C + 7) / 8 * 8 + 8;
    cuda::DeviceScratch local;
    const std::uint16_t* got = cuda::weight_bf16_group(w, transposed, ld, local, nullptr);
    std::vector<std::uint16_t> all(static_cast<std::size_t>(G * R * ld));
    REQUIRE(cudaMemcpy(all.data(), got, all.size() * 2, cudaMemcpyDeviceToHost) == cudaSuccess);
    for (std::int64_t g = 0; g < G; ++g) {
      cuda::DeviceScratch one;
      const std::uint16_t* ref_dev = cuda::weight_bf16(w[g], one, nullptr);  // W_g's BF16 copy [rows, cols]
      std::vector<std::uint16_t> ref(static_cast<std::size_t>(rows * cols));
      REQUIRE(cudaMemcpy(ref.data(), ref_dev, ref.size() * 2, cudaMemcpyDeviceToHost) == cudaSuccess);
      std::int64_t wrong = 0;
      for (std::int64_t r = 0; r < R; ++r)
        for (std::int64_t c = 0; c < ld; ++c) {
          const std::uint16_t want = c >= C ? 0 : transposed ? ref[c * cols + r] : ref[r * cols + c];
          wrong += all[static_cast<std::size_t>((g * R + r) * ld + c)] != want;
        }
      INFO((transposed ? "W^T" : "W") << " weight " << g);
      CHECK(wrong == 0);
    }
  }
}
