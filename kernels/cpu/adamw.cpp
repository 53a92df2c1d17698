// kernels/cpu/adamw.cpp: CPU AdamW (reference for the CUDA twin) and Σ g^2.
#include <cmath>

#include "core/numerics.h"
#include "kernels/cpu/adamw_cpu.h"

namespace crucible::cpu {

void adamw_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const ops::AdamWScalars& k) {
  const std::int64_t n = param.numel();
  float* p = param.data<float>();
  const float* g = grad.data<float>();
  auto update = [&](std::int64_t i, float& mi, float& vi) {
    const float gi = g[i] * k.grad_scale;
    mi = k.beta1 * mi + k.one_minus_beta1 * gi;
    vi = k.beta2 * vi + k.one_minus_beta2 * gi * gi;
    p[i] -= k.step_size * mi / (std::sqrt(vi) * k.inv_sqrt_bc2 + k.eps) + k.decay * p[i];
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
  const float* p = x.data<float>();
  double s = 0;
  for (std::int64_t i = 0; i < x.numel(); ++i) s += static_cast<double>(p[i]) * p[i];
  return s;
}

}  // namespace crucible::cpu
