// model/mla_attention.cpp: MLA forward/backward (mirrored).
#include "model/mla_attention.h"

#include <optional>

#include "core/profile.h"
#include "kernels/attention.h"
#include "kernels/elementwise.h"
#include "kernels/tensor_ops.h"

namespace crucible {

MlaParams mla_params(const ModelWeights& w, std::int64_t layer) {
  const std::string a = "model.layers." + std::to_string(layer) + ".self_attn.";
  MlaParams p;
  if (w.config().q_lora_rank > 0) {
    p.q_a = param(w, a + "q_a_proj.weight");
    p.q_a_norm = param(w, a + "q_a_layernorm.weight");
    p.q_b = param(w, a + "q_b_proj.weight");
  } else {
    p.q = param(w, a + "q_proj.weight");
  }
  p.kv_a = param(w, a + "kv_a_proj_with_mqa.weight");
  p.kv_a_norm = param(w, a + "kv_a_layernorm.weight");
  p.kv_b = param(w, a + "kv_b_proj.weight");
  p.o = param(w, a + "o_proj.weight");
  return p;
}

void mla_forward(const ModelConfig& c, const MlaParams& p, const Tensor& x, const SeqLayout& seq,
                 Tensor& y, MlaSaved& s) {
  const Device dev = x.device();
  const std::int64_t T = x.dim(0), nh = c.num_attention_heads;
  const std::int64_t nope = c.qk_nope_head_dim, rope = c.qk_rope_head_dim, dqk = nope + rope;
  const std::int64_t dv = c.v_head_dim, kvr = c.kv_lora_rank;
  const auto prec = linear_precision(c);
  const float eps = static_cast<float>(c.rms_norm_eps);
  s.x = x;

  // The projections of x: q_a (or q) and kv_a, as one pair (x's GEMM form made once).
  s.q = Tensor::empty(Shape{T, nh, dqk}, DType::F32, dev, "mla.q");
  Tensor q2 = s.q.reshape(Shape{T, nh * dqk});
  Tensor kv_a = activation(dev, T, kvr + rope, "mla.kv_a");  // [T, kv_lora + rope]
  if (c.q_lora_rank > 0) {
    s.cq = activation(dev, T, c.q_lora_rank, "mla.cq");
    ops::linear_pair_forward(x, p.q_a.w, p.kv_a.w, s.cq, kv_a, prec);
    // Queries through their low rank.
    s.cq_n = activation(dev, T, c.q_lora_rank, "mla.cq_n");
    s.cq_rstd = Tensor(Shape{T}, DType::F32, dev, "mla.cq_rstd");
    ops::rmsnorm_forward(s.cq, p.q_a_norm.w, eps, s.cq_n, s.cq_rstd);
    ops::linear_forward(s.cq_n, p.q_b.w, Tensor(), q2, prec);
  } else {
    ops::linear_pair_forward(x, p.q.w, p.kv_a.w, q2, kv_a, prec);
  }

  // Keys and values through the latent.
  s.ckv = activation(dev, T, kvr, "mla.ckv");
  ops::copy_columns(kv_a, 0, s.ckv, 0, kvr);
  Tensor k_rope = Tensor::empty(Shape{T, 1, rope}, DType::F32, dev, "mla.k_rope");
  ops::copy_columns(kv_a, kvr, k_rope, 0, rope);
  s.ckv_n = activation(dev, T, kvr, "mla.ckv_n");
  s.ckv_rstd = Tensor(Shape{T}, DType::F32, dev, "mla.ckv_rstd");
  ops::rmsnorm_forward(s.ckv, p.kv_a_norm.w, eps, s.ckv_n, s.ckv_rstd);
  Tensor kv = activation(dev, T, nh * (nope + dv), "mla.kv");  // [T, nh, nope + dv]
  ops::linear_forward(s.ckv_n, p.kv_b.w, Tensor(), kv, prec);

  // RoPE on the rope dims (interleaved): the shared key once, each query head in place.
  ops::rope_apply(k_rope, seq.pos, seq.rope->cos, seq.rope->sin, rope, true);
  ops::rope_apply_at(s.q, nope, seq.pos, seq.rope->cos, seq.rope->sin, rope, true);

  std::optional<profile::Scope> part;
  part.emplace("mla.fwd.headcopy");
  s.k = Tensor::empty(Shape{T, nh, dqk}, DType::F32, dev, "mla.k");
  s.v = Tensor::empty(Shape{T, nh, dv}, DType::F32, dev, "mla.v");
  Tensor k2 = s.k.reshape(Shape{T, nh * dqk});
  Tensor k_rows = s.k.reshape(Shape{T * nh, dqk}), v_rows = s.v.reshape(Shape{T * nh, dv});
  const Tensor kv_rows = kv.reshape(Shape{T * nh, nope + dv});
  Tensor kr2 = k_rope.reshape(Shape{T, rope});
  // Per-head column blocks move as one copy each: [T, nh, d] viewed as [T nh, d] rows.
  ops::copy_columns(kv_rows, 0, k_rows, 0, nope);
  ops::copy_columns(kv_rows, nope, v_rows, 0, dv);
  ops::repeat_columns(kr2, 0, k2, nope, rope, nh, dqk);  // the shared rope key, to every head

  part.reset();
  s.o = Tensor::empty(Shape{T, nh, dv}, DType::F32, dev, "mla.o");
  s.lse = Tensor::empty(Shape{T, nh}, DType::F32, dev, "mla.lse");
  CRUCIBLE_PROFILE_SCOPE("mla.fwd.core+o");
  ops::attention_forward(s.q, s.k, s.v, seq.cu_seqlens, static_cast<float>(c.softmax_scale()), s.o, s.lse, Stream(),
                         &s.qkv16);
  ops::linear_forward(s.o.reshape(Shape{T, nh * dv}), p.o.w, Tensor(), y, prec);
}

void mla_backward(const ModelConfig& c, MlaParams& p, const Tensor& dy, const SeqLayout& seq,
                  const MlaSaved& s, Tensor& dx) {
  const Device dev = dy.device();
  const std::int64_t T = dy.dim(0), nh = c.num_attention_heads;
  const std::int64_t nope = c.qk_nope_head_dim, rope = c.qk_rope_head_dim, dqk = nope + rope;
  const std::int64_t dv = c.v_head_dim, kvr = c.kv_lora_rank;
  const auto prec = linear_precision(c);
  Tensor none;

  Tensor d_o = activation(dev, T, nh * dv, "mla.do");
  ops::linear_backward(dy, s.o.reshape(Shape{T, nh * dv}), p.o.w, d_o, p.o.g, none, prec);
  // Written whole by the op that follows each allocation (tests/model run poisoned).
  Tensor dq = Tensor::empty(Shape{T, nh, dqk}, DType::F32, dev), dk = Tensor::empty(Shape{T, nh, dqk}, DType::F32, dev);
  Tensor dv_ = Tensor::empty(Shape{T, nh, dv}, DType::F32, dev);
  std::optional<profile::Scope> part;
  part.emplace("mla.bwd.core");
  ops::attention_backward(d_o.reshape(Shape{T, nh, dv}), s.q, s.k, s.v, s.o, s.lse, seq.cu_seqlens,
                          static_cast<float>(c.softmax_scale()), dq, dk, dv_, Stream(), &s.qkv16);
  part.reset();
  part.emplace("mla.bwd.headcopy");
  Tensor dq2 = dq.reshape(Shape{T, nh * dqk}), dk2 = dk.reshape(Shape{T, nh * dqk});
  Tensor dk_rows = dk.reshape(Shape{T * nh, dqk});
  const Tensor dv_rows = dv_.reshape(Shape{T * nh, dv});

  // Split head gradients back into kv_b's output, the shared rope key and q's rope dims.
  Tensor dkv = activation(dev, T, nh * (nope + dv), "mla.dkv");
  Tensor dk_rope(Shape{T, 1, rope}, DType::F32, dev);
  Tensor dkr2 = dk_rope.reshape(Shape{T, rope});
  Tensor dkv_rows = dkv.reshape(Shape{T * nh, nope + dv});
  ops::copy_columns(dk_rows, 0, dkv_rows, 0, nope);
  ops::copy_columns(dv_rows, 0, dkv_rows, nope, dv);
  ops::sum_repeated_columns(dk2, nope, rope, nh, dqk, dkr2, 0);  // the shared key's gradient (zeroed storage), head order
  ops::rope_apply(dk_rope, seq.pos, seq.rope->cos, seq.rope->sin, rope, true, true);
  ops::rope_apply_at(dq, nope, seq.pos, seq.rope->cos, seq.rope->sin, rope, true, true);

  part.reset();
  // Keys/values path: kv_b, kv_a_layernorm, kv_a.
  Tensor dckv_n = activation(dev, T, kvr, "mla.dckv_n");
  ops::linear_backward(dkv, s.ckv_n, p.kv_b.w, dckv_n, p.kv_b.g, none, prec);
  Tensor dkv_a = activation(dev, T, kvr + rope, "mla.dkv_a");
  Tensor dckv = activation(dev, T, kvr, "mla.dckv");
  ops::rmsnorm_backward(dckv_n, s.ckv, p.kv_a_norm.w, s.ckv_rstd, dckv, p.kv_a_norm.g);
  ops::copy_columns(dckv, 0, dkv_a, 0, kvr);
  ops::copy_columns(dkr2, 0, dkv_a, kvr, rope);

  // Query path, then both projections of x as one pair: dx = dq_x + dkv_x.
  if (c.q_lora_rank > 0) {
    Tensor dcq_n = activation(dev, T, c.q_lora_rank, "mla.dcq_n");
    ops::linear_backward(dq2, s.cq_n, p.q_b.w, dcq_n, p.q_b.g, none, prec);
    Tensor dcq = activation(dev, T, c.q_lora_rank, "mla.dcq");
    ops::rmsnorm_backward(dcq_n, s.cq, p.q_a_norm.w, s.cq_rstd, dcq, p.q_a_norm.g);
    ops::linear_pair_backward(dcq, dkv_a, s.x, p.q_a.w, p.kv_a.w, dx, p.q_a.g, p.kv_a.g, prec);
  } else {
    ops::linear_pair_backward(dq2, dkv_a, s.x, p.q.w, p.kv_a.w, dx, p.q.g, p.kv_a.g, prec);
  }
}

}  // namespace crucible
