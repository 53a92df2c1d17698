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

#include "core/stream.h"
#include "core/tensor.h"

namespace crucible::ops {

struct AdamWStep {
  float lr = 1e-3f;
  float beta1 = 0.9f, beta2 = 0.95f, eps = 1e-8f;
  float weight_decay = 0.0f;
  float grad_scale = 1.0f;
  std::int64_t step = 1;  // 1-based, for bias correction
};

// param, grad: FP32 [n]; m, v: FP32 or BF16 [n] (same dtype); all on one device. In
// place. On a CUDA device it runs on `stream`, asynchronously, and gives the CPU's
// bits (tests/gpu/test_adamw.cpp).
void adamw_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWStep& s,
                  const Stream& stream = Stream());

// Σ g^2 over a FP32 tensor in double (for the global gradient norm). On a CUDA
// device it waits for `stream` to return the value; the sum's order is fixed by
// numel alone (deterministic), not the CPU's.
double sum_squares(const Tensor& x, const Stream& stream = Stream());

// The per-step scalars of the update, computed once on the host (bias corrections
// in double, then rounded to float), so that the CPU and CUDA twins see the same
// floats. Every product in the update is one of these times a value.
struct AdamWScalars {
  float beta1, beta2;
  float one_minus_beta1, one_minus_beta2;  // 1 - beta in float, as the formula reads
  float eps, grad_scale;
  float step_size;     // lr / (1 - beta1^t)
  float inv_sqrt_bc2;  // 1 / sqrt(1 - beta2^t)
  float decay;         // lr * weight_decay
};
AdamWScalars adamw_scalars(const AdamWStep& s);

}  // namespace crucible::ops
