// kernels/elementwise.h: RMSNorm, SwiGLU, embedding, RoPE: forward and backward.
//
// All FP32, row-major, contiguous. Gradient contract: activation gradients written
// (=), parameter gradients accumulated (+=). Outputs must not alias inputs (rope_apply
// is in place by design). Every op runs on the device of its tensors (all on one):
// the CPU reference is kernels/cpu/elementwise.cpp, the CUDA twin kernels/cuda/
// {rmsnorm,swiglu,embedding,rope}.cu, which runs asynchronously on `stream` and is
// deterministic (no atomics); tests/gpu/test_elementwise.cpp states how closely the
// twins agree (embedding and RoPE: bit for bit).
#pragma once

#include "core/stream.h"
#include "core/tensor.h"

namespace crucible::ops {

// y = x * rsqrt(mean(x^2) + eps) * w. x, y [T, D]; w [D]; rstd [T] saved for backward.
void rmsnorm_forward(const Tensor& x, const Tensor& w, float eps, Tensor& y, Tensor& rstd,
                     const Stream& stream = Stream());
// dx [T, D] =; dw [D] += (summed over T in a fixed order).
void rmsnorm_backward(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& rstd,
                      Tensor& dx, Tensor& dw, const Stream& stream = Stream());

// out = silu(gate) * up; all [T, I].
void swiglu_forward(const Tensor& gate, const Tensor& up, Tensor& out, const Stream& stream = Stream());
// dgate, dup [T, I] =.
void swiglu_backward(const Tensor& dout, const Tensor& gate, const Tensor& up, Tensor& dgate, Tensor& dup,
                     const Stream& stream = Stream());

// out [T, D] = table[ids]; ids [T] i32 in [0, V) (the CPU throws on a bad id naming it;
// the CUDA kernel prints it and traps, failing the next CUDA call).
void embedding_forward(const Tensor& ids, const Tensor& table, Tensor& out, const Stream& stream = Stream());
// dtable [V, D] += scatter of dout [T, D] (fixed order: deterministic).
void embedding_backward(const Tensor& dout, const Tensor& ids, Tensor& dtable, const Stream& stream = Stream());

// Rotary embedding in place on x [T, H, d] over its first `rot` dims (rot <= d,
// even) at positions pos [T] (i32), with cos/sin tables [max_pos, rot/2].
// interleaved = true rotates pairs (0,1),(2,3),... (DeepSeek, GPT-J); false rotates
// (i, i + rot/2) (Llama/Qwen "rotate_half"). inverse = true applies the transpose
// rotation (the backward of the forward). Positions out of range: as embedding ids.
void rope_apply(Tensor& x, const Tensor& pos, const Tensor& cos, const Tensor& sin, std::int64_t rot,
                bool interleaved, bool inverse = false, const Stream& stream = Stream());
// The same over dims [offset, offset + rot) of each head (offset + rot <= d): MLA's query
// heads carry their rope dims after the nope dims.
void rope_apply_at(Tensor& x, std::int64_t offset, const Tensor& pos, const Tensor& cos, const Tensor& sin,
                   std::int64_t rot, bool interleaved, bool inverse = false, const Stream& stream = Stream());

}  // namespace crucible::ops
