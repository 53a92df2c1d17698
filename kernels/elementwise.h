// kernels/elementwise.h: RMSNorm, SwiGLU, embedding, RoPE: forward and backward.
//
// All FP32, row-major. Gradient contract: activation gradients written (=),
// parameter gradients accumulated (+=).
#pragma once

#include "core/tensor.h"

namespace crucible::ops {

// y = x * rsqrt(mean(x^2) + eps) * w. x, y [T, D]; w [D]; rstd [T] saved for backward.
void rmsnorm_forward(const Tensor& x, const Tensor& w, float eps, Tensor& y, Tensor& rstd);
// dx [T, D] =; dw [D] +=.
void rmsnorm_backward(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& rstd,
                      Tensor& dx, Tensor& dw);

// out = silu(gate) * up; all [T, I].
void swiglu_forward(const Tensor& gate, const Tensor& up, Tensor& out);
// dgate, dup [T, I] =.
void swiglu_backward(const Tensor& dout, const Tensor& gate, const Tensor& up, Tensor& dgate, Tensor& dup);

// out [T, D] = table[ids]; ids [T] i32 in [0, V).
void embedding_forward(const Tensor& ids, const Tensor& table, Tensor& out);
// dtable [V, D] += scatter of dout [T, D] (fixed order: deterministic).
void embedding_backward(const Tensor& dout, const Tensor& ids, Tensor& dtable);

// Rotary embedding in place on x [T, H, d] over its first `rot` dims (rot <= d,
// even) at positions pos [T] (i32), with cos/sin tables [max_pos, rot/2].
// interleaved = true rotates pairs (0,1),(2,3),... (DeepSeek, GPT-J); false rotates
// (i, i + rot/2) (Llama/Qwen "rotate_half"). inverse = true applies the transpose
// rotation (the backward of the forward).
void rope_apply(Tensor& x, const Tensor& pos, const Tensor& cos, const Tensor& sin, std::int64_t rot,
                bool interleaved, bool inverse = false);

}  // namespace crucible::ops
