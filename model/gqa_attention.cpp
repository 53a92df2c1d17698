// model/gqa_attention.cpp: GQA forward/backward (mirrored).
#include "model/gqa_attention.h"

#include <cmath>

#include "kernels/attention.h"
#include "kernels/elementwise.h"
#include "kernels/tensor_ops.h"

namespace crucible {

GqaParams gqa_params(const ModelWeights& w, std::int64_t layer) {
  const std::string a = "model.layers." + std::to_string(layer) + ".self_attn.";
  GqaParams p{param(w, a + "q_proj.weight"), param(w, a + "k_proj.weight"),
              param(w, a + "v_proj.weight"), param(w, a + "o_proj.weight"), {}, {}, {}};
  if (w.config().attention_bias) {
    p.q_b = param(w, a + "q_proj.bias");
    p.k_b = param(w, a + "k_proj.bias");
    p.v_b = param(w, a + "v_proj.bias");
  }
  return p;
}

void gqa_forward(const ModelConfig& c, const GqaParams& p, const Tensor& x, const SeqLayout& seq,
                 Tensor& y, GqaSaved& s) {
  const Device dev = x.device();
  const std::int64_t T = x.dim(0), nh = c.num_attention_heads, nkv = c.kv_heads(), d = c.attn_head_dim();
  const auto prec = linear_precision(c);
  s.x = x;
  s.q = Tensor::empty(Shape{T, nh, d}, DType::F32, dev, "attn.q");
  s.k = Tensor::empty(Shape{T, nkv, d}, DType::F32, dev, "attn.k");
  s.v = Tensor::empty(Shape{T, nkv, d}, DType::F32, dev, "attn.v");
  Tensor q2 = s.q.reshape(Shape{T, nh * d}), k2 = s.k.reshape(Shape{T, nkv * d}), v2 = s.v.reshape(Shape{T, nkv * d});
  ops::linear_forward(x, p.q.w, p.q_b.w, q2, prec);
  ops::linear_forward(x, p.k.w, p.k_b.w, k2, prec);
  ops::linear_forward(x, p.v.w, p.v_b.w, v2, prec);
  ops::rope_apply(s.q, seq.pos, seq.rope->cos, seq.rope->sin, d, false);
  ops::rope_apply(s.k, seq.pos, seq.rope->cos, seq.rope->sin, d, false);
  s.o = Tensor::empty(Shape{T, nh, d}, DType::F32, dev, "attn.o");
  s.lse = Tensor::empty(Shape{T, nh}, DType::F32, dev, "attn.lse");
  ops::attention_forward(s.q, s.k, s.v, seq.cu_seqlens, static_cast<float>(c.softmax_scale()), s.o, s.lse, Stream(),
                         &s.qkv16);
  ops::linear_forward(s.o.reshape(Shape{T, nh * d}), p.o.w, Tensor(), y, prec);
}

void gqa_backward(const ModelConfig& c, GqaParams& p, const Tensor& dy, const SeqLayout& seq,
                  const GqaSaved& s, Tensor& dx) {
  const Device dev = dy.device();
  const std::int64_t T = dy.dim(0), nh = c.num_attention_heads, nkv = c.kv_heads(), d = c.attn_head_dim();
  const auto prec = linear_precision(c);
  Tensor none;
  Tensor d_o = activation(dev, T, nh * d, "attn.do");
  ops::linear_backward(dy, s.o.reshape(Shape{T, nh * d}), p.o.w, d_o, p.o.g, none, prec);
  // Written whole by the op that follows each allocation (tests/model run poisoned).
  Tensor dq = Tensor::empty(Shape{T, nh, d}, DType::F32, dev), dk = Tensor::empty(Shape{T, nkv, d}, DType::F32, dev);
  Tensor dv = Tensor::empty(Shape{T, nkv, d}, DType::F32, dev);
  ops::attention_backward(d_o.reshape(Shape{T, nh, d}), s.q, s.k, s.v, s.o, s.lse, seq.cu_seqlens,
                          static_cast<float>(c.softmax_scale()), dq, dk, dv, Stream(), &s.qkv16);
  // RoPE is a rotation: its backward is the inverse rotation.
  ops::rope_apply(dq, seq.pos, seq.rope->cos, seq.rope->sin, d, false, true);
  ops::rope_apply(dk, seq.pos, seq.rope->cos, seq.rope->sin, d, false, true);
  Tensor dx_part = activation(dev, T, c.hidden_size, "attn.dx_part");
  ops::linear_backward(dq.reshape(Shape{T, nh * d}), s.x, p.q.w, dx, p.q.g, p.q_b.g, prec);
  ops::linear_backward(dk.reshape(Shape{T, nkv * d}), s.x, p.k.w, dx_part, p.k.g, p.k_b.g, prec);
  ops::axpy(1.0f, dx_part, dx);
  ops::linear_backward(dv.reshape(Shape{T, nkv * d}), s.x, p.v.w, dx_part, p.v.g, p.v_b.g, prec);
  ops::axpy(1.0f, dx_part, dx);
}

}  // namespace crucible
