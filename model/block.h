// model/block.h: what every block shares: parameter handles and the step's
// sequence layout.
//
// A block reads its parameters through Param handles (a view of the FP32 master and
// of its gradient, by Hugging Face name) and never owns memory. Gradient contract
// for every block (STYLE.md principle 2): backward writes the activation gradient
// (=) and accumulates parameter gradients (+=).
#pragma once

#include <string>

#include "kernels/linear.h"
#include "model/rope.h"
#include "model/weights.h"

namespace crucible {

struct Param {
  Tensor w;  // parameter view
  Tensor g;  // gradient view (undefined when the weights have no gradient arena)
};

inline Param param(const ModelWeights& weights, const std::string& name) {
  ModelWeights& w = const_cast<ModelWeights&>(weights);  // views only; the arenas are not resized
  return {w.param(name), w.has_grads() ? w.grad(name) : Tensor()};
}

// The packed batch a forward runs over: T tokens of B sequences.
struct SeqLayout {
  Tensor pos;         // [T] i32: position of each token in its sequence
  Tensor cu_seqlens;  // [B + 1] i32: sequence starts, cu[B] = T
  Tensor cu_host;     // cu_seqlens on the CPU (the MoE balance loss reads it there)
  const RopeTable* rope = nullptr;
};

// The GEMM precision of a model's linear layers (attention projections, experts,
// dense MLPs); embedding, head, norms, router and attention core stay FP32.
inline ops::GemmPrecision linear_precision(const ModelConfig& c) {
  switch (c.precision) {
    case Precision::Fp8: return ops::GemmPrecision::Fp8;
    case Precision::Bf16: return ops::GemmPrecision::Bf16;
    case Precision::Fp32: return ops::GemmPrecision::Fp32;
  }
  return ops::GemmPrecision::Fp32;
}

// A fresh FP32 activation [rows, cols] on `device` (the model's), named for dumps
// ("layer3.attn.q"). Its contents are unspecified (Tensor::empty: not zeroed on a GPU):
// every activation is the output (=) of the op that follows its allocation, which
// tests/model's runs under CRUCIBLE_POISON_EMPTY=1 check.
inline Tensor activation(Device device, std::int64_t rows, std::int64_t cols, std::string name) {
  return Tensor::empty(Shape{rows, cols}, DType::F32, device, std::move(name));
}

}  // namespace crucible
