// kernels/cpu/grouped_linear.cpp: CPU reference of the grouped linear ops: the loop over the
// non-empty groups calling the CPU linear ops (kernels/cpu/linear.cpp) on row views.
//
// Invariant: for every group the calls, their operands and their order are those of a caller
// that runs ops::linear_forward / ops::linear_backward (no bias) expert by expert, skipping
// empty experts, as model/moe.cpp does; so results are bit-identical to that loop.
#include "kernels/cpu/grouped_linear_cpu.h"

namespace crucible::cpu {

void grouped_linear_forward(const Tensor& x, std::span<const Tensor> w, std::span<const std::int64_t> offsets,
                            Tensor& y, ops::GemmPrecision p) {
  for (std::size_t g = 0; g < w.size(); ++g) {
    const std::int64_t r0 = offsets[g], r1 = offsets[g + 1];
    if (r0 == r1) continue;
    Tensor yg = y.slice(r0, r1);                                 // [n_g, N]
    ops::linear_forward(x.slice(r0, r1), w[g], Tensor(), yg, p);  // x_g [n_g, K]
  }
}

void grouped_linear_backward(const Tensor& dy, const Tensor& x, std::span<const Tensor> w,
                             std::span<const std::int64_t> offsets, Tensor& dx, std::span<Tensor> dw,
                             ops::GemmPrecision p) {
  for (std::size_t g = 0; g < w.size(); ++g) {
    const std::int64_t r0 = offsets[g], r1 = offsets[g + 1];
    if (r0 == r1) continue;
    Tensor dxg = dx.defined() ? dx.slice(r0, r1) : Tensor();  // [n_g, K]
    Tensor no_bias;
    ops::linear_backward(dy.slice(r0, r1), x.slice(r0, r1), w[g], dxg, dw[g], no_bias, p);
  }
}

}  // namespace crucible::cpu
