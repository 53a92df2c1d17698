// kernels/cuda/tensor_ops_cuda.h: host launchers of the data-movement ops
// (tensor_ops.cu; scatter_add_rows in embedding.cu, whose sorted scatter it shares).
//
// Contracts identical to kernels/tensor_ops.h (CPU reference: kernels/cpu/
// tensor_ops.cpp), all bit-exact to it. Device pointers on the current device; shapes
// validated by the ops:: layer; row indices checked in the kernels (print and trap).
// `stream` is a cudaStream_t; launches are asynchronous and deterministic.
#pragma once

#include <cstdint>

namespace crucible::cuda {

// src [rows, src_ld], dst [rows, dst_ld]: dst[:, dst_col + c] (+)= src[:, src_col + c], c < width.
void copy_columns(const float* src, std::int64_t src_ld, std::int64_t src_col, float* dst, std::int64_t dst_ld,
                  std::int64_t dst_col, std::int64_t rows, std::int64_t width, bool accumulate, void* stream);
// dst[:, dst_col + k stride + c] = src[:, src_col + c];  k < count, c < width.
void repeat_columns(const float* src, std::int64_t src_ld, std::int64_t src_col, float* dst, std::int64_t dst_ld,
                    std::int64_t dst_col, std::int64_t rows, std::int64_t width, std::int64_t count,
                    std::int64_t stride, void* stream);
// dst[:, dst_col + c] += src[:, src_col + k stride + c] for k = 0 .. count-1 in turn.
void sum_repeated_columns(const float* src, std::int64_t src_ld, std::int64_t src_col, float* dst,
                          std::int64_t dst_ld, std::int64_t dst_col, std::int64_t rows, std::int64_t width,
                          std::int64_t count, std::int64_t stride, void* stream);
// y[i] = y[i] + alpha * x[i] (product rounded, then the sum), i < n.
void axpy(float alpha, const float* x, float* y, std::int64_t n, void* stream);
void fill(float* x, float value, std::int64_t n, void* stream);
// out [n, w] = src[index] with src [src_rows, w].
void gather_rows(const float* src, const std::int32_t* index, float* out, std::int64_t n, std::int64_t src_rows,
                 std::int64_t w, void* stream);
// dst [dst_rows, w] += scale[i] src[i] (scale nullptr = 1) for i < n, each dst row's
// terms added in ascending i (CUB stable sort by index, then one owner per dst row).
void scatter_add_rows(const float* src, const std::int32_t* index, const float* scale, float* dst, std::int64_t n,
                      std::int64_t dst_rows, std::int64_t w, void* stream);

}  // namespace crucible::cuda
