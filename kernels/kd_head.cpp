// kernels/kd_head.cpp: validation and device dispatch of logit KD through two LM heads
// (kernels/kd_head.h). CPU only for now: a device tensor fails loudly, naming the op.
#include "kernels/kd_head.h"

#include "core/error.h"
#include "kernels/cpu/kd_head_cpu.h"
#include "kernels/op_checks.h"

namespace crucible::ops {

namespace {

using detail::check_tensor;

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

}  // namespace

void kd_head_forward(const Tensor& hs, const Tensor& ws, const Tensor& ht, const Tensor& wt, Tensor& loss,
                     const KdHeadOptions& opts, const Stream& stream) {
  const char* op = "kd_head_forward";
  const Device dev = check_heads(hs, ws, ht, wt, opts, op);
  check_tensor(loss, dev, op, "loss", DType::F32, Shape{hs.dim(0)});
  (void)stream;
  if (dev.is_cpu()) return cpu::kd_head_forward(hs, ws, ht, wt, loss, opts);
  CRUCIBLE_FAIL(op, " on ", dev.str(), ": no CUDA twin yet (kernels/kd_head.h); distill with kd_weight = 0 on the GPU");
}

void kd_head_backward(const Tensor& dloss, const Tensor& hs, const Tensor& ws, const Tensor& ht, const Tensor& wt,
                      Tensor& dhs, Tensor& dws, const KdHeadOptions& opts, const Stream& stream) {
  const char* op = "kd_head_backward";
  const Device dev = check_heads(hs, ws, ht, wt, opts, op);
  check_tensor(dloss, dev, op, "dloss", DType::F32, Shape{hs.dim(0)});
  check_tensor(dhs, dev, op, "dhs", DType::F32, hs.shape());
  check_tensor(dws, dev, op, "dws", DType::F32, ws.shape());
  (void)stream;
  if (dev.is_cpu()) return cpu::kd_head_backward(dloss, hs, ws, ht, wt, dhs, dws, opts);
  CRUCIBLE_FAIL(op, " on ", dev.str(), ": no CUDA twin yet (kernels/kd_head.h); distill with kd_weight = 0 on the GPU");
}

}  // namespace crucible::ops
