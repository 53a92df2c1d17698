// kernels/cpu/tensor_ops_cpu.h: the CPU reference of the data-movement ops (contracts
// in kernels/tensor_ops.h). Called through the ops:: functions, which validate dtypes,
// shapes and devices first; these check row indices (they need the values).
#pragma once

#include "core/tensor.h"

namespace crucible::cpu {

void copy_columns(const Tensor& src, std::int64_t src_col, Tensor& dst, std::int64_t dst_col, std::int64_t width,
                  bool accumulate);
void repeat_columns(const Tensor& src, std::int64_t src_col, Tensor& dst, std::int64_t dst_col, std::int64_t width,
                    std::int64_t count, std::int64_t stride);
void sum_repeated_columns(const Tensor& src, std::int64_t src_col, std::int64_t width, std::int64_t count,
                          std::int64_t stride, Tensor& dst, std::int64_t dst_col);
void axpy(float alpha, const Tensor& x, Tensor& y);
void fill(Tensor& x, float value);
void gather_rows(const Tensor& src, const Tensor& index, Tensor& out);
void scatter_add_rows(const Tensor& src, const Tensor& index, const Tensor& scale, Tensor& dst);

}  // namespace crucible::cpu
