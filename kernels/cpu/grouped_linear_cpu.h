// kernels/cpu/grouped_linear_cpu.h: the CPU reference of the grouped linear ops (contracts
// in kernels/grouped_linear.h). Called through the ops:: functions, which validate devices,
// dtypes, shapes and the offsets first.
#pragma once

#include <cstdint>
#include <span>

#include "core/tensor.h"
#include "kernels/linear.h"

namespace crucible::cpu {

void grouped_linear_forward(const Tensor& x, std::span<const Tensor> w, std::span<const std::int64_t> offsets,
                            Tensor& y, ops::GemmPrecision p);
void grouped_linear_backward(const Tensor& dy, const Tensor& x, std::span<const Tensor> w,
                             std::span<const std::int64_t> offsets, Tensor& dx, std::span<Tensor> dw,
                             ops::GemmPrecision p);

}  // namespace crucible::cpu
