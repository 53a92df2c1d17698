// kernels/adamw.cpp: validation and device dispatch of AdamW and Σ x^2 (see the
// header); the CPU reference is kernels/cpu/adamw.cpp, the CUDA twin
// kernels/cuda/adamw.cu.
#include "kernels/adamw.h"

#include <cmath>

#include "core/error.h"
#include "kernels/cpu/adamw_cpu.h"
#ifdef CRUCIBLE_WITH_CUDA
#include "kernels/cuda/adamw_cuda.h"
#endif

namespace crucible::ops {

AdamWScalars adamw_scalars(const AdamWStep& s) {
  CRUCIBLE_CHECK(s.step >= 1, "adamw step must be >= 1");
  const double bc1 = 1.0 - std::pow(static_cast<double>(s.beta1), static_cast<double>(s.step));
  const double bc2 = 1.0 - std::pow(static_cast<double>(s.beta2), static_cast<double>(s.step));
  AdamWScalars k;
  k.beta1 = s.beta1;
  k.beta2 = s.beta2;
  k.one_minus_beta1 = 1.0f - s.beta1;
  k.one_minus_beta2 = 1.0f - s.beta2;
  k.eps = s.eps;
  k.grad_scale = s.grad_scale;
  k.step_size = static_cast<float>(s.lr / bc1);
  k.inv_sqrt_bc2 = static_cast<float>(1.0 / std::sqrt(bc2));
  k.decay = s.lr * s.weight_decay;
  return k;
}

void adamw_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWStep& s,
                  const Stream& stream) {
  const std::int64_t n = param.numel();
  CRUCIBLE_CHECK(param.dtype() == DType::F32 && grad.dtype() == DType::F32 && grad.numel() == n &&
                     m.numel() == n && v.numel() == n && m.dtype() == v.dtype() &&
                     (m.dtype() == DType::F32 || m.dtype() == DType::BF16),
                 "adamw_update: param/grad f32 and moments f32|bf16 of one size (", param.name(), ")");
  const Device dev = param.device();
  CRUCIBLE_CHECK(grad.device() == dev && m.device() == dev && v.device() == dev, "adamw_update: param '",
                 param.name(), "' on ", dev.str(), " but grad, m, v on ", grad.device().str(), ", ",
                 m.device().str(), ", ", v.device().str(), ": all must share one device");
  const AdamWScalars k = adamw_scalars(s);
  if (dev.is_cpu()) return cpu::adamw_update(param, grad, m, v, k);
#ifdef CRUCIBLE_WITH_CUDA
  auto* p = static_cast<float*>(param.raw());
  const auto* g = static_cast<const float*>(grad.raw());
  if (m.dtype() == DType::F32)
    cuda::adamw_update_f32(p, g, static_cast<float*>(m.raw()), static_cast<float*>(v.raw()), n, k,
                           stream.handle());
  else
    cuda::adamw_update_bf16(p, g, static_cast<std::uint16_t*>(m.raw()), static_cast<std::uint16_t*>(v.raw()),
                            n, k, stream.handle());
#else
  CRUCIBLE_FAIL("adamw_update on ", dev.str(), " needs a CUDA build");
#endif
}

double sum_squares(const Tensor& x, const Stream& stream) {
  CRUCIBLE_CHECK(x.dtype() == DType::F32, "sum_squares takes f32");
  if (x.device().is_cpu()) return cpu::sum_squares(x);
#ifdef CRUCIBLE_WITH_CUDA
  return cuda::sum_squares(static_cast<const float*>(x.raw()), x.numel(), stream.handle());
#else
  CRUCIBLE_FAIL("sum_squares on ", x.device().str(), " needs a CUDA build");
#endif
}

}  // namespace crucible::ops
