// kernels/adamw.h: the AdamW update on a contiguous run of a flat buffer.
//
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
//   p -= lr * ( m / (1 - b1^t) / (sqrt(v / (1 - b2^t)) + eps) + wd * p )
// (decoupled weight decay, Loshchilov & Hutter). Parameters and gradients are FP32;
// the moments are FP32 or BF16 (DeepSeek-V3 keeps them in BF16), rounded to nearest
// even after each update. `grad_scale` multiplies g first (global-norm clipping and
// loss normalization fold into it).
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace crucible::ops {

struct AdamWStep {
  float lr = 1e-3f;
  float beta1 = 0.9f, beta2 = 0.95f, eps = 1e-8f;
  float weight_decay = 0.0f;
  float grad_scale = 1.0f;
  std::int64_t step = 1;  // 1-based, for bias correction
};

// param, grad: FP32 [n]; m, v: FP32 or BF16 [n] (same dtype). In place.
void adamw_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWStep& s);

// Σ g^2 over a FP32 tensor in double (for the global gradient norm).
double sum_squares(const Tensor& x);

}  // namespace crucible::ops
