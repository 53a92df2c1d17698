// kernels/tensor_ops.h: the small data-movement ops the model composes blocks with.
//
// All FP32 and row-major; 2-D views are [rows, cols] of a tensor's leading dims
// flattened. Column copies move a band of columns between matrices with the same
// row count (splitting [c_kv | k_rope], gathering a head's rope dims, ...).
#pragma once

#include "core/tensor.h"

namespace crucible::ops {

// dst[:, dst_col : dst_col + width] = src[:, src_col : src_col + width]
// (or += when accumulate). src and dst are viewed as [rows, last-dim-product]
// with rows = dim(0).
void copy_columns(const Tensor& src, std::int64_t src_col, Tensor& dst, std::int64_t dst_col,
                  std::int64_t width, bool accumulate = false);

// y += alpha * x (same numel).
void axpy(float alpha, const Tensor& x, Tensor& y);
// x = value
void fill(Tensor& x, float value);

// Rows gather/scatter (MoE token permutation): out[i] = src[index[i]];
// dst[index[i]] += scale[i] * src[i] (scale undefined = 1). index i32 [n].
void gather_rows(const Tensor& src, const Tensor& index, Tensor& out);
void scatter_add_rows(const Tensor& src, const Tensor& index, const Tensor& scale, Tensor& dst);

}  // namespace crucible::ops
