// kernels/attention.cpp: validation and device dispatch of causal packed attention
// (kernels/attention.h).
//
// Each op checks dtypes, shapes and that its tensors share one device, then runs the
// CPU reference (kernels/cpu/attention.cpp) or the CUDA twin (kernels/cuda/
// attention_forward.cu, attention_backward.cu). The values of cu_seqlens belong to the
// backends: the CPU throws naming the bad offset; the CUDA kernels print it and trap,
// since reading them here would cost a device-to-host copy and a synchronization.
#include "kernels/attention.h"

#include "core/error.h"
#include "kernels/cpu/attention_cpu.h"
#ifdef CRUCIBLE_WITH_CUDA
#include "kernels/cuda/attention_cuda.h"
#endif

namespace crucible::ops {

namespace {

struct AttnShape {
  std::int64_t T, Hq, Hkv, dqk, dv, n_seq;
};

void check_f32(const Tensor& t, Device dev, const char* what, const Shape& want) {
  CRUCIBLE_CHECK(t.defined() && t.dtype() == DType::F32, what, " (", t.name(), ") must be a defined f32 tensor");
  CRUCIBLE_CHECK(t.device() == dev, what, " (", t.name(), ") is on ", t.device().str(), " but the op runs on ",
                 dev.str(), " (all its tensors must share one device)");
  CRUCIBLE_CHECK(t.shape() == want, what, " (", t.name(), ") has shape ", t.shape().str(), ", expected ",
                 want.str());
}

AttnShape check_inputs(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& cu_seqlens,
                       const char* op) {
  for (const Tensor* t : {&q, &k, &v})
    CRUCIBLE_CHECK(t->defined() && t->rank() == 3, op, ": q, k, v must be [T, heads, dim]; got ", t->name(), " ",
                   t->defined() ? t->shape().str() : "undefined");
  AttnShape d{};
  d.T = q.dim(0);
  d.Hq = q.dim(1);
  d.dqk = q.dim(2);
  d.Hkv = k.dim(1);
  d.dv = v.dim(2);
  CRUCIBLE_CHECK(d.Hkv > 0 && d.Hq % d.Hkv == 0, op, ": query heads ", d.Hq, " (q ", q.shape().str(),
                 ") must be a multiple of key/value heads ", d.Hkv, " (k ", k.shape().str(), ")");
  const Device dev = q.device();
  check_f32(q, dev, "attention q", q.shape());
  check_f32(k, dev, "attention k", Shape{d.T, d.Hkv, d.dqk});
  check_f32(v, dev, "attention v", Shape{d.T, d.Hkv, d.dv});
  CRUCIBLE_CHECK(cu_seqlens.defined() && cu_seqlens.device() == dev && cu_seqlens.dtype() == DType::I32 &&
                     cu_seqlens.rank() == 1 && cu_seqlens.numel() >= 1,
                 op, ": cu_seqlens (", cu_seqlens.name(), ") must be an i32 [B + 1] tensor on ", dev.str(),
                 " (the device of q)");
  d.n_seq = cu_seqlens.numel() - 1;
  return d;
}

[[maybe_unused]] const float* f32(const Tensor& t) { return static_cast<const float*>(t.raw()); }
[[maybe_unused]] float* f32_out(Tensor& t) { return static_cast<float*>(t.raw()); }

#ifdef CRUCIBLE_WITH_CUDA
cuda::AttentionShape cuda_shape(const AttnShape& d) { return {d.T, d.Hq, d.Hkv, d.dqk, d.dv, d.n_seq}; }

std::uint16_t* bf16_of(const Tensor& t) { return t.defined() ? static_cast<std::uint16_t*>(t.raw()) : nullptr; }

// kept's tensors, checked against q, k, v: BF16 of their shapes on their device.
cuda::Bf16Qkv kept_operands(const AttentionOperands* kept, const Tensor& q, const Tensor& k, const Tensor& v) {
  if (kept == nullptr || !kept->q.defined()) return {};
  const std::pair<const Tensor*, const Tensor*> pairs[] = {{&kept->q, &q}, {&kept->k, &k}, {&kept->v, &v}};
  for (const auto& [b, f] : pairs)
    CRUCIBLE_CHECK(b->defined() && b->dtype() == DType::BF16 && b->shape() == f->shape() && b->device() == f->device(),
                   "attention_backward: the kept BF16 operands do not match q, k, v (", f->name(), " ",
                   f->shape().str(), " on ", f->device().str(), ": kept ", b->defined() ? dtype_name(b->dtype()) : "none",
                   " ", b->defined() ? b->shape().str() : "", ")");
  return {bf16_of(kept->q), bf16_of(kept->k), bf16_of(kept->v)};
}
#endif

}  // namespace

void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& cu_seqlens, float scale,
                       Tensor& out, Tensor& lse, const Stream& stream, AttentionOperands* keep) {
  const char* op = "attention_forward";
  const AttnShape d = check_inputs(q, k, v, cu_seqlens, op);
  check_f32(out, q.device(), "attention_forward out", Shape{d.T, d.Hq, d.dv});
  check_f32(lse, q.device(), "attention_forward lse", Shape{d.T, d.Hq});
  if (keep) *keep = AttentionOperands{};
  if (q.device().is_cpu()) return cpu::attention_forward(q, k, v, cu_seqlens, scale, out, lse);
#ifdef CRUCIBLE_WITH_CUDA
  if (keep && cuda::attention_head_dims_supported(d.dqk, d.dv))
    *keep = AttentionOperands{Tensor::empty(q.shape(), DType::BF16, q.device(), "attention.q_bf16"),
                              Tensor::empty(k.shape(), DType::BF16, q.device(), "attention.k_bf16"),
                              Tensor::empty(v.shape(), DType::BF16, q.device(), "attention.v_bf16")};
  cuda::attention_forward(f32(q), f32(k), f32(v), static_cast<const std::int32_t*>(cu_seqlens.raw()),
                          cuda_shape(d), scale, f32_out(out), f32_out(lse), stream.handle(),
                          keep ? cuda::Bf16Qkv{bf16_of(keep->q), bf16_of(keep->k), bf16_of(keep->v)} : cuda::Bf16Qkv{});
#else
  (void)stream;
  CRUCIBLE_FAIL(op, " on ", q.device().str(), " needs a CUDA build");
#endif
}

void attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                        const Tensor& lse, const Tensor& cu_seqlens, float scale, Tensor& dq, Tensor& dk,
                        Tensor& dv, const Stream& stream, const AttentionOperands* kept) {
  const char* op = "attention_backward";
  const AttnShape d = check_inputs(q, k, v, cu_seqlens, op);
  const Device dev = q.device();
  check_f32(dout, dev, "attention_backward dout", Shape{d.T, d.Hq, d.dv});
  check_f32(out, dev, "attention_backward out", Shape{d.T, d.Hq, d.dv});
  check_f32(lse, dev, "attention_backward lse", Shape{d.T, d.Hq});
  check_f32(dq, dev, "attention_backward dq", q.shape());
  check_f32(dk, dev, "attention_backward dk", k.shape());
  check_f32(dv, dev, "attention_backward dv", v.shape());
  if (dev.is_cpu()) return cpu::attention_backward(dout, q, k, v, out, lse, cu_seqlens, scale, dq, dk, dv);
#ifdef CRUCIBLE_WITH_CUDA
  cuda::attention_backward(f32(dout), f32(q), f32(k), f32(v), f32(out), f32(lse),
                           static_cast<const std::int32_t*>(cu_seqlens.raw()), cuda_shape(d), scale, f32_out(dq),
                           f32_out(dk), f32_out(dv), stream.handle(), kept_operands(kept, q, k, v));
#else
  (void)stream;
  (void)kept;
  CRUCIBLE_FAIL(op, " on ", dev.str(), " needs a CUDA build");
#endif
}

}  // namespace crucible::ops
