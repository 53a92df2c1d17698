// GPU vs CPU twin: grouped_linear_forward / grouped_linear_backward (kernels/grouped_linear.h)
// in Fp32, Bf16 and Fp8 on fresh random inputs, for the CUDA op (Fp8 and Bf16: the grouped
// GEMMs, kernels/cuda/grouped_linear_fp8.cu and grouped_linear_bf16.cu; Fp32: the per-group
// cuBLASLt loop) and for the per-group cuBLASLt loop in Fp8 and Bf16 (the benchmark's
// baseline); the pair ops (gate and up) against two single ops, bit for bit.
//
// Shapes: small odd ones (partial 128-tiles along M, N and K, K % 16 != 0, single rows, 32
// groups) and DeepSeek-V3 expert shapes (gate/up 7168 -> 2048, down 2048 -> 7168) with 8 groups
// of uneven row counts, including empty groups and counts that are not multiples of 128.
// Weights are non-adjacent views into one arena, as in the model.
//
// Checks per group, as tests/gpu/test_gemm.cpp (tolerances derived there, from dtype and the
// reduction length: K for Fprop, N for Dgrad, the group's row count for Wgrad): NaN/Inf
// positions first, then |gpu - cpu| <= coef * (|A_eff| |B_eff|^T (+ |dw0|)). Fp8 runs twice:
// in the exact regime (inputs built per group so that every tile and block has a power-of-two
// scale and exact block partials: a wrong index, scale or fragment fails by orders of
// magnitude) and on random data (bounds the tensor-core accumulation). Outputs written with
// = are poisoned with NaN first (every element must be written); dw of empty groups must
// keep its bits.
#include <cuda_runtime.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "core/device_memory.h"
#include "core/stream.h"
#include "kernels/cuda/grouped_linear_cuda.h"
#include "kernels/grouped_linear.h"
#include "kernels/tensor_ops.h"
#include "tests/catch.h"
#include "tests/gpu/gemm_tolerance.h"
#include "tests/gpu/gpu_random.h"

using namespace crucible;
using namespace crucible::gemm_test;
using ops::GemmPrecision;

namespace {

struct GroupedCase {
  std::int64_t K, N;  // y = x W^T: x [M, K], W_g [N, K]
  std::vector<std::int64_t> rows;
};

enum class Impl { Op, Loop };

// Rows of all groups stacked; each group's block generated on its own (the exact regime's
// blocks then start at the group's first row, where Wgrad's token tiles start).
Tensor stacked(const std::vector<std::int64_t>& rows, std::int64_t cols, bool exact, std::uint64_t seed,
               const char* name) {
  std::int64_t M = 0;
  for (std::int64_t r : rows) M += r;
  Tensor t(Shape{M, cols}, DType::F32, Device::cpu(), name);
  std::int64_t r0 = 0;
  for (std::size_t g = 0; g < rows.size(); ++g) {
    if (rows[g] == 0) continue;
    const Tensor b = exact ? exact_fp8_matrix(rows[g], cols, seed + 7 * g, name)
                           : random_matrix(rows[g], cols, seed + 7 * g, name);
    std::memcpy(t.slice(r0, r0 + rows[g]).raw(), b.raw(), b.nbytes());
    r0 += rows[g];
  }
  return t;
}

Tensor contiguous(const Tensor& view) { return view.clone(); }

void check_grouped(const GroupedCase& c, GemmPrecision p, bool exact, Impl impl, std::uint64_t seed,
                   const Stream& stream) {
  const std::int64_t G = static_cast<std::int64_t>(c.rows.size()), K = c.K, N = c.N;
  std::vector<std::int64_t> offsets{0};
  for (std::int64_t r : c.rows) offsets.push_back(offsets.back() + r);
  const std::int64_t M = offsets.back();
  char label[160];
  std::snprintf(label, sizeof(label), "%s %s%s K=%lld N=%lld G=%lld M=%lld", impl == Impl::Op ? "op" : "loop",
                precision_name(p), p == GemmPrecision::Fp8 ? (exact ? " exact" : " random") : "",
                static_cast<long long>(K), static_cast<long long>(N), static_cast<long long>(G),
                static_cast<long long>(M));
  INFO(label);

  const Tensor x = stacked(c.rows, K, exact, seed, "x");    // [M, K]
  const Tensor dy = stacked(c.rows, N, exact, seed + 1, "dy");  // [M, N]
  // Weights: views into one arena, 5 rows apart.
  std::vector<std::int64_t> arena_rows;
  for (std::int64_t g = 0; g < G; ++g) arena_rows.insert(arena_rows.end(), {N, 5});
  const Tensor arena = stacked(arena_rows, K, exact, seed + 2, "w");
  const Tensor arena_gpu = arena.to(Device::cuda(0));
  std::vector<Tensor> w, w_gpu, dw_cpu, dw_gpu, dw0;
  for (std::int64_t g = 0; g < G; ++g) {
    w.push_back(arena.slice(g * (N + 5), g * (N + 5) + N));
    w_gpu.push_back(arena_gpu.slice(g * (N + 5), g * (N + 5) + N));
    dw0.push_back(random_matrix(N, K, seed + 100 + g, "dw"));
    dw_cpu.push_back(dw0.back().clone());
    dw_gpu.push_back(dw0.back().to(Device::cuda(0)));
  }

  // CPU twin.
  Tensor y_cpu(Shape{M, N}, DType::F32, Device::cpu(), "y"), dx_cpu(Shape{M, K}, DType::F32, Device::cpu(), "dx");
  ops::grouped_linear_forward(x, w, offsets, y_cpu, p);
  ops::grouped_linear_backward(dy, x, w, offsets, dx_cpu, dw_cpu, p);

  // GPU, outputs poisoned.
  const Tensor x_gpu = x.to(Device::cuda(0)), dy_gpu = dy.to(Device::cuda(0));
  Tensor y_gpu = gpu_test::nan_tensor(Shape{M, N}, "y").to(Device::cuda(0));
  Tensor dx_gpu = gpu_test::nan_tensor(Shape{M, K}, "dx").to(Device::cuda(0));
  REQUIRE(cudaDeviceSynchronize() == cudaSuccess);  // uploads ran on the legacy stream
  if (impl == Impl::Op) {
    ops::grouped_linear_forward(x_gpu, w_gpu, offsets, y_gpu, p, stream, ops::GroupedImpl::OneLaunch);
    ops::grouped_linear_backward(dy_gpu, x_gpu, w_gpu, offsets, dx_gpu, dw_gpu, p, stream,
                                 ops::GroupedImpl::OneLaunch);
  } else {
    cuda::grouped_linear_forward_loop(x_gpu, w_gpu, offsets, y_gpu, p, stream);
    cuda::grouped_linear_backward_loop(dy_gpu, x_gpu, w_gpu, offsets, dx_gpu, dw_gpu, p, stream);
  }
  stream.synchronize();
  REQUIRE(cudaGetLastError() == cudaSuccess);
  const Tensor y_back = on_cpu(y_gpu), dx_back = on_cpu(dx_gpu);

  for (std::int64_t g = 0; g < G; ++g) {
    const std::int64_t r0 = offsets[g], r1 = offsets[g + 1], n = r1 - r0;
    const std::string gl = std::string(label) + " group " + std::to_string(g) + " rows " + std::to_string(n);
    const Tensor dw_back = on_cpu(dw_gpu[g]);
    if (n == 0) {
      INFO(gl);
      REQUIRE(std::memcmp(dw_back.raw(), dw0[g].raw(), dw0[g].nbytes()) == 0);  // untouched
      continue;
    }
    const Tensor xg = contiguous(x.slice(r0, r1)), dyg = contiguous(dy.slice(r0, r1)), wg = contiguous(w[g]);
    compare(contiguous(y_cpu.slice(r0, r1)), contiguous(y_back.slice(r0, r1)),
            magnitude_bound(effective(xg, p, ScaleLayout::Tile1x128), effective(wg, p, ScaleLayout::Block128x128)),
            coefficient(p, K, exact), "fprop y " + gl);
    compare(contiguous(dx_cpu.slice(r0, r1)), contiguous(dx_back.slice(r0, r1)),
            magnitude_bound(effective(dyg, p, ScaleLayout::Tile1x128),
                            effective(transpose(wg), p, ScaleLayout::Block128x128)),
            coefficient(p, N, exact), "dgrad dx " + gl);
    compare(dw_cpu[g], dw_back,
            magnitude_bound(effective(transpose(dyg), p, ScaleLayout::Tile1x128),
                            effective(transpose(xg), p, ScaleLayout::Tile1x128), dw0[g]),
            coefficient(p, n, exact), "wgrad dw " + gl);
  }
}

void run_cases(const std::vector<GroupedCase>& cases, std::uint64_t seed, const Stream& stream, bool with_loop) {
  for (const GroupedCase& c : cases) {
    check_grouped(c, GemmPrecision::Fp8, true, Impl::Op, seed += 1000, stream);
    check_grouped(c, GemmPrecision::Fp8, false, Impl::Op, seed += 1000, stream);
    check_grouped(c, GemmPrecision::Fp32, false, Impl::Op, seed += 1000, stream);
    check_grouped(c, GemmPrecision::Bf16, false, Impl::Op, seed += 1000, stream);
    if (with_loop) check_grouped(c, GemmPrecision::Fp8, true, Impl::Loop, seed += 1000, stream);
    if (with_loop) check_grouped(c, GemmPrecision::Bf16, false, Impl::Loop, seed += 1000, stream);
  }
}

}  // namespace

TEST_CASE("grouped_linear: CUDA matches the CPU twin at small odd shapes", "[gpu][grouped_linear]") {
  REQUIRE(cuda_device_count() > 0);
  std::vector<std::int64_t> many;  // 32 groups, 0..77 rows each
  for (int g = 0; g < 32; ++g) many.push_back((g * 37) % 78);
  const std::vector<GroupedCase> cases = {
      {300, 130, {5, 0, 131, 1, 0}},  // partial tiles, K % 16 != 0, empty groups mid and end
      {1, 1, {1, 0, 2}},              // tiny
      {128, 256, {0, 128, 256}},      // aligned, empty first group
      {130, 257, {300, 7}},           // Wgrad with several token blocks, odd N
      {512, 384, many},               // 32 groups
      {576, 200, {0, 0, 64, 0}},      // all but one empty
  };
  run_cases(cases, 1, Stream(), true);
}

TEST_CASE("grouped_linear: CUDA matches the CPU twin at DeepSeek-V3 expert shapes", "[gpu][grouped_linear]") {
  REQUIRE(cuda_device_count() > 0);
  // 8 local experts with uneven loads (0, non-multiples of 128, one > 256).
  const std::vector<std::int64_t> rows{0, 37, 128, 300, 1, 0, 255, 129};
  const std::vector<GroupedCase> cases = {{7168, 2048, rows}, {2048, 7168, rows}};
  run_cases(cases, 77, Stream::create(Device::cuda(0)), false);
}

TEST_CASE("grouped_linear: NaN and Inf land where the CPU twin puts them", "[gpu][grouped_linear]") {
  REQUIRE(cuda_device_count() > 0);
  const std::int64_t K = 300, N = 24;
  const std::vector<std::int64_t> offsets{0, 3, 3, 9};
  for (GemmPrecision p : {GemmPrecision::Fp32, GemmPrecision::Bf16, GemmPrecision::Fp8}) {
    Tensor x = random_matrix(9, K, 11, "x");
    x.data<float>()[1 * K + 5] = std::numeric_limits<float>::quiet_NaN();
    x.data<float>()[4 * K + 7] = std::numeric_limits<float>::infinity();  // fp8: saturates
    x.data<float>()[6 * K + 200] = -std::numeric_limits<float>::infinity();
    const std::vector<Tensor> w{random_matrix(N, K, 12, "w0"), random_matrix(N, K, 13, "w1"),
                                random_matrix(N, K, 14, "w2")};
    std::vector<Tensor> w_gpu;
    for (const Tensor& t : w) w_gpu.push_back(on_gpu(t));
    Tensor y_cpu(Shape{9, N}, DType::F32, Device::cpu(), "y");
    ops::grouped_linear_forward(x, w, offsets, y_cpu, p);
    Tensor y_gpu = on_gpu(gpu_test::nan_tensor(Shape{9, N}, "y"));
    ops::grouped_linear_forward(on_gpu(x), w_gpu, offsets, y_gpu, p, Stream(), ops::GroupedImpl::OneLaunch);
    REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
    const Tensor y_back = on_cpu(y_gpu);
    for (int g = 0; g < 3; ++g) {
      if (offsets[g] == offsets[g + 1]) continue;
      const Tensor xg = x.slice(offsets[g], offsets[g + 1]).clone();
      compare(y_cpu.slice(offsets[g], offsets[g + 1]).clone(), y_back.slice(offsets[g], offsets[g + 1]).clone(),
              magnitude_bound(effective(xg, p, ScaleLayout::Tile1x128),
                              effective(w[g], p, ScaleLayout::Block128x128)),
              coefficient(p, K, false), std::string("grouped specials ") + precision_name(p));
    }
  }
}

TEST_CASE("grouped_linear_pair: the gate/up pair ops give the single ops' bits", "[gpu][grouped_linear][grouped_pair]") {
  REQUIRE(cuda_device_count() > 0);
  const std::int64_t K = 300, N1 = 130, N2 = 64;  // the lists differ in N
  const std::vector<std::int64_t> offsets{0, 5, 5, 136, 137, 300};
  const std::int64_t M = offsets.back(), G = 5;
  const Tensor x = on_gpu(random_matrix(M, K, 31, "x"));
  const Tensor dy1 = on_gpu(random_matrix(M, N1, 32, "dy1")), dy2 = on_gpu(random_matrix(M, N2, 33, "dy2"));
  std::vector<Tensor> w1, w2;
  for (std::int64_t g = 0; g < G; ++g) {
    w1.push_back(on_gpu(random_matrix(N1, K, 40 + g, "w1")));
    w2.push_back(on_gpu(random_matrix(N2, K, 50 + g, "w2")));
  }
  auto grads = [&](std::int64_t N, std::uint64_t seed) {
    std::vector<Tensor> dw;
    for (std::int64_t g = 0; g < G; ++g) dw.push_back(on_gpu(random_matrix(N, K, seed + g, "dw")));
    return dw;
  };
  auto same = [](const Tensor& a, const Tensor& b, const std::string& what) {
    const Tensor ha = on_cpu(a), hb = on_cpu(b);
    INFO(what);
    REQUIRE(std::memcmp(ha.raw(), hb.raw(), ha.nbytes()) == 0);
  };
  for (GemmPrecision p : {GemmPrecision::Fp8, GemmPrecision::Bf16}) {
    for (bool with_dx : {true, false}) {
      const std::string name = std::string(precision_name(p)) + (with_dx ? " with dx" : " without dx");
      const auto impl = ops::GroupedImpl::OneLaunch;
      Tensor y1(Shape{M, N1}, DType::F32, Device::cuda(0), "y1"), y2(Shape{M, N2}, DType::F32, Device::cuda(0), "y2");
      ops::grouped_linear_forward(x, w1, offsets, y1, p, Stream(), impl);
      ops::grouped_linear_forward(x, w2, offsets, y2, p, Stream(), impl);
      Tensor dx = with_dx ? on_gpu(gpu_test::nan_tensor(Shape{M, K}, "dx")) : Tensor();
      Tensor dx2 = with_dx ? on_gpu(gpu_test::nan_tensor(Shape{M, K}, "dx2")) : Tensor();
      std::vector<Tensor> dw1 = grads(N1, 60), dw2 = grads(N2, 70);
      ops::grouped_linear_backward(dy1, x, w1, offsets, dx, dw1, p, Stream(), impl);
      ops::grouped_linear_backward(dy2, x, w2, offsets, dx2, dw2, p, Stream(), impl);
      if (with_dx) ops::axpy(1.0f, dx2, dx);

      Tensor p1 = on_gpu(gpu_test::nan_tensor(Shape{M, N1}, "p1")), p2 = on_gpu(gpu_test::nan_tensor(Shape{M, N2}, "p2"));
      ops::grouped_linear_pair_forward(x, w1, w2, offsets, p1, p2, p, Stream(), impl);
      Tensor pdx = with_dx ? on_gpu(gpu_test::nan_tensor(Shape{M, K}, "pdx")) : Tensor();
      std::vector<Tensor> pdw1 = grads(N1, 60), pdw2 = grads(N2, 70);
      ops::grouped_linear_pair_backward(dy1, dy2, x, w1, w2, offsets, pdx, pdw1, pdw2, p, Stream(), impl);
      REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
      same(y1, p1, name + " y1");
      same(y2, p2, name + " y2");
      if (with_dx) same(dx, pdx, name + " dx");
      for (std::int64_t g = 0; g < G; ++g) {
        same(dw1[g], pdw1[g], name + " dw1 group " + std::to_string(g));
        same(dw2[g], pdw2[g], name + " dw2 group " + std::to_string(g));
      }
    }
  }
}
