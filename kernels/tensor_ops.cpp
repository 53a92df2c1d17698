// kernels/tensor_ops.cpp: validation and device dispatch of the data-movement ops
// (kernels/tensor_ops.h): dtypes, shapes and one device here; row indices in range in
// the backends (the CPU throws, the CUDA kernels trap).
#include "kernels/tensor_ops.h"

#include "core/error.h"
#include "kernels/cpu/tensor_ops_cpu.h"
#include "kernels/op_checks.h"
#ifdef CRUCIBLE_WITH_CUDA
#include "kernels/cuda/tensor_ops_cuda.h"
#endif

namespace crucible::ops {

namespace {

using detail::check_tensor;
using detail::describe;
using detail::device_of;
using detail::ptr;
using detail::ptr_out;

std::int64_t row_len(const Tensor& t) { return t.dim(0) == 0 ? 0 : t.numel() / t.dim(0); }

void check_rows(const Tensor& t, const char* op, const char* role) {
  CRUCIBLE_CHECK(t.rank() >= 1, op, ": ", describe(t, role), " must have rank >= 1");
}

}  // namespace

void copy_columns(const Tensor& src, std::int64_t src_col, Tensor& dst, std::int64_t dst_col, std::int64_t width,
                  bool accumulate, const Stream& stream) {
  const char* op = "copy_columns";
  const Device dev = device_of(src, op, "src");
  check_tensor(src, dev, op, "src", DType::F32);
  check_tensor(dst, dev, op, "dst", DType::F32);
  check_rows(src, op, "src");
  check_rows(dst, op, "dst");
  const std::int64_t rows = src.dim(0), sc = row_len(src), dc = row_len(dst);
  CRUCIBLE_CHECK(dst.dim(0) == rows && src_col >= 0 && dst_col >= 0 && width >= 0 && src_col + width <= sc &&
                     dst_col + width <= dc,
                 "copy_columns ", src.name(), " ", src.shape().str(), " [", src_col, "+", width, ") -> ", dst.name(),
                 " ", dst.shape().str(), " [", dst_col, "+", width, ")");
  if (dev.is_cpu()) return cpu::copy_columns(src, src_col, dst, dst_col, width, accumulate);
#ifdef CRUCIBLE_WITH_CUDA
  cuda::copy_columns(ptr<float>(src), sc, src_col, ptr_out<float>(dst), dc, dst_col, rows, width, accumulate,
                     stream.handle());
#else
  (void)stream;
  detail::fail_no_cuda(op, dev);
#endif
}

namespace {

// repeat_columns / sum_repeated_columns: `many` holds count blocks of width columns,
// `stride` apart from column many_col; `one` holds one block at one_col.
void check_repeated(const char* op, const Tensor& one, std::int64_t one_col, const Tensor& many, std::int64_t many_col,
                    std::int64_t width, std::int64_t count, std::int64_t stride) {
  check_rows(one, op, "one block");
  check_rows(many, op, "repeated blocks");
  const std::int64_t oc = row_len(one), mc = row_len(many);
  CRUCIBLE_CHECK(many.dim(0) == one.dim(0) && one_col >= 0 && many_col >= 0 && width >= 0 && count >= 0 &&
                     stride >= width && one_col + width <= oc &&
                     (count == 0 || many_col + (count - 1) * stride + width <= mc),
                 op, ": ", one.name(), " ", one.shape().str(), " [", one_col, "+", width, ") and ", many.name(), " ",
                 many.shape().str(), " [", many_col, "+", width, ") x ", count, " every ", stride, " columns");
}

}  // namespace

void repeat_columns(const Tensor& src, std::int64_t src_col, Tensor& dst, std::int64_t dst_col, std::int64_t width,
                    std::int64_t count, std::int64_t stride, const Stream& stream) {
  const char* op = "repeat_columns";
  const Device dev = device_of(src, op, "src");
  check_tensor(src, dev, op, "src", DType::F32);
  check_tensor(dst, dev, op, "dst", DType::F32);
  check_repeated(op, src, src_col, dst, dst_col, width, count, stride);
  if (dev.is_cpu()) return cpu::repeat_columns(src, src_col, dst, dst_col, width, count, stride);
#ifdef CRUCIBLE_WITH_CUDA
  cuda::repeat_columns(ptr<float>(src), row_len(src), src_col, ptr_out<float>(dst), row_len(dst), dst_col,
                       src.dim(0), width, count, stride, stream.handle());
#else
  (void)stream;
  detail::fail_no_cuda(op, dev);
#endif
}

void sum_repeated_columns(const Tensor& src, std::int64_t src_col, std::int64_t width, std::int64_t count,
                          std::int64_t stride, Tensor& dst, std::int64_t dst_col, const Stream& stream) {
  const char* op = "sum_repeated_columns";
  const Device dev = device_of(src, op, "src");
  check_tensor(src, dev, op, "src", DType::F32);
  check_tensor(dst, dev, op, "dst", DType::F32);
  check_repeated(op, dst, dst_col, src, src_col, width, count, stride);
  if (dev.is_cpu()) return cpu::sum_repeated_columns(src, src_col, width, count, stride, dst, dst_col);
#ifdef CRUCIBLE_WITH_CUDA
  cuda::sum_repeated_columns(ptr<float>(src), row_len(src), src_col, ptr_out<float>(dst), row_len(dst), dst_col,
                             src.dim(0), width, count, stride, stream.handle());
#else
  (void)stream;
  detail::fail_no_cuda(op, dev);
#endif
}

void axpy(float alpha, const Tensor& x, Tensor& y, const Stream& stream) {
  const char* op = "axpy";
  const Device dev = device_of(x, op, "x");
  check_tensor(x, dev, op, "x", DType::F32);
  check_tensor(y, dev, op, "y", DType::F32);
  CRUCIBLE_CHECK(x.numel() == y.numel(), "axpy ", x.shape().str(), " into ", y.shape().str());
  if (dev.is_cpu()) return cpu::axpy(alpha, x, y);
#ifdef CRUCIBLE_WITH_CUDA
  cuda::axpy(alpha, ptr<float>(x), ptr_out<float>(y), x.numel(), stream.handle());
#else
  (void)stream;
  detail::fail_no_cuda(op, dev);
#endif
}

void fill(Tensor& x, float value, const Stream& stream) {
  const char* op = "fill";
  const Device dev = device_of(x, op, "x");
  check_tensor(x, dev, op, "x", DType::F32);
  if (dev.is_cpu()) return cpu::fill(x, value);
#ifdef CRUCIBLE_WITH_CUDA
  cuda::fill(ptr_out<float>(x), value, x.numel(), stream.handle());
#else
  (void)stream;
  detail::fail_no_cuda(op, dev);
#endif
}

void gather_rows(const Tensor& src, const Tensor& index, Tensor& out, const Stream& stream) {
  const char* op = "gather_rows";
  const Device dev = device_of(src, op, "src");
  check_tensor(src, dev, op, "src", DType::F32);
  check_tensor(index, dev, op, "index", DType::I32);
  check_tensor(out, dev, op, "out", DType::F32);
  check_rows(src, op, "src");
  check_rows(out, op, "out");
  const std::int64_t n = index.numel(), w = row_len(src);
  CRUCIBLE_CHECK(out.dim(0) == n && row_len(out) == w, "gather_rows shapes: ", describe(out, "out"), " must hold ",
                 n, " rows of the ", w, " values of ", describe(src, "src"), "'s rows");
  if (dev.is_cpu()) return cpu::gather_rows(src, index, out);
#ifdef CRUCIBLE_WITH_CUDA
  cuda::gather_rows(ptr<float>(src), ptr<std::int32_t>(index), ptr_out<float>(out), n, src.dim(0), w,
                    stream.handle());
#else
  (void)stream;
  detail::fail_no_cuda(op, dev);
#endif
}

void scatter_add_rows(const Tensor& src, const Tensor& index, const Tensor& scale, Tensor& dst,
                      const Stream& stream) {
  const char* op = "scatter_add_rows";
  const Device dev = device_of(dst, op, "dst");
  check_tensor(src, dev, op, "src", DType::F32);
  check_tensor(index, dev, op, "index", DType::I32);
  check_tensor(dst, dev, op, "dst", DType::F32);
  check_rows(src, op, "src");
  check_rows(dst, op, "dst");
  const std::int64_t n = index.numel(), w = row_len(dst);
  CRUCIBLE_CHECK(src.dim(0) == n && row_len(src) == w, "scatter_add_rows shapes: ", describe(src, "src"),
                 " must hold ", n, " rows of the ", w, " values of ", describe(dst, "dst"), "'s rows");
  if (scale.defined()) {
    check_tensor(scale, dev, op, "scale", DType::F32);
    CRUCIBLE_CHECK(scale.numel() == n, op, ": ", describe(scale, "scale"), " must hold ", n, " values");
  }
  if (dev.is_cpu()) return cpu::scatter_add_rows(src, index, scale, dst);
#ifdef CRUCIBLE_WITH_CUDA
  cuda::scatter_add_rows(ptr<float>(src), ptr<std::int32_t>(index), scale.defined() ? ptr<float>(scale) : nullptr,
                         ptr_out<float>(dst), n, dst.dim(0), w, stream.handle());
#else
  (void)stream;
  detail::fail_no_cuda(op, dev);
#endif
}

}  // namespace crucible::ops
