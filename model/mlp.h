// model/mlp.h: the SwiGLU feed-forward block y = W_down (silu(W_gate x) * W_up x).
//
// Used by dense layers, shared experts and every routed expert (same block, other
// parameter prefix).
#pragma once

#include "model/block.h"

namespace crucible {

struct MlpParams {
  Param gate, up, down;  // [I, H], [I, H], [H, I]
};
// prefix: "model.layers.0.mlp.", "model.layers.3.mlp.experts.7.", ...
MlpParams mlp_params(const ModelWeights& w, const std::string& prefix);

struct MlpSaved {
  Tensor x;         // [n, H] input
  Tensor gate, up;  // [n, I] pre-activation
  Tensor h;         // [n, I] silu(gate) * up
};

// x [n, H] -> y [n, H] (written).
void mlp_forward(const MlpParams& p, const Tensor& x, ops::GemmPrecision prec, Tensor& y, MlpSaved& s);
// dy [n, H] -> dx [n, H] (written); parameter gradients +=.
void mlp_backward(MlpParams& p, const Tensor& dy, const MlpSaved& s, ops::GemmPrecision prec, Tensor& dx);

}  // namespace crucible
