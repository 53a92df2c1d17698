// kernels/fp8_quantize.cpp: device dispatch for FP8 quantization (see the header).
#include "kernels/fp8_quantize.h"

#include "core/error.h"
#ifdef CRUCIBLE_WITH_CUDA
#include "kernels/cuda/fp8_quantize_cuda.h"
#endif

namespace crucible::ops {

Fp8Tensor quantize_fp8(const Tensor& x, ScaleLayout layout, Fp8Options opts, const Stream& stream) {
  if (x.device().is_cpu()) return crucible::quantize_fp8(x, layout, opts);
#ifdef CRUCIBLE_WITH_CUDA
  CRUCIBLE_CHECK(x.dtype() == DType::F32, "quantize_fp8 takes f32, got ", dtype_name(x.dtype()));
  CRUCIBLE_CHECK(x.rank() >= 1, "quantize_fp8 of a scalar");
  CRUCIBLE_CHECK(opts.format == DType::E4M3 || opts.format == DType::E5M2, "quantize_fp8 format ",
                 dtype_name(opts.format), " is not an 8-bit float");
  const std::int64_t cols = x.dim(-1);
  const std::int64_t rows = cols == 0 ? 0 : x.numel() / cols;
  Fp8Tensor out;
  out.layout = layout;
  out.q = Tensor(Shape{rows, cols}, opts.format, x.device(), x.name() + ".q");
  out.scale = Tensor(fp8_scale_shape(rows, cols, layout), DType::F32, x.device(), x.name() + ".scale");
  cuda::quantize_fp8(static_cast<const float*>(x.raw()), static_cast<std::uint8_t*>(out.q.raw()),
                     static_cast<float*>(out.scale.raw()), rows, cols, layout, opts,
                     stream.handle());
  return out;
#else
  CRUCIBLE_FAIL("quantize_fp8 on ", x.device().str(), " needs a CUDA build");
#endif
}

Tensor dequantize_fp8(const Fp8Tensor& x, const Stream& stream) {
  if (x.q.device().is_cpu()) return crucible::dequantize_fp8(x);
#ifdef CRUCIBLE_WITH_CUDA
  Tensor out(x.q.shape(), DType::F32, x.q.device(), x.q.name() + ".deq");
  cuda::dequantize_fp8(static_cast<const std::uint8_t*>(x.q.raw()),
                       static_cast<const float*>(x.scale.raw()), static_cast<float*>(out.raw()),
                       x.rows(), x.cols(), x.layout, x.format(), stream.handle());
  return out;
#else
  CRUCIBLE_FAIL("dequantize_fp8 on ", x.q.device().str(), " needs a CUDA build");
#endif
}

}  // namespace crucible::ops
