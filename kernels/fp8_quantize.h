// kernels/fp8_quantize.h: block-scaled FP8 quantization as a device-dispatched op.
//
// ops::quantize_fp8 / ops::dequantize_fp8 run on the tensor's device: the CPU
// reference is core/fp8_tensor.cpp; the CUDA twin (kernels/cuda/fp8_quantize.cu)
// produces the same codes and scales bit for bit (tests/gpu/test_fp8_quantize.cpp).
// Layouts, scale convention and special values: see core/fp8_tensor.h.
#pragma once

#include "core/fp8_tensor.h"
#include "core/stream.h"

namespace crucible::ops {

// x: FP32 [.., cols] on the CPU or a CUDA device; the result lives on x's device.
Fp8Tensor quantize_fp8(const Tensor& x, ScaleLayout layout, Fp8Options opts = {},
                       const Stream& stream = Stream());
// Back to FP32 on x's device.
Tensor dequantize_fp8(const Fp8Tensor& x, const Stream& stream = Stream());

}  // namespace crucible::ops
