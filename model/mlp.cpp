// model/mlp.cpp: SwiGLU MLP forward/backward (mirrored).
#include "model/mlp.h"

#include "kernels/elementwise.h"
#include "kernels/tensor_ops.h"

namespace crucible {

MlpParams mlp_params(const ModelWeights& w, const std::string& prefix) {
  return {param(w, prefix + "gate_proj.weight"), param(w, prefix + "up_proj.weight"),
          param(w, prefix + "down_proj.weight")};
}

void mlp_forward(const MlpParams& p, const Tensor& x, ops::GemmPrecision prec, Tensor& y, MlpSaved& s) {
  const Device dev = x.device();
  const std::int64_t n = x.dim(0), inter = p.gate.w.dim(0);
  s.x = x;
  s.gate = activation(dev, n, inter, "mlp.gate");  // [n, I]
  s.up = activation(dev, n, inter, "mlp.up");      // [n, I]
  s.h = activation(dev, n, inter, "mlp.h");        // [n, I]
  ops::linear_pair_forward(x, p.gate.w, p.up.w, s.gate, s.up, prec);
  ops::swiglu_forward(s.gate, s.up, s.h);
  ops::linear_forward(s.h, p.down.w, Tensor(), y, prec);
}

void mlp_backward(MlpParams& p, const Tensor& dy, const MlpSaved& s, ops::GemmPrecision prec, Tensor& dx) {
  const Device dev = dy.device();
  const std::int64_t n = dy.dim(0), inter = p.gate.w.dim(0);
  Tensor dh = activation(dev, n, inter, "mlp.dh");
  Tensor none;
  ops::linear_backward(dy, s.h, p.down.w, dh, p.down.g, none, prec);
  Tensor dgate = activation(dev, n, inter, "mlp.dgate"), dup = activation(dev, n, inter, "mlp.dup");
  ops::swiglu_backward(dh, s.gate, s.up, dgate, dup);
  ops::linear_pair_backward(dgate, dup, s.x, p.gate.w, p.up.w, dx, p.gate.g, p.up.g, prec);
}

}  // namespace crucible
