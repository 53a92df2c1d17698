// tests/gpu/gpu_random.h: fast, reproducible random CPU tensors for the GPU tests and
// benchmarks (std::normal_distribution is too slow for the 926M-element embedding
// table of DeepSeek-V3).
#pragma once

#include <cstdint>
#include <limits>

#include "core/tensor.h"

namespace crucible::gpu_test {

// splitmix64 (Steele, Lea, Flood 2014).
struct SplitMix {
  std::uint64_t s;
  std::uint64_t next() {
    std::uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  float uniform(float lo, float hi) {  // [lo, hi)
    return lo + (hi - lo) * static_cast<float>(next() >> 40) * 0x1p-24f;
  }
  std::int64_t below(std::int64_t n) {
    return static_cast<std::int64_t>(next() % static_cast<std::uint64_t>(n));
  }
};

// FP32 CPU tensor, uniform in [lo, hi).
inline Tensor uniform_tensor(Shape shape, std::uint64_t seed, const char* name, float lo = -1.0f,
                             float hi = 1.0f) {
  Tensor t(shape, DType::F32, Device::cpu(), name);
  SplitMix rng{seed};
  for (float& v : t.span<float>()) v = rng.uniform(lo, hi);
  return t;
}

// FP32 CPU tensor of NaNs: a GPU output pre-filled with it proves the op writes (=).
inline Tensor nan_tensor(Shape shape, const char* name) {
  Tensor t(shape, DType::F32, Device::cpu(), name);
  for (float& v : t.span<float>()) v = std::numeric_limits<float>::quiet_NaN();
  return t;
}

}  // namespace crucible::gpu_test
