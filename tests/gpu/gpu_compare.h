// tests/gpu/gpu_compare.h: comparisons for GPU-vs-CPU-twin tests that check NaN/Inf
// positions first, then values (random inputs: tests/gpu/gpu_random.h).
//
// Comparisons take the CPU twin's tensor and the GPU's (copied to the host here).
// require_close: the same class (finite, NaN, +Inf, -Inf) at every position, then
// |gpu - cpu| <= tol(i) at every finite one; the worst element is reported.
// require_same_bits: the same NaN positions, then identical bits everywhere else.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>

#include "core/tensor.h"
#include "tests/catch.h"
#include "tests/gpu/gpu_random.h"

namespace crucible::gpu_test {

constexpr double kU = 0x1p-24;  // FP32 unit roundoff: |fl(a op b) - a op b| <= kU |a op b|

enum class FloatClass { Finite, Nan, PosInf, NegInf };

inline FloatClass classify(float v) {
  if (std::isnan(v)) return FloatClass::Nan;
  if (std::isinf(v)) return v > 0 ? FloatClass::PosInf : FloatClass::NegInf;
  return FloatClass::Finite;
}

template <typename Tol>
void require_close(const std::string& what, const Tensor& cpu, const Tensor& gpu, Tol&& tol) {
  INFO(what);
  REQUIRE(cpu.shape() == gpu.shape());
  const Tensor g = on_host(gpu);
  const float* a = cpu.data<float>();
  const float* b = g.data<float>();
  std::int64_t class_mismatch = 0, first_class_mismatch = -1;
  for (std::int64_t i = 0; i < cpu.numel(); ++i)
    if (classify(a[i]) != classify(b[i]) && class_mismatch++ == 0) first_class_mismatch = i;
  INFO("NaN/Inf positions differ at "
       << class_mismatch << " elements, first " << first_class_mismatch
       << (first_class_mismatch >= 0 ? ": cpu " + std::to_string(a[first_class_mismatch]) + " gpu " +
                                           std::to_string(b[first_class_mismatch])
                                     : std::string()));
  REQUIRE(class_mismatch == 0);
  std::int64_t bad = 0, worst = -1;
  double worst_ratio = 0;
  for (std::int64_t i = 0; i < cpu.numel(); ++i) {
    if (classify(a[i]) != FloatClass::Finite) continue;
    const double err = std::fabs(static_cast<double>(a[i]) - b[i]);
    const double t = tol(i);
    if (!(err <= t)) ++bad;
    const double ratio = err == 0 ? 0 : err / std::max(t, std::numeric_limits<double>::min());
    if (ratio > worst_ratio) worst_ratio = ratio, worst = i;
  }
  INFO(bad << " of " << cpu.numel() << " elements out of tolerance; worst err/tol " << worst_ratio
           << (worst >= 0 ? " at " + std::to_string(worst) + ": cpu " + std::to_string(a[worst]) + " gpu " +
                                std::to_string(b[worst]) + " tol " + std::to_string(tol(worst))
                          : std::string()));
  REQUIRE(bad == 0);
}

// Element i's bits of an FP32 (4-byte) or BF16 (2-byte) host buffer.
inline std::uint32_t bits_at(const unsigned char* p, std::size_t elem, std::int64_t i) {
  if (elem == 4) {
    std::uint32_t u;
    std::memcpy(&u, p + 4 * i, 4);
    return u;
  }
  std::uint16_t h;
  std::memcpy(&h, p + 2 * i, 2);
  return h;
}
inline bool is_nan_bits(std::uint32_t u, std::size_t elem) {
  return elem == 4 ? (u & 0x7FFFFFFFu) > 0x7F800000u : (u & 0x7FFFu) > 0x7F80u;
}

// Same NaN positions, then the same bits at every other position (FP32 or BF16).
// NaN payloads and signs are not compared: x86 and CUDA make different default NaNs.
inline void require_same_bits(const std::string& what, const Tensor& cpu, const Tensor& gpu) {
  INFO(what);
  REQUIRE(cpu.shape() == gpu.shape());
  REQUIRE(cpu.dtype() == gpu.dtype());
  REQUIRE((cpu.dtype() == DType::F32 || cpu.dtype() == DType::BF16));
  REQUIRE(cpu.device().is_cpu());
  const Tensor g = on_host(gpu);
  const std::size_t elem = dtype_size(cpu.dtype());
  const auto* a = static_cast<const unsigned char*>(cpu.raw());
  const auto* b = static_cast<const unsigned char*>(g.raw());
  std::int64_t nan_mismatch = 0, bit_mismatch = 0, first = -1;
  for (std::int64_t i = 0; i < cpu.numel(); ++i) {
    const std::uint32_t x = bits_at(a, elem, i), y = bits_at(b, elem, i);
    const bool nx = is_nan_bits(x, elem), ny = is_nan_bits(y, elem);
    const bool nan_differs = nx != ny, bits_differ = !nx && !ny && x != y;
    nan_mismatch += nan_differs;
    bit_mismatch += bits_differ;
    if ((nan_differs || bits_differ) && first < 0) first = i;
  }
  INFO("NaN positions differ at " << nan_mismatch << ", bits at " << bit_mismatch << " elements; first at "
                                  << first << " (cpu bits 0x" << std::hex
                                  << (first >= 0 ? bits_at(a, elem, first) : 0) << ", gpu 0x"
                                  << (first >= 0 ? bits_at(b, elem, first) : 0) << std::dec << ")");
  REQUIRE(nan_mismatch == 0);
  REQUIRE(bit_mismatch == 0);
}

}  // namespace crucible::gpu_test
