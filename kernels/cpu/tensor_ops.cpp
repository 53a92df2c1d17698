// kernels/cpu/tensor_ops.cpp: CPU reference of the data-movement ops (shapes and dtypes
// are checked by kernels/tensor_ops.cpp).
#include <cstring>

#include "core/error.h"
#include "kernels/cpu/tensor_ops_cpu.h"

namespace crucible::cpu {

namespace {
std::int64_t row_len(const Tensor& t) { return t.dim(0) == 0 ? 0 : t.numel() / t.dim(0); }
}  // namespace

void copy_columns(const Tensor& src, std::int64_t src_col, Tensor& dst, std::int64_t dst_col,
                  std::int64_t width, bool accumulate) {
  const std::int64_t rows = src.dim(0), sc = row_len(src), dc = row_len(dst);
  const float* s = src.data<float>();
  float* d = dst.data<float>();
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* sr = s + r * sc + src_col;
    float* dr = d + r * dc + dst_col;
    if (accumulate)
      for (std::int64_t c = 0; c < width; ++c) dr[c] += sr[c];
    else
      std::memcpy(dr, sr, static_cast<std::size_t>(width) * sizeof(float));
  }
}

void repeat_columns(const Tensor& src, std::int64_t src_col, Tensor& dst, std::int64_t dst_col, std::int64_t width,
                    std::int64_t count, std::int64_t stride) {
  const std::int64_t rows = src.dim(0), sc = row_len(src), dc = row_len(dst);
  const float* s = src.data<float>();
  float* d = dst.data<float>();
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t k = 0; k < count; ++k)
      std::memcpy(d + r * dc + dst_col + k * stride, s + r * sc + src_col, static_cast<std::size_t>(width) * sizeof(float));
}

void sum_repeated_columns(const Tensor& src, std::int64_t src_col, std::int64_t width, std::int64_t count,
                          std::int64_t stride, Tensor& dst, std::int64_t dst_col) {
  const std::int64_t rows = src.dim(0), sc = row_len(src), dc = row_len(dst);
  const float* s = src.data<float>();
  float* d = dst.data<float>();
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t k = 0; k < count; ++k) {
      const float* sr = s + r * sc + src_col + k * stride;
      float* dr = d + r * dc + dst_col;
      for (std::int64_t c = 0; c < width; ++c) dr[c] += sr[c];
    }
}

void axpy(float alpha, const Tensor& x, Tensor& y) {
  const float* xs = x.data<float>();
  float* ys = y.data<float>();
  for (std::int64_t i = 0; i < x.numel(); ++i) ys[i] += alpha * xs[i];
}

void fill(Tensor& x, float value) {
  float* p = x.data<float>();
  for (std::int64_t i = 0; i < x.numel(); ++i) p[i] = value;
}

void gather_rows(const Tensor& src, const Tensor& index, Tensor& out) {
  const std::int64_t n = index.numel(), w = row_len(src);
  const std::int32_t* idx = index.data<std::int32_t>();
  for (std::int64_t i = 0; i < n; ++i) {
    CRUCIBLE_CHECK(idx[i] >= 0 && idx[i] < src.dim(0), "gather_rows index ", idx[i], " out of range");
    std::memcpy(out.data<float>() + i * w, src.data<float>() + idx[i] * w,
                static_cast<std::size_t>(w) * sizeof(float));
  }
}

void scatter_add_rows(const Tensor& src, const Tensor& index, const Tensor& scale, Tensor& dst) {
  const std::int64_t n = index.numel(), w = row_len(dst);
  const std::int32_t* idx = index.data<std::int32_t>();
  const float* sc = scale.defined() ? scale.data<float>() : nullptr;
  for (std::int64_t i = 0; i < n; ++i) {
    CRUCIBLE_CHECK(idx[i] >= 0 && idx[i] < dst.dim(0), "scatter_add_rows index ", idx[i], " out of range");
    const float a = sc ? sc[i] : 1.0f;
    const float* s = src.data<float>() + i * w;
    float* d = dst.data<float>() + idx[i] * w;
    for (std::int64_t c = 0; c < w; ++c) d[c] += a * s[c];
  }
}

}  // namespace crucible::cpu
