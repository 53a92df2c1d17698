// tests/model/grad_check.h: finite-difference checks shared by the model tests.
#pragma once

#include <cmath>
#include <limits>
#include <functional>
#include <random>
#include <vector>

#include "core/tensor.h"
#include "tests/worst.h"

namespace crucible::testing {

// Central differences of a scalar loss over `samples` random elements of `x`,
// compared with the analytic gradient `g`. Returns the worst error
// |fd - g| / max(|fd|, |g|, floor_frac * max|g|): tiny gradient entries are judged
// against the tensor's scale, where FP32 noise of the loss would dominate. A loss
// that returns NaN marks a perturbation that crossed a discontinuity (an MoE
// routing flip); that element is skipped and another drawn.
inline double fd_check(Tensor x, const Tensor& g, const std::function<double()>& loss, int samples,
                       std::uint64_t seed, double h = 1e-2, double floor_frac = 1e-2) {
  std::mt19937_64 gen(seed);
  float* xs = x.data<float>();
  const float* gs = g.data<float>();
  double gmax = 0;
  for (std::int64_t i = 0; i < g.numel(); ++i) {
    if (!std::isfinite(gs[i])) return std::numeric_limits<double>::infinity();  // std::max would drop a NaN
    gmax = std::max(gmax, std::abs(static_cast<double>(gs[i])));
  }
  double worst = 0;
  int done = 0;
  for (int tries = 0; done < samples && tries < 20 * samples; ++tries) {
    const std::int64_t i = static_cast<std::int64_t>(gen() % static_cast<std::uint64_t>(x.numel()));
    const float orig = xs[i];
    const double step = h * std::max(1.0, std::abs(static_cast<double>(orig)));
    const float xp = static_cast<float>(orig + step), xm = static_cast<float>(orig - step);
    xs[i] = xp;
    const double up = loss();
    xs[i] = xm;
    const double down = loss();
    xs[i] = orig;
    if (std::isnan(up) || std::isnan(down)) continue;
    const double fd = (up - down) / (static_cast<double>(xp) - static_cast<double>(xm));
    const double err = std::abs(fd - gs[i]) /
                       std::max({std::abs(fd), std::abs(static_cast<double>(gs[i])), floor_frac * gmax, 1e-12});
    worst = testing::worst_of(worst, err);
    ++done;
  }
  return done == samples ? worst : 1e9;  // too many discontinuities: fail loudly
}

inline Tensor random_tensor(Shape shape, std::uint64_t seed, float scale = 1.0f) {
  Tensor t(shape, DType::F32);
  std::mt19937_64 gen(seed);
  std::normal_distribution<float> nd(0.0f, scale);
  for (float& v : t.span<float>()) v = nd(gen);
  return t;
}

// Σ r ⊙ y in double (the scalar loss of block checks).
inline double weighted_sum(const Tensor& y, const Tensor& r) {
  double s = 0;
  for (std::int64_t i = 0; i < y.numel(); ++i) s += static_cast<double>(y.data<float>()[i]) * r.data<float>()[i];
  return s;
}

}  // namespace crucible::testing
