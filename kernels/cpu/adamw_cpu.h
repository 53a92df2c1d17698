// kernels/cpu/adamw_cpu.h: the CPU reference of AdamW and Σ x^2 (kernels/adamw.h).
//
// Called through ops::adamw_update / ops::sum_squares, which validate dtypes, sizes
// and devices first; these take CPU tensors only.
#pragma once

#include "kernels/adamw.h"

namespace crucible::cpu {

// param, grad FP32 [n]; m, v FP32 or BF16 [n]; in place, elements in ascending order.
void adamw_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const ops::AdamWScalars& k);
// Σ x^2 in double, elements in ascending order.
double sum_squares(const Tensor& x);

}  // namespace crucible::cpu
