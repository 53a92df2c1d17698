// kernels/cpu/adamw.cpp: CPU AdamW (reference for the CUDA twin) and Σ g^2.
#include <cmath>

#include "core/error.h"
#include "core/numerics.h"
#include "kernels/adamw.h"

namespace crucible::ops {

void adamw_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWStep& s) {
  const std::int64_t n = param.numel();
  CRUCIBLE_CHECK(param.dtype() == DType::F32 && grad.dtype() == DType::F32 && grad.numel() == n &&
                     m.numel() == n && v.numel() == n && m.dtype() == v.dtype() &&
                     (m.dtype() == DType::F32 || m.dtype() == DType::BF16),
                 "adamw_update: param/grad f32 and moments f32|bf16 of one size (", param.name(), ")");
  CRUCIBLE_CHECK(s.step >= 1, "adamw step must be >= 1");
  float* p = param.data<float>();
  const float* g = grad.data<float>();
  const double bc1 = 1.0 - std::pow(static_cast<double>(s.beta1), static_cast<double>(s.step));
  const double bc2 = 1.0 - std::pow(static_cast<double>(s.beta2), static_cast<double>(s.step));
  const float step_size = static_cast<float>(s.lr / bc1);
  const float inv_sqrt_bc2 = static_cast<float>(1.0 / std::sqrt(bc2));
  const float decay = s.lr * s.weight_decay;
  auto update = [&](std::int64_t i, float& mi, float& vi) {
    const float gi = g[i] * s.grad_scale;
    mi = s.beta1 * mi + (1.0f - s.beta1) * gi;
    vi = s.beta2 * vi + (1.0f - s.beta2) * gi * gi;
    p[i] -= step_size * mi / (std::sqrt(vi) * inv_sqrt_bc2 + s.eps) + decay * p[i];
  };
  if (m.dtype() == DType::F32) {
    float* mf = m.data<float>();
    float* vf = v.data<float>();
    for (std::int64_t i = 0; i < n; ++i) update(i, mf[i], vf[i]);
  } else {
    std::uint16_t* mb = m.data<std::uint16_t>();
    std::uint16_t* vb = v.data<std::uint16_t>();
    for (std::int64_t i = 0; i < n; ++i) {
      float mi = bf16_to_f32(mb[i]), vi = bf16_to_f32(vb[i]);
      update(i, mi, vi);
      mb[i] = f32_to_bf16(mi);
      vb[i] = f32_to_bf16(vi);
    }
  }
}

double sum_squares(const Tensor& x) {
  CRUCIBLE_CHECK(x.dtype() == DType::F32, "sum_squares takes f32");
  const float* p = x.data<float>();
  double s = 0;
  for (std::int64_t i = 0; i < x.numel(); ++i) s += static_cast<double>(p[i]) * p[i];
  return s;
}

}  // namespace crucible::ops
