// kernels/cpu/attention_cpu.h: the CPU reference of causal packed attention, forward
// and backward (contracts in kernels/attention.h).
//
// Called through ops::attention_forward/backward, which validate dtypes, shapes and
// devices first; these take CPU tensors only and check what needs their values (the
// cu_seqlens offsets), throwing with the offending value.
#pragma once

#include "core/tensor.h"

namespace crucible::cpu {

void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& cu_seqlens,
                       float scale, Tensor& out, Tensor& lse);
void attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                        const Tensor& out, const Tensor& lse, const Tensor& cu_seqlens, float scale,
                        Tensor& dq, Tensor& dk, Tensor& dv);

}  // namespace crucible::cpu
