// GPU vs CPU twin: gemm_nt, linear_forward and linear_backward (kernels/linear.h) in Fp32,
// Bf16 and Fp8, on fresh random inputs at small odd shapes (every FP8 padding path) and at
// DeepSeek-V3 shapes (256 tokens; 7168->2048, 2048->7168, q_a 7168->1536, kv_a 7168->576).
//
// Every comparison checks NaN/Inf positions first (same class: NaN, +inf, -inf or finite),
// then |gpu - cpu| <= coef * B elementwise, with B = S + |C0| (+ |bias|), S = |A_eff| |B_eff|^T
// the sum of the magnitudes of the products both sides add (A_eff: the operand values the
// precision actually multiplies: as-is, BF16-rounded, or FP8-dequantized), C0 the
// accumulated-into C. coef, from dtype and K (Higham, "Accuracy and Stability of Numerical
// Algorithms" §3.1: a sum of K terms in any order is within gamma_K ~ K u of the exact sum,
// relative to the sum of magnitudes; u = 2^-24):
//   Fp32  2 (K + 1) u. Both sides add the same exact-input products (K of them, + C0) in
//         different orders, each within (K + 1) u * B of the exact sum.
//   Bf16  4 (K + 1) u. The operands are rounded identically (RNE) on both sides and their
//         products are exact in FP32, so this is again an FP32 ordering bound; doubled
//         because tensor-core FP32 accumulation may truncate instead of rounding (Fasi et
//         al., "Numerical behavior of NVIDIA tensor cores", 2021).
//   Fp8, exact regime  2 (L + 4) u, L = ceil(K / 128). The codes and scales are identical on
//         both sides (the GPU quantizer is bit-exact, tests/gpu/test_fp8_quantize.cpp). The
//         inputs are built so that every 128-block partial sum of code products is an integer
//         multiple of 4096 below 2^25 (13 significant bits), exact in FP32 and in any
//         tensor-core accumulator that keeps the ~14 bits DeepSeek-V3 §3.3.2 reports; the
//         scales are powers of two, so each promoted block term is exact too. What remains
//         is the order of the L-term FP32 promotion sum: any scale in the wrong place, a
//         wrong transpose or wrong padding fails this by orders of magnitude.
//   Fp8, random data  2^-8 + 2 (L + 132) u. Same codes and scales, but cuBLASLt sums each
//         128-block partial inside the tensor core, whose FP8 accumulation keeps only about
//         14 bits (DeepSeek-V3 §3.3.2): a truncation of up to 2^-13 of the largest magnitude
//         in flight per addition; with a few such per k32 MMA step and four steps per block,
//         2^-8 of the magnitude sum is a generous bound on what random data reaches: a model
//         of that accumulator (per k32 step, the accumulator and the 32 products aligned to
//         the largest exponent and truncated to 14 significant bits) gives max err / S =
//         2^-12.8 on this test's data at K = 7168, and 2^-10.7 with only 12 bits. The CPU's
//         FP32 block partial (<= 128 u) and both promotion sums (<= (L + 2) u each) add the
//         rest. This check bounds the numerics; the exact regime above checks the layouts.
// dbias is compared bit for bit (same FP32 order on both sides).
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>

#include "core/device_memory.h"
#include "core/error.h"
#include "core/fp8_tensor.h"
#include "core/numerics.h"
#include "core/stream.h"
#include "kernels/linear.h"
#include "kernels/tensor_ops.h"
#include "tests/catch.h"
#include "tests/gpu/gemm_tolerance.h"

using namespace crucible;
using namespace crucible::gemm_test;
using ops::GemmPrecision;

namespace {

struct GemmCase {
  std::int64_t M, N, K;
  float beta;
};

// One gemm_nt comparison: fresh inputs, CPU vs GPU on `stream`.
void check_gemm(const GemmCase& g, GemmPrecision p, bool exact_fp8, std::uint64_t seed,
                const Stream& stream) {
  const Tensor a = exact_fp8 ? exact_fp8_matrix(g.M, g.K, seed, "a") : random_matrix(g.M, g.K, seed, "a");
  const Tensor b =
      exact_fp8 ? exact_fp8_matrix(g.N, g.K, seed + 1, "b") : random_matrix(g.N, g.K, seed + 1, "b");
  const Tensor c0 = random_matrix(g.M, g.N, seed + 2, "c");
  Tensor c_cpu = c0.clone();
  ops::gemm_nt(a, b, c_cpu, g.beta, p);
  Tensor c_gpu = on_gpu(c0);
  const Tensor a_gpu = on_gpu(a), b_gpu = on_gpu(b);
  // The uploads ran on the legacy default stream; a non-blocking stream does not wait for
  // them (a pageable upload may still be in flight when cudaMemcpy returns).
  REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
  ops::gemm_nt(a_gpu, b_gpu, c_gpu, g.beta, p, stream);
  stream.synchronize();
  const Tensor bound =
      magnitude_bound(effective(a, p, ScaleLayout::Tile1x128), effective(b, p, ScaleLayout::Block128x128),
                      g.beta != 0.0f ? c0 : Tensor());
  char what[160];
  std::snprintf(what, sizeof(what), "gemm_nt %s%s M=%lld N=%lld K=%lld beta=%g", precision_name(p),
                p == GemmPrecision::Fp8 ? (exact_fp8 ? " exact" : " random") : "",
                static_cast<long long>(g.M), static_cast<long long>(g.N), static_cast<long long>(g.K),
                g.beta);
  compare(c_cpu, on_cpu(c_gpu), bound, coefficient(p, g.K, exact_fp8), what);
}

}  // namespace

TEST_CASE("gemm_nt: CUDA matches the CPU twin at small odd shapes", "[gpu][gemm]") {
  REQUIRE(cuda_device_count() > 0);
  // Every FP8 padding path: K below, at and above a 128-block, K % 16 != 0, M and N % 4 != 0.
  const GemmCase cases[] = {{1, 1, 1, 0.0f},       {5, 7, 3, 1.0f},      {33, 130, 300, 0.0f},
                            {257, 129, 130, 1.0f}, {3, 300, 576, 0.0f},  {64, 96, 128, 1.0f},
                            {130, 4, 1000, 0.0f},  {128, 256, 512, 1.0f}};
  std::uint64_t seed = 100;
  const Stream stream;  // the legacy default stream
  for (const GemmCase& g : cases) {
    check_gemm(g, GemmPrecision::Fp32, false, seed += 10, stream);
    check_gemm(g, GemmPrecision::Bf16, false, seed += 10, stream);
    check_gemm(g, GemmPrecision::Fp8, true, seed += 10, stream);
    check_gemm(g, GemmPrecision::Fp8, false, seed += 10, stream);
  }
}

TEST_CASE("gemm_nt: CUDA matches the CPU twin at DeepSeek-V3 shapes", "[gpu][gemm]") {
  REQUIRE(cuda_device_count() > 0);
  // 256 tokens; expert gate/up 7168->2048, expert down 2048->7168, q_a 7168->1536,
  // kv_a 7168->576 (y = x W^T: K = in, N = out).
  const GemmCase cases[] = {
      {256, 2048, 7168, 0.0f}, {256, 7168, 2048, 1.0f}, {256, 1536, 7168, 0.0f}, {256, 576, 7168, 1.0f}};
  std::uint64_t seed = 1000;
  const Stream stream = Stream::create(Device::cuda(0));  // a non-default stream
  for (const GemmCase& g : cases) {
    check_gemm(g, GemmPrecision::Fp32, false, seed += 10, stream);
    check_gemm(g, GemmPrecision::Bf16, false, seed += 10, stream);
    check_gemm(g, GemmPrecision::Fp8, true, seed += 10, stream);
    check_gemm(g, GemmPrecision::Fp8, false, seed += 10, stream);
  }
}

TEST_CASE("gemm_nt: NaN and Inf land where the CPU twin puts them", "[gpu][gemm]") {
  REQUIRE(cuda_device_count() > 0);
  const std::int64_t M = 8, N = 12, K = 300;
  for (GemmPrecision p : {GemmPrecision::Fp32, GemmPrecision::Bf16, GemmPrecision::Fp8}) {
    Tensor a = random_matrix(M, K, 7, "a");
    const Tensor b = random_matrix(N, K, 8, "b");
    a.data<float>()[1 * K + 5] = std::numeric_limits<float>::quiet_NaN();  // row 1 -> NaN
    a.data<float>()[2 * K + 7] = std::numeric_limits<float>::infinity();   // row 2 -> +-inf (fp8: saturates)
    a.data<float>()[3 * K + 200] = -std::numeric_limits<float>::infinity();
    Tensor c_cpu(Shape{M, N}, DType::F32, Device::cpu(), "c");
    ops::gemm_nt(a, b, c_cpu, 0.0f, p);
    Tensor c_gpu = on_gpu(c_cpu);
    ops::gemm_nt(on_gpu(a), on_gpu(b), c_gpu, 0.0f, p);
    // The bound of rows with an infinite input is infinite; only their class is compared.
    const Tensor bound =
        magnitude_bound(effective(a, p, ScaleLayout::Tile1x128), effective(b, p, ScaleLayout::Block128x128));
    compare(c_cpu, on_cpu(c_gpu), bound, coefficient(p, K, false),
            std::string("gemm_nt specials ") + precision_name(p));
  }
}

TEST_CASE("gemm_nt on CUDA: bad calls fail with a clear message", "[gpu][gemm]") {
  REQUIRE(cuda_device_count() > 0);
  const Tensor a = on_gpu(random_matrix(4, 16, 1, "a"));
  const Tensor b_cpu = random_matrix(8, 16, 2, "b");
  Tensor c = on_gpu(random_matrix(4, 8, 3, "c"));
  REQUIRE_THROWS_WITH(ops::gemm_nt(a, b_cpu, c, 0.0f, GemmPrecision::Fp32),
                      Catch::Contains("move all operands to one device"));
  REQUIRE_THROWS_WITH(ops::gemm_nt(a, on_gpu(b_cpu), c, 0.5f, GemmPrecision::Fp32),
                      Catch::Contains("beta must be 0 or 1"));
}

TEST_CASE("linear_forward / linear_backward: CUDA matches the CPU twin", "[gpu][gemm][linear]") {
  REQUIRE(cuda_device_count() > 0);
  struct Case {
    std::int64_t T, in, out;
  };
  // Odd (every padding path), small aligned, kv_a (Dgrad K = 576), expert gate/up.
  const Case cases[] = {{5, 300, 130}, {64, 512, 384}, {256, 7168, 576}, {256, 7168, 2048}};
  std::uint64_t seed = 5000;
  for (GemmPrecision p : {GemmPrecision::Fp32, GemmPrecision::Bf16, GemmPrecision::Fp8}) {
    const bool exact = p == GemmPrecision::Fp8;  // FP8 in the exact regime (see the file comment)
    for (const Case& c : cases) {
      seed += 10;
      auto input = [&](std::int64_t r, std::int64_t cols, std::uint64_t s, const char* name) {
        return exact ? exact_fp8_matrix(r, cols, s, name) : random_matrix(r, cols, s, name);
      };
      const Tensor x = input(c.T, c.in, seed, "x");         // [T, in]
      const Tensor w = input(c.out, c.in, seed + 1, "w");   // [out, in]
      const Tensor dy = input(c.T, c.out, seed + 2, "dy");  // [T, out]
      const Tensor bias = random_matrix(1, c.out, seed + 3, "bias").reshape(Shape{c.out});
      const Tensor dw0 = random_matrix(c.out, c.in, seed + 4, "dw");
      const Tensor db0 = random_matrix(1, c.out, seed + 5, "dbias").reshape(Shape{c.out});
      char shape[96];
      std::snprintf(shape, sizeof(shape), " %s T=%lld in=%lld out=%lld", precision_name(p),
                    static_cast<long long>(c.T), static_cast<long long>(c.in), static_cast<long long>(c.out));

      // Fprop with bias.
      Tensor y_cpu(Shape{c.T, c.out}, DType::F32, Device::cpu(), "y");
      ops::linear_forward(x, w, bias, y_cpu, p);
      Tensor y_gpu(Shape{c.T, c.out}, DType::F32, Device::cuda(0), "y");
      ops::linear_forward(on_gpu(x), on_gpu(w), on_gpu(bias), y_gpu, p);
      compare(y_cpu, on_cpu(y_gpu),
              magnitude_bound(effective(x, p, ScaleLayout::Tile1x128),
                              effective(w, p, ScaleLayout::Block128x128), bias),
              coefficient(p, c.in, exact), std::string("fprop y") + shape);

      // Dgrad (=), Wgrad (+=), dbias (+=).
      Tensor dx_cpu(Shape{c.T, c.in}, DType::F32, Device::cpu(), "dx");
      Tensor dw_cpu = dw0.clone(), db_cpu = db0.clone();
      ops::linear_backward(dy, x, w, dx_cpu, dw_cpu, db_cpu, p);
      Tensor dx_gpu(Shape{c.T, c.in}, DType::F32, Device::cuda(0), "dx");
      Tensor dw_gpu = on_gpu(dw0), db_gpu = on_gpu(db0);
      ops::linear_backward(on_gpu(dy), on_gpu(x), on_gpu(w), dx_gpu, dw_gpu, db_gpu, p);
      // Dgrad multiplies dy (1x128 tiles along out) by W^T in 128x128 blocks: K = out.
      compare(dx_cpu, on_cpu(dx_gpu),
              magnitude_bound(effective(dy, p, ScaleLayout::Tile1x128),
                              effective(transpose(w), p, ScaleLayout::Block128x128)),
              coefficient(p, c.out, exact), std::string("dgrad dx") + shape);
      // Wgrad multiplies dy^T by x^T, both in 1x128 tiles along tokens: K = T.
      compare(dw_cpu, on_cpu(dw_gpu),
              magnitude_bound(effective(transpose(dy), p, ScaleLayout::Tile1x128),
                              effective(transpose(x), p, ScaleLayout::Tile1x128), dw0),
              coefficient(p, c.T, exact), std::string("wgrad dw") + shape);
      const Tensor db_back = on_cpu(db_gpu);
      INFO(std::string("dbias") + shape);
      REQUIRE(std::memcmp(db_cpu.data<float>(), db_back.data<float>(), db_cpu.nbytes()) == 0);
    }
  }
}

// The pair ops (MLA's q_a + kv_a, a SwiGLU's gate + up) on CUDA give the bits of the single
// CUDA ops: y1, y2 of two linear_forward calls; dx of linear_backward twice plus ops::axpy
// (the second Dgrad's epilogue add is that FP32 add); dw1, dw2 accumulated alike; dx
// undefined skips Dgrad. Fresh random inputs; the single ops are held to the CPU above.
TEST_CASE("linear_pair: CUDA pair ops give the single ops' bits", "[gpu][gemm][linear][linear_pair]") {
  REQUIRE(cuda_device_count() > 0);
  struct Case {
    std::int64_t T, in, o1, o2;
  };
  // Odd (every FP8 padding path), the V3 q_a + kv_a (Dgrad K = 576), the h100 teacher's gate + up.
  const Case cases[] = {{5, 300, 130, 70}, {256, 7168, 1536, 576}, {512, 1024, 2816, 2816}};
  auto same_bits = [](const Tensor& a, const Tensor& b, const std::string& what) {
    const Tensor ca = on_cpu(a), cb = on_cpu(b);
    INFO(what);
    REQUIRE(ca.nbytes() == cb.nbytes());
    CHECK(std::memcmp(ca.raw(), cb.raw(), ca.nbytes()) == 0);
  };
  std::uint64_t seed = 9100;
  for (GemmPrecision p : {GemmPrecision::Fp32, GemmPrecision::Bf16, GemmPrecision::Fp8}) {
    for (const Case& c : cases) {
      seed += 10;
      const Tensor x = on_gpu(random_matrix(c.T, c.in, seed, "x"));
      const Tensor w1 = on_gpu(random_matrix(c.o1, c.in, seed + 1, "w1")), w2 = on_gpu(random_matrix(c.o2, c.in, seed + 2, "w2"));
      const Tensor dy1 = on_gpu(random_matrix(c.T, c.o1, seed + 3, "dy1")), dy2 = on_gpu(random_matrix(c.T, c.o2, seed + 4, "dy2"));
      const Tensor dw10 = random_matrix(c.o1, c.in, seed + 5, "dw1"), dw20 = random_matrix(c.o2, c.in, seed + 6, "dw2");
      char shape[96];
      std::snprintf(shape, sizeof(shape), " %s T=%lld in=%lld o1=%lld o2=%lld", precision_name(p),
                    static_cast<long long>(c.T), static_cast<long long>(c.in), static_cast<long long>(c.o1),
                    static_cast<long long>(c.o2));
      const Device g = Device::cuda(0);
      Tensor none;

      Tensor y1(Shape{c.T, c.o1}, DType::F32, g), y2(Shape{c.T, c.o2}, DType::F32, g);
      Tensor r1(Shape{c.T, c.o1}, DType::F32, g), r2(Shape{c.T, c.o2}, DType::F32, g);
      ops::linear_pair_forward(x, w1, w2, y1, y2, p);
      ops::linear_forward(x, w1, none, r1, p);
      ops::linear_forward(x, w2, none, r2, p);
      same_bits(y1, r1, std::string("pair y1") + shape);
      same_bits(y2, r2, std::string("pair y2") + shape);

      for (bool with_dx : {true, false}) {
        Tensor dx = with_dx ? Tensor(Shape{c.T, c.in}, DType::F32, g) : Tensor();
        Tensor dw1 = on_gpu(dw10), dw2 = on_gpu(dw20);
        ops::linear_pair_backward(dy1, dy2, x, w1, w2, dx, dw1, dw2, p);
        Tensor rdx = with_dx ? Tensor(Shape{c.T, c.in}, DType::F32, g) : Tensor();
        Tensor rdx2 = with_dx ? Tensor(Shape{c.T, c.in}, DType::F32, g) : Tensor();
        Tensor rdw1 = on_gpu(dw10), rdw2 = on_gpu(dw20);
        ops::linear_backward(dy1, x, w1, rdx, rdw1, none, p);
        ops::linear_backward(dy2, x, w2, rdx2, rdw2, none, p);
        const std::string tag = std::string(with_dx ? " with dx" : " without dx") + shape;
        if (with_dx) {
          ops::axpy(1.0f, rdx2, rdx);
          same_bits(dx, rdx, "pair dx" + tag);
        }
        same_bits(dw1, rdw1, "pair dw1" + tag);
        same_bits(dw2, rdw2, "pair dw2" + tag);
      }
    }
  }
}
