// kernels/kd_head.cpp: validation and device dispatch of logit KD through two LM heads
// (kernels/kd_head.h): CPU reference or CUDA twin, on the device of the tensors.
#include "kernels/kd_head.h"

#include <algorithm>

#include "core/error.h"
#include "kernels/cpu/kd_head_cpu.h"
#include "kernels/op_checks.h"
#ifdef CRUCIBLE_WITH_CUDA
#include "kernels/cuda/kd_head_cuda.h"
#endif

namespace crucible::ops {

namespace {

using detail::check_tensor;
using detail::ptr;
using detail::ptr_out;

Device check_heads(const Tensor& hs, const Tensor& ws, const Tensor& ht, const Tensor& wt, const KdHeadOptions& opts,
                   const char* op) {
  const Device dev = detail::device_of(hs, op, "hs");
  CRUCIBLE_CHECK(hs.rank() == 2 && ws.defined() && ws.rank() == 2 && ht.defined() && ht.rank() == 2 && wt.defined() &&
                     wt.rank() == 2,
                 op, ": hs, ht must be [T, D] and ws, wt [V, D]");
  const std::int64_t T = hs.dim(0), V = ws.dim(0);
  check_tensor(hs, dev, op, "hs", DType::F32);
  check_tensor(ws, dev, op, "ws", DType::F32, Shape{V, hs.dim(1)});
  check_tensor(ht, dev, op, "ht", DType::F32);
  CRUCIBLE_CHECK(ht.dim(0) == T, op, ": ht ", ht.shape().str(), " must have the ", T, " rows of hs");
  check_tensor(wt, dev, op, "wt", DType::F32);
  CRUCIBLE_CHECK(wt.dim(0) == V && wt.dim(1) == ht.dim(1), op, ": the teacher head wt ", wt.shape().str(),
                 " must be [V = ", V, " (the student's vocabulary), ", ht.dim(1), "]");
  CRUCIBLE_CHECK(opts.temperature > 0 && opts.rows > 0, op, ": temperature and rows must be positive");
  return dev;
}

// Tokens per block, clamped to [1, T] so that the CUDA scratch is no larger than needed.
[[maybe_unused]] std::int64_t block_rows(const KdHeadOptions& opts, std::int64_t T) {
  return std::min(opts.rows, std::max<std::int64_t>(T, 1));
}

}  // namespace

void kd_head_forward(const Tensor& hs, const Tensor& ws, const Tensor& ht, const Tensor& wt, Tensor& loss,
                     const KdHeadOptions& opts, const Stream& stream) {
  const char* op = "kd_head_forward";
  const Device dev = check_heads(hs, ws, ht, wt, opts, op);
  check_tensor(loss, dev, op, "loss", DType::F32, Shape{hs.dim(0)});
  if (dev.is_cpu()) return cpu::kd_head_forward(hs, ws, ht, wt, loss, opts);
#ifdef CRUCIBLE_WITH_CUDA
  const std::int64_t T = hs.dim(0);
  cuda::kd_head_forward(ptr<float>(hs), ptr<float>(ws), ptr<float>(ht), ptr<float>(wt), ptr_out<float>(loss), T,
                        hs.dim(1), ht.dim(1), ws.dim(0), opts.temperature, block_rows(opts, T), stream.handle());
#else
  (void)stream;
  detail::fail_no_cuda(op, dev);
#endif
}

void kd_head_backward(const Tensor& dloss, const Tensor& hs, const Tensor& ws, const Tensor& ht, const Tensor& wt,
                      Tensor& dhs, Tensor& dws, const KdHeadOptions& opts, const Stream& stream) {
  const char* op = "kd_head_backward";
  const Device dev = check_heads(hs, ws, ht, wt, opts, op);
  check_tensor(dloss, dev, op, "dloss", DType::F32, Shape{hs.dim(0)});
  check_tensor(dhs, dev, op, "dhs", DType::F32, hs.shape());
  check_tensor(dws, dev, op, "dws", DType::F32, ws.shape());
  if (dev.is_cpu()) return cpu::kd_head_backward(dloss, hs, ws, ht, wt, dhs, dws, opts);
#ifdef CRUCIBLE_WITH_CUDA
  const std::int64_t T = hs.dim(0);
  cuda::kd_head_backward(ptr<float>(dloss), ptr<float>(hs), ptr<float>(ws), ptr<float>(ht), ptr<float>(wt),
                         ptr_out<float>(dhs), ptr_out<float>(dws), T, hs.dim(1), ht.dim(1), ws.dim(0),
                         opts.temperature, block_rows(opts, T), stream.handle());
#else
  (void)stream;
  detail::fail_no_cuda(op, dev);
#endif
}

}  // namespace crucible::ops
