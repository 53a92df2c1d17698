// kernels/tensor_ops.h: the small data-movement ops the model composes blocks with.
//
// All FP32 and row-major; 2-D views are [rows, cols] of a tensor's leading dims
// flattened. Column copies move a band of columns between matrices with the same
// row count (splitting [c_kv | k_rope], gathering a head's rope dims, ...).
//
// Devices: every op runs on the device of its tensors (all on one). The CPU reference
// is kernels/cpu/tensor_ops.cpp, the CUDA twin kernels/cuda/tensor_ops.cu (+ the
// sorted scatter-add in kernels/cuda/embedding.cu), asynchronous on `stream` and
// deterministic (no float atomics); every op matches the CPU bit for bit
// (tests/gpu/test_moe_routing.cpp). Row indices out of range: the CPU throws naming
// the index, the CUDA kernels print it and trap.
#pragma once

#include "core/stream.h"
#include "core/tensor.h"

namespace crucible::ops {

// dst[:, dst_col : dst_col + width] = src[:, src_col : src_col + width]
// (or += when accumulate). src and dst are viewed as [rows, last-dim-product]
// with rows = dim(0).
void copy_columns(const Tensor& src, std::int64_t src_col, Tensor& dst, std::int64_t dst_col,
                  std::int64_t width, bool accumulate = false, const Stream& stream = Stream());

// One column block to many and back (MLA's rope key, shared by every head):
//   repeat_columns:       dst[:, dst_col + k stride + c] = src[:, src_col + c]
//   sum_repeated_columns: dst[:, dst_col + c] += src[:, src_col + k stride + c], added
//                         for k = 0, 1, .., count - 1 in turn (each sum rounded), the
//                         gradient of repeat_columns;
// for k < count, c < width; the same as count copy_columns calls, in one pass.
void repeat_columns(const Tensor& src, std::int64_t src_col, Tensor& dst, std::int64_t dst_col, std::int64_t width,
                    std::int64_t count, std::int64_t stride, const Stream& stream = Stream());
void sum_repeated_columns(const Tensor& src, std::int64_t src_col, std::int64_t width, std::int64_t count,
                          std::int64_t stride, Tensor& dst, std::int64_t dst_col, const Stream& stream = Stream());

// y += alpha * x (same numel; the product rounded, then the sum: no FMA).
void axpy(float alpha, const Tensor& x, Tensor& y, const Stream& stream = Stream());
// x = value
void fill(Tensor& x, float value, const Stream& stream = Stream());

// Rows gather/scatter (MoE token permutation): out[i] = src[index[i]];
// dst[index[i]] += scale[i] * src[i] (scale undefined = 1), rows sharing a dst row added
// in ascending i. index i32 [n].
void gather_rows(const Tensor& src, const Tensor& index, Tensor& out, const Stream& stream = Stream());
void scatter_add_rows(const Tensor& src, const Tensor& index, const Tensor& scale, Tensor& dst,
                      const Stream& stream = Stream());

}  // namespace crucible::ops
