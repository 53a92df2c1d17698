// kernels/kd_head.h: logit knowledge distillation through two LM heads.
//
// Per token t, with student logits zs = hs Ws^T and teacher logits zt = ht Wt^T over one
// vocabulary V, and temperature tau:
//   loss[t] = tau^2 * KL(softmax(zt / tau) || softmax(zs / tau))
//           = tau^2 * sum_v pt(v) (log pt(v) - log ps(v))
// (Hinton et al. 2015: the tau^2 keeps the gradient's scale independent of tau.)
//   d loss[t] / d zs[t, v] = tau * (ps(v) - pt(v))
// The teacher is frozen: nothing flows into ht or Wt. Logits exist for at most
// `rows` tokens at a time ([rows, V] per model), never for all of [T, V].
//
// Devices: every op runs on the device of its tensors (all on one). CPU reference:
// kernels/cpu/kd_head.cpp (OpenBLAS GEMMs, FP64 row softmaxes); CUDA twin:
// kernels/cuda/kd_head.cu (cuBLASLt pedantic FP32 GEMMs per block, deterministic FP64 row
// kernels), asynchronous on `stream`; tests/gpu/test_kd_head.cpp states how closely the
// twins agree.
// Gradient contract: dhs written (=), dws accumulated (+=).
#pragma once

#include "core/stream.h"
#include "core/tensor.h"

namespace crucible::ops {

struct KdHeadOptions {
  float temperature = 1.0f;
  std::int64_t rows = 64;  // tokens per block
};

// hs [T, Ds], ws [V, Ds] (student), ht [T, Dt], wt [V, Dt] (teacher) -> loss [T] (written).
void kd_head_forward(const Tensor& hs, const Tensor& ws, const Tensor& ht, const Tensor& wt, Tensor& loss,
                     const KdHeadOptions& opts = {}, const Stream& stream = Stream());

// Given dloss [T] = dL/dloss: dhs [T, Ds] written, dws [V, Ds] accumulated (+=).
void kd_head_backward(const Tensor& dloss, const Tensor& hs, const Tensor& ws, const Tensor& ht, const Tensor& wt,
                      Tensor& dhs, Tensor& dws, const KdHeadOptions& opts = {}, const Stream& stream = Stream());

}  // namespace crucible::ops
