// kernels/cpu/elementwise_cpu.h: the CPU reference of RMSNorm, SwiGLU, embedding and
// RoPE (contracts in kernels/elementwise.h).
//
// Called through the ops:: functions, which validate dtypes, shapes and devices
// first; these take CPU tensors only and check what needs their values (token ids
// and positions in range), throwing with the offending value.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace crucible::cpu {

void rmsnorm_forward(const Tensor& x, const Tensor& w, float eps, Tensor& y, Tensor& rstd);
void rmsnorm_backward(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& rstd, Tensor& dx,
                      Tensor& dw);
void swiglu_forward(const Tensor& gate, const Tensor& up, Tensor& out);
void swiglu_backward(const Tensor& dout, const Tensor& gate, const Tensor& up, Tensor& dgate, Tensor& dup);
void embedding_forward(const Tensor& ids, const Tensor& table, Tensor& out);
void embedding_backward(const Tensor& dout, const Tensor& ids, Tensor& dtable);
void rope_apply(Tensor& x, std::int64_t offset, const Tensor& pos, const Tensor& cos, const Tensor& sin,
                std::int64_t rot, bool interleaved, bool inverse);

}  // namespace crucible::cpu
