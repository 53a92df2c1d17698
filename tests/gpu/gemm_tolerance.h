// tests/gpu/gemm_tolerance.h: inputs and the dtype- and K-derived error bounds shared by the
// GEMM tests (tests/gpu/test_gemm.cpp, tests/gpu/test_grouped_linear.cpp). The derivation of
// every coefficient is in tests/gpu/test_gemm.cpp's file comment.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <random>
#include <string>

#include "core/error.h"
#include "core/fp8_tensor.h"
#include "core/numerics.h"
#include "kernels/linear.h"
#include "tests/catch.h"

namespace crucible::gemm_test {

using ops::GemmPrecision;

constexpr double kU = 0x1p-24;  // FP32 unit roundoff

inline const char* precision_name(GemmPrecision p) {
  switch (p) {
    case GemmPrecision::Fp32: return "fp32";
    case GemmPrecision::Bf16: return "bf16";
    case GemmPrecision::Fp8: return "fp8";
  }
  return "?";
}

// Normal values times 2^e, e uniform in [-4, 4] per (row, 128-column tile): scales differ
// across tiles and blocks, so a scale applied to the wrong tile changes a term by 2x or more.
inline Tensor random_matrix(std::int64_t rows, std::int64_t cols, std::uint64_t seed, const char* name) {
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
inline Tensor exact_fp8_matrix(std::int64_t rows, std::int64_t cols, std::uint64_t seed, const char* name) {
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

inline Tensor transpose(const Tensor& x) {
  const std::int64_t R = x.dim(0), C = x.dim(1);
  Tensor t(Shape{C, R}, DType::F32, Device::cpu(), x.name() + "^T");
  const float* s = x.data<float>();
  float* d = t.data<float>();
  for (std::int64_t r = 0; r < R; ++r)
    for (std::int64_t c = 0; c < C; ++c) d[c * R + r] = s[r * C + c];
  return t;
}

inline Tensor abs_of(const Tensor& x) {
  Tensor t = x.clone();
  for (float& v : t.span<float>()) v = std::fabs(v);
  return t;
}

// The values precision p multiplies for operand x, tiled along its rows in `layout` (Fp8).
inline Tensor effective(const Tensor& x, GemmPrecision p, ScaleLayout layout) {
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
inline Tensor magnitude_bound(const Tensor& a_eff, const Tensor& b_eff, const Tensor& extra = Tensor()) {
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

inline double coefficient(GemmPrecision p, std::int64_t K, bool exact_fp8) {
  const double L = std::ceil(static_cast<double>(K) / kFp8BlockSize);
  switch (p) {
    case GemmPrecision::Fp32: return 2.0 * (K + 1) * kU;
    case GemmPrecision::Bf16: return 4.0 * (K + 1) * kU;
    case GemmPrecision::Fp8: return exact_fp8 ? 2.0 * (L + 4) * kU : 0x1p-8 + 2.0 * (L + 132) * kU;
  }
  return 0.0;
}

inline int value_class(float v) { return std::isnan(v) ? 0 : std::isinf(v) ? (v > 0 ? 1 : 2) : 3; }

// NaN/Inf positions first, then |gpu - cpu| <= coef * bound on the finite elements.
inline void compare(const Tensor& cpu, const Tensor& gpu_on_host, const Tensor& bound, double coef,
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

inline Tensor on_gpu(const Tensor& t) { return t.to(Device::cuda(0)); }
inline Tensor on_cpu(const Tensor& t) { return t.to(Device::cpu()); }

}  // namespace crucible::gemm_test
