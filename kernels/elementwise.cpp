// kernels/elementwise.cpp: validation and device dispatch of RMSNorm, SwiGLU,
// embedding and RoPE (kernels/elementwise.h).
//
// Each op checks dtypes, shapes and that its tensors share one device, then runs the
// CPU reference (kernels/cpu/elementwise.cpp) or the CUDA twin (kernels/cuda/
// rmsnorm.cu, swiglu.cu, embedding.cu, rope.cu). Checks that read values (token ids
// and positions in range) belong to the backends: the CPU throws naming the value;
// the CUDA kernels print it and trap, since reading values here would cost a
// device-to-host copy and a synchronization per call.
#include "kernels/elementwise.h"

#include <string>

#include "core/error.h"
#include "kernels/cpu/elementwise_cpu.h"
#include "kernels/op_checks.h"
#ifdef CRUCIBLE_WITH_CUDA
#include "kernels/cuda/elementwise_cuda.h"
#endif

namespace crucible::ops {

namespace {

using detail::check_tensor;
using detail::describe;
using detail::device_of;
using detail::fail_no_cuda;

void check_same_shape(const Tensor& t, const Tensor& ref, const char* op, const char* role,
                      const char* ref_role) {
  CRUCIBLE_CHECK(t.shape() == ref.shape(), op, ": ", describe(t, role), " must have the shape of ",
                 describe(ref, ref_role));
}

// RMSNorm's [rows, D] view: rank >= 1, leading dims flattened.
std::int64_t rows_of(const Tensor& x) { return x.dim(-1) == 0 ? 0 : x.numel() / x.dim(-1); }

[[maybe_unused]] const float* f32(const Tensor& t) { return static_cast<const float*>(t.raw()); }
[[maybe_unused]] float* f32_out(Tensor& t) { return static_cast<float*>(t.raw()); }
[[maybe_unused]] const std::int32_t* i32(const Tensor& t) {
  return static_cast<const std::int32_t*>(t.raw());
}

// ids [T] i32, a table [V, D] and a [T, D] activation, all on `dev`.
void check_embedding(const char* op, Device dev, const Tensor& ids, const Tensor& table,
                     const char* table_role, const Tensor& act, const char* act_role) {
  check_tensor(ids, dev, op, "ids", DType::I32);
  check_tensor(table, dev, op, table_role, DType::F32);
  check_tensor(act, dev, op, act_role, DType::F32);
  CRUCIBLE_CHECK(ids.rank() == 1, op, ": ", describe(ids, "ids"), " must be [tokens]");
  CRUCIBLE_CHECK(table.rank() == 2, op, ": ", describe(table, table_role), " must be [vocab, dim]");
  const std::int64_t T = ids.dim(0), D = table.dim(1);
  CRUCIBLE_CHECK(act.rank() == 2 && act.dim(0) == T && act.dim(1) == D, op, ": ", describe(act, act_role),
                 " must be [", T, ", ", D, "] for ", describe(ids, "ids"), " and ",
                 describe(table, table_role));
}

}  // namespace

// ---------------------------------------------------------------------------- RMSNorm

void rmsnorm_forward(const Tensor& x, const Tensor& w, float eps, Tensor& y, Tensor& rstd,
                     const Stream& stream) {
  const char* op = "rmsnorm_forward";
  const Device dev = device_of(x, op, "x");
  check_tensor(x, dev, op, "x", DType::F32);
  check_tensor(w, dev, op, "w", DType::F32);
  check_tensor(y, dev, op, "y", DType::F32);
  check_tensor(rstd, dev, op, "rstd", DType::F32);
  CRUCIBLE_CHECK(x.rank() >= 1, op, ": ", describe(x, "x"), " must have rank >= 1");
  const std::int64_t D = x.dim(-1), T = rows_of(x);
  CRUCIBLE_CHECK(w.rank() == 1 && w.dim(0) == D, op, ": ", describe(w, "w"), " must be [", D, "] to match ",
                 describe(x, "x"));
  check_same_shape(y, x, op, "y", "x");
  CRUCIBLE_CHECK(rstd.numel() == T, op, ": ", describe(rstd, "rstd"), " must hold ", T,
                 " values (one per row of ", describe(x, "x"), ")");
  CRUCIBLE_CHECK(eps >= 0.0f, op, ": eps must be >= 0, got ", eps);
  if (dev.is_cpu()) return cpu::rmsnorm_forward(x, w, eps, y, rstd);
#ifdef CRUCIBLE_WITH_CUDA
  cuda::rmsnorm_forward(f32(x), f32(w), eps, f32_out(y), f32_out(rstd), T, D, stream.handle());
#else
  fail_no_cuda(op, dev);
#endif
}

void rmsnorm_backward(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& rstd, Tensor& dx,
                      Tensor& dw, const Stream& stream) {
  const char* op = "rmsnorm_backward";
  const Device dev = device_of(x, op, "x");
  check_tensor(dy, dev, op, "dy", DType::F32);
  check_tensor(x, dev, op, "x", DType::F32);
  check_tensor(w, dev, op, "w", DType::F32);
  check_tensor(rstd, dev, op, "rstd", DType::F32);
  check_tensor(dx, dev, op, "dx", DType::F32);
  check_tensor(dw, dev, op, "dw", DType::F32);
  CRUCIBLE_CHECK(x.rank() >= 1, op, ": ", describe(x, "x"), " must have rank >= 1");
  const std::int64_t D = x.dim(-1), T = rows_of(x);
  check_same_shape(dy, x, op, "dy", "x");
  check_same_shape(dx, x, op, "dx", "x");
  CRUCIBLE_CHECK(w.rank() == 1 && w.dim(0) == D, op, ": ", describe(w, "w"), " must be [", D, "] to match ",
                 describe(x, "x"));
  check_same_shape(dw, w, op, "dw", "w");
  CRUCIBLE_CHECK(rstd.numel() == T, op, ": ", describe(rstd, "rstd"), " must hold ", T,
                 " values (one per row of ", describe(x, "x"), ")");
  if (dev.is_cpu()) return cpu::rmsnorm_backward(dy, x, w, rstd, dx, dw);
#ifdef CRUCIBLE_WITH_CUDA
  cuda::rmsnorm_backward(f32(dy), f32(x), f32(w), f32(rstd), f32_out(dx), f32_out(dw), T, D, stream.handle());
#else
  fail_no_cuda(op, dev);
#endif
}

// ----------------------------------------------------------------------------- SwiGLU

void swiglu_forward(const Tensor& gate, const Tensor& up, Tensor& out, const Stream& stream) {
  const char* op = "swiglu_forward";
  const Device dev = device_of(gate, op, "gate");
  check_tensor(gate, dev, op, "gate", DType::F32);
  check_tensor(up, dev, op, "up", DType::F32);
  check_tensor(out, dev, op, "out", DType::F32);
  check_same_shape(up, gate, op, "up", "gate");
  check_same_shape(out, gate, op, "out", "gate");
  if (dev.is_cpu()) return cpu::swiglu_forward(gate, up, out);
#ifdef CRUCIBLE_WITH_CUDA
  cuda::swiglu_forward(f32(gate), f32(up), f32_out(out), gate.numel(), stream.handle());
#else
  fail_no_cuda(op, dev);
#endif
}

void swiglu_backward(const Tensor& dout, const Tensor& gate, const Tensor& up, Tensor& dgate, Tensor& dup,
                     const Stream& stream) {
  const char* op = "swiglu_backward";
  const Device dev = device_of(gate, op, "gate");
  check_tensor(dout, dev, op, "dout", DType::F32);
  check_tensor(gate, dev, op, "gate", DType::F32);
  check_tensor(up, dev, op, "up", DType::F32);
  check_tensor(dgate, dev, op, "dgate", DType::F32);
  check_tensor(dup, dev, op, "dup", DType::F32);
  check_same_shape(up, gate, op, "up", "gate");
  check_same_shape(dout, gate, op, "dout", "gate");
  check_same_shape(dgate, gate, op, "dgate", "gate");
  check_same_shape(dup, gate, op, "dup", "gate");
  if (dev.is_cpu()) return cpu::swiglu_backward(dout, gate, up, dgate, dup);
#ifdef CRUCIBLE_WITH_CUDA
  cuda::swiglu_backward(f32(dout), f32(gate), f32(up), f32_out(dgate), f32_out(dup), gate.numel(),
                        stream.handle());
#else
  fail_no_cuda(op, dev);
#endif
}

// -------------------------------------------------------------------------- Embedding

void embedding_forward(const Tensor& ids, const Tensor& table, Tensor& out, const Stream& stream) {
  const char* op = "embedding_forward";
  const Device dev = device_of(table, op, "table");
  check_embedding(op, dev, ids, table, "table", out, "out");
  if (dev.is_cpu()) return cpu::embedding_forward(ids, table, out);
#ifdef CRUCIBLE_WITH_CUDA
  cuda::embedding_forward(i32(ids), f32(table), f32_out(out), ids.dim(0), table.dim(0), table.dim(1),
                          stream.handle());
#else
  fail_no_cuda(op, dev);
#endif
}

void embedding_backward(const Tensor& dout, const Tensor& ids, Tensor& dtable, const Stream& stream) {
  const char* op = "embedding_backward";
  const Device dev = device_of(dtable, op, "dtable");
  check_embedding(op, dev, ids, dtable, "dtable", dout, "dout");
  if (dev.is_cpu()) return cpu::embedding_backward(dout, ids, dtable);
#ifdef CRUCIBLE_WITH_CUDA
  cuda::embedding_backward(f32(dout), i32(ids), f32_out(dtable), ids.dim(0), dtable.dim(0), dtable.dim(1),
                           stream.handle());
#else
  fail_no_cuda(op, dev);
#endif
}

// ------------------------------------------------------------------------------- RoPE

void rope_apply(Tensor& x, const Tensor& pos, const Tensor& cos, const Tensor& sin, std::int64_t rot,
                bool interleaved, bool inverse, const Stream& stream) {
  rope_apply_at(x, 0, pos, cos, sin, rot, interleaved, inverse, stream);
}

void rope_apply_at(Tensor& x, std::int64_t offset, const Tensor& pos, const Tensor& cos, const Tensor& sin,
                   std::int64_t rot, bool interleaved, bool inverse, const Stream& stream) {
  const char* op = "rope_apply";
  const Device dev = device_of(x, op, "x");
  check_tensor(x, dev, op, "x", DType::F32);
  check_tensor(pos, dev, op, "pos", DType::I32);
  check_tensor(cos, dev, op, "cos", DType::F32);
  check_tensor(sin, dev, op, "sin", DType::F32);
  CRUCIBLE_CHECK(x.rank() == 3, op, ": ", describe(x, "x"), " must be [tokens, heads, dim]");
  const std::int64_t T = x.dim(0), d = x.dim(2), half = rot / 2;
  CRUCIBLE_CHECK(rot > 0 && rot % 2 == 0 && rot <= d, op, ": rot = ", rot,
                 " must be even, > 0 and <= the head dim of ", describe(x, "x"));
  CRUCIBLE_CHECK(offset >= 0 && offset + rot <= d, op, ": dims [", offset, ", ", offset + rot,
                 ") are outside the head dim of ", describe(x, "x"));
  CRUCIBLE_CHECK(pos.rank() == 1 && pos.dim(0) == T, op, ": ", describe(pos, "pos"), " must be [", T,
                 "] for ", describe(x, "x"));
  CRUCIBLE_CHECK(cos.rank() == 2 && cos.dim(1) == half, op, ": ", describe(cos, "cos"), " must be [max_pos, ",
                 half, "] for rot = ", rot);
  check_same_shape(sin, cos, op, "sin", "cos");
  if (dev.is_cpu()) return cpu::rope_apply(x, offset, pos, cos, sin, rot, interleaved, inverse);
#ifdef CRUCIBLE_WITH_CUDA
  cuda::rope_apply(f32_out(x), i32(pos), f32(cos), f32(sin), T, x.dim(1), d, offset, rot, cos.dim(0), interleaved,
                   inverse, stream.handle());
#else
  fail_no_cuda(op, dev);
#endif
}

}  // namespace crucible::ops
