// kernels/cpu/kd_head_cpu.h: the CPU reference of logit KD through two LM heads
// (contracts in kernels/kd_head.h). Called through the ops:: functions, which check
// shapes, dtypes and devices.
#pragma once

#include "kernels/kd_head.h"

namespace crucible::cpu {

void kd_head_forward(const Tensor& hs, const Tensor& ws, const Tensor& ht, const Tensor& wt, Tensor& loss,
                     const ops::KdHeadOptions& opts);
void kd_head_backward(const Tensor& dloss, const Tensor& hs, const Tensor& ws, const Tensor& ht, const Tensor& wt,
                      Tensor& dhs, Tensor& dws, const ops::KdHeadOptions& opts);

}  // namespace crucible::cpu
