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
#include "tests/catch.h"

using namespace crucible;
using ops::GemmPrecision;

namespace {

constexpr double kU = 0x1p-24;  // FP32 unit roundoff

const char* precision_name(GemmPrecision p) {
  switch (p) {
    case GemmPrecision::Fp32: return "fp32";
    case GemmPrecision::Bf16: return "bf16";
    case GemmPrecision::Fp8: return "fp8";
  }
  return "?";
}

// Normal values times 2^e, e uniform in [-4, 4] per (row, 128-column tile): scales differ
// across tiles and blocks, so a scale applied to the wrong tile changes a term by 2x or more.
Tensor random_matrix(std::int64_t rows, std::int64_t cols, std::uint64_t seed, const char* name) {
  Tensor t(Shape{rows, cols}, DType::F32, Device::cpu(), name);
  std::mt19937_64 gen(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int> octave(-4, 4);
  float* p = t.data<float>();
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c0 = 0; c0 < cols; c0 += kFp8BlockSize) {
      const float g = std::ldexp(1.0f, octave(gen));
      for (std::int64_t c = c0; c < std::min(cols, c0 + kFp8BlockSize); ++c)
        p[r * cols + c] = g * normal(gen);
    }
  return t;
}

// The FP8 exact regime: values g * n, n an integer in [-7, 7], g = 2^e with e uniform in
// [-6, 6] per 128x128 block, and every row and every column of every (possibly partial)
// block holding a +-7. So every 1x128 tile along rows or columns and every 128x128 block has
// amax 7g, scale 7g / 448 = g / 64 (a power of two) and codes 64 n (exact in E4M3); code
// products are 4096 n_a n_b and a block's partial sum is 4096 * (an integer of magnitude
// <= 128 * 49 = 6272 < 2^13).
Tensor exact_fp8_matrix(std::int64_t rows, std::int64_t cols, std::uint64_t seed, const char* name) {
  Tensor t(Shape{rows, cols}, DType::F32, Device::cpu(), name);
  std::mt19937_64 gen(seed);
  std::uniform_int_distribution<int> digit(-7, 7), octave(-6, 6), sign(0, 1);
  float* p = t.data<float>();
  for (std::int64_t r0 = 0; r0 < rows; r0 += kFp8BlockSize)
    for (std::int64_t c0 = 0; c0 < cols; c0 += kFp8BlockSize) {
      const std::int64_t R = std::min(kFp8BlockSize, rows - r0), C = std::min(kFp8BlockSize, cols - c0);
      const float g = std::ldexp(1.0f, octave(gen));
      auto at = [&](std::int64_t r, std::int64_t c) -> float& { return p[(r0 + r) * cols + c0 + c]; };
      for (std::int64_t r = 0; r < R; ++r)
        for (std::int64_t c = 0; c < C; ++c) at(r, c) = g * static_cast<float>(digit(gen));
      for (std::int64_t r = 0; r < R; ++r) at(r, r % C) = g * (sign(gen) ? 7.0f : -7.0f);
      for (std::int64_t c = 0; c < C; ++c) at(c % R, c) = g * (sign(gen) ? 7.0f : -7.0f);
    }
  return t;
}

Tensor transpose(const Tensor& x) {
  const std::int64_t R = x.dim(0), C = x.dim(1);
  Tensor t(Shape{C, R}, DType::F32, Device::cpu(), x.name() + "^T");
  const float* s = x.data<float>();
  float* d = t.data<float>();
  for (std::int64_t r = 0; r < R; ++r)
    for (std::int64_t c = 0; c < C; ++c) d[c * R + r] = s[r * C + c];
  return t;
}

Tensor abs_of(const Tensor& x) {
  Tensor t = x.clone();
  for (float& v : t.span<float>()) v = std::fabs(v);
  return t;
}

// The values precision p multiplies for operand x, tiled along its rows in `layout` (Fp8).
Tensor effective(const Tensor& x, GemmPrecision p, ScaleLayout layout) {
  switch (p) {
    case GemmPrecision::Fp32: return x;
    case GemmPrecision::Bf16: {
      Tensor t = x.clone();
      for (float& v : t.span<float>()) v = bf16_to_f32(f32_to_bf16(v));
      return t;
    }
    case GemmPrecision::Fp8: return dequantize_fp8(quantize_fp8(x, layout));
  }
  CRUCIBLE_FAIL("effective: unknown precision");
}

// B = |A_eff| |B_eff|^T (+ |extra|, a [M, N] tensor or a [N] row broadcast), on the CPU.
Tensor magnitude_bound(const Tensor& a_eff, const Tensor& b_eff, const Tensor& extra = Tensor()) {
  Tensor s(Shape{a_eff.dim(0), b_eff.dim(0)}, DType::F32, Device::cpu(), "bound");
  ops::gemm_nt(abs_of(a_eff), abs_of(b_eff), s, 0.0f, GemmPrecision::Fp32);
  if (extra.defined()) {
    float* sp = s.data<float>();
    const float* e = extra.data<float>();
    const std::int64_t N = s.dim(1);
    for (std::int64_t i = 0; i < s.numel(); ++i) sp[i] += std::fabs(e[extra.rank() == 1 ? i % N : i]);
  }
  return s;
}

double coefficient(GemmPrecision p, std::int64_t K, bool exact_fp8) {
  const double L = std::ceil(static_cast<double>(K) / kFp8BlockSize);
  switch (p) {
    case GemmPrecision::Fp32: return 2.0 * (K + 1) * kU;
    case GemmPrecision::Bf16: return 4.0 * (K + 1) * kU;
    case GemmPrecision::Fp8: return exact_fp8 ? 2.0 * (L + 4) * kU : 0x1p-8 + 2.0 * (L + 132) * kU;
  }
  return 0.0;
}

int value_class(float v) { return std::isnan(v) ? 0 : std::isinf(v) ? (v > 0 ? 1 : 2) : 3; }

// NaN/Inf positions first, then |gpu - cpu| <= coef * bound on the finite elements.
void compare(const Tensor& cpu, const Tensor& gpu_on_host, const Tensor& bound, double coef,
             const std::string& what) {
  INFO(what);
  REQUIRE(cpu.shape() == gpu_on_host.shape());
  const float* a = cpu.data<float>();
  const float* b = gpu_on_host.data<float>();
  const float* s = bound.data<float>();
  std::int64_t class_mismatch = 0, first_class_mismatch = -1;
  for (std::int64_t i = 0; i < cpu.numel(); ++i)
    if (value_class(a[i]) != value_class(b[i]) || (std::isinf(a[i]) && a[i] != b[i])) {
      if (first_class_mismatch < 0) first_class_mismatch = i;
      ++class_mismatch;
    }
  INFO("first NaN/Inf mismatch at flat index " << first_class_mismatch);
  REQUIRE(class_mismatch == 0);
  std::int64_t over = 0, worst_i = -1;
  double worst = 0.0;
  for (std::int64_t i = 0; i < cpu.numel(); ++i) {
    if (value_class(a[i]) != 3) continue;
    const double err = std::fabs(static_cast<double>(a[i]) - b[i]);
    const double tol = coef * s[i] + 1e-30;
    if (err > tol) ++over;
    if (err / tol > worst) worst = err / tol, worst_i = i;
  }
  std::printf("  %-58s max err/tol %.3g\n", what.c_str(), worst);
  INFO("worst at flat index " << worst_i << ": cpu " << (worst_i >= 0 ? a[worst_i] : 0.0f) << " gpu "
                              << (worst_i >= 0 ? b[worst_i] : 0.0f) << " tol "
                              << (worst_i >= 0 ? coef * s[worst_i] : 0.0) << " (err/tol " << worst << ")");
  REQUIRE(over == 0);
}

Tensor on_gpu(const Tensor& t) { return t.to(Device::cuda(0)); }
Tensor on_cpu(const Tensor& t) { return t.to(Device::cpu()); }

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
