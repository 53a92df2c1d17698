// model/transformer.cpp: the composed forward and its mirrored backward.
#include "model/transformer.h"

#include <algorithm>

#include "core/profile.h"
#include "kernels/elementwise.h"
#include "kernels/tensor_ops.h"

namespace crucible {

Batch Batch::from_sequences(const std::vector<std::vector<std::int32_t>>& seqs) {
  std::int64_t T = 0;
  for (const auto& s : seqs) T += static_cast<std::int64_t>(s.size());
  Batch b;
  b.ids = Tensor(Shape{T}, DType::I32, Device::cpu(), "batch.ids");
  b.targets = Tensor(Shape{T}, DType::I32, Device::cpu(), "batch.targets");
  b.pos = Tensor(Shape{T}, DType::I32, Device::cpu(), "batch.pos");
  b.cu_seqlens = Tensor(Shape{static_cast<std::int64_t>(seqs.size()) + 1}, DType::I32, Device::cpu(), "batch.cu");
  std::int32_t* ids = b.ids.data<std::int32_t>();
  std::int32_t* tg = b.targets.data<std::int32_t>();
  std::int32_t* pos = b.pos.data<std::int32_t>();
  std::int32_t* cu = b.cu_seqlens.data<std::int32_t>();
  std::int32_t t = 0;
  cu[0] = 0;
  for (std::size_t i = 0; i < seqs.size(); ++i) {
    const auto& s = seqs[i];
    for (std::size_t j = 0; j < s.size(); ++j, ++t) {
      ids[t] = s[j];
      tg[t] = j + 1 < s.size() ? s[j + 1] : s[j];
      pos[t] = static_cast<std::int32_t>(j);
    }
    cu[i + 1] = t;
  }
  return b;
}

Batch Batch::to(Device device) const {
  if (ids.device() == device) return *this;
  Batch b;
  b.ids = ids.to(device);
  b.targets = targets.to(device);
  b.pos = pos.to(device);
  b.cu_seqlens = cu_seqlens.to(device);
  return b;
}

Transformer::Transformer(ModelWeights& weights) : w_(weights) {}

Tensor Transformer::head_weight() const {
  return config().tie_word_embeddings ? w_.param("model.embed_tokens.weight") : w_.param("lm_head.weight");
}

ops::LogprobHeadOptions Transformer::head_options() const {
  ops::LogprobHeadOptions o;
  o.bf16 = config().precision != Precision::Fp32;
  return o;
}

Device Transformer::device() const { return w_.device(); }

void Transformer::set_kv_cache_dtype(std::optional<DType> dtype) {
  CRUCIBLE_USER_CHECK(!dtype || *dtype == DType::F32 || *dtype == DType::BF16, "KV cache dtype must be f32 or bf16, got ",
                      dtype_name(*dtype));
  kv_cache_dtype_ = dtype;
}

const RopeTable& Transformer::rope_for(const Tensor& pos) {
  std::int32_t max_pos = 0;
  const Tensor pos_host = on_host(pos);
  for (std::int32_t p : pos_host.span<std::int32_t>()) max_pos = std::max(max_pos, p);
  CRUCIBLE_USER_CHECK(max_pos < config().max_position_embeddings, "position ", max_pos,
                      " exceeds max_position_embeddings (", config().max_position_embeddings, ")");
  if (!rope_.cos.defined() || rope_.cos.dim(0) <= max_pos) {
    // Grow geometrically so that decoding does not rebuild the table every token.
    const std::int64_t want = std::min<std::int64_t>(config().max_position_embeddings,
                                                     std::max<std::int64_t>(256, 2 * (max_pos + 1)));
    rope_ = make_rope_table(config(), want, device());
  }
  return rope_;
}

Tensor Transformer::layer_forward(std::int64_t l, bool moe, const Tensor& h, LayerState& ls, ForwardState& st) {
  const ModelConfig& c = config();
  const std::int64_t T = h.dim(0), H = c.hidden_size;
  const float eps = static_cast<float>(c.rms_norm_eps);
  const std::string p = "model.layers." + std::to_string(l) + ".";
  const Device dev = h.device();
  CRUCIBLE_PROFILE_SCOPE("fwd.layer");
  ls.h_in = h;
  ls.a = activation(dev, T, H, "attn_in");
  ls.a_rstd = Tensor(Shape{T}, DType::F32, dev);
  ops::rmsnorm_forward(h, w_.param(p + "input_layernorm.weight"), eps, ls.a, ls.a_rstd);
  Tensor attn_out = activation(dev, T, H, "attn_out");
  {
    CRUCIBLE_PROFILE_SCOPE("fwd.attn");
    if (c.is_mla()) mla_forward(c, mla_params(w_, l), ls.a, st.seq, attn_out, ls.mla);
    else gqa_forward(c, gqa_params(w_, l), ls.a, st.seq, attn_out, ls.gqa);
  }
  ls.h_mid = h.clone();
  ops::axpy(1.0f, attn_out, ls.h_mid);

  ls.b = activation(dev, T, H, "ffn_in");
  ls.b_rstd = Tensor(Shape{T}, DType::F32, dev);
  ops::rmsnorm_forward(ls.h_mid, w_.param(p + "post_attention_layernorm.weight"), eps, ls.b, ls.b_rstd);
  Tensor ffn_out = activation(dev, T, H, "ffn_out");
  ls.moe_layer = moe;
  if (moe) {
    CRUCIBLE_PROFILE_SCOPE("fwd.moe");
    moe_forward(c, moe_params(w_, l), ls.b, st.seq.cu_host, ffn_out, ls.moe);
    st.aux_loss += ls.moe.balance_loss;
  } else {
    CRUCIBLE_PROFILE_SCOPE("fwd.mlp");
    mlp_forward(mlp_params(w_, p + "mlp."), ls.b, linear_precision(c), ffn_out, ls.mlp);
  }
  Tensor out = ls.h_mid.clone();
  ops::axpy(1.0f, ffn_out, out);
  return out;
}

void Transformer::layer_backward(std::int64_t l, LayerState& ls, ForwardState& st, Tensor& dh) {
  const ModelConfig& c = config();
  const std::int64_t T = dh.dim(0), H = c.hidden_size;
  const std::string p = "model.layers." + std::to_string(l) + ".";
  const Device dev = dh.device();
  CRUCIBLE_PROFILE_SCOPE("bwd.layer");
  // FFN residual: dh flows through unchanged and through FFN(RMSNorm(h_mid)).
  Tensor db = activation(dev, T, H, "d_ffn_in");
  if (ls.moe_layer) {
    CRUCIBLE_PROFILE_SCOPE("bwd.moe");
    MoeParams mp = moe_params(w_, l);
    moe_backward(c, mp, dh, st.seq.cu_host, ls.moe, db, st.aux_weight);
  } else {
    CRUCIBLE_PROFILE_SCOPE("bwd.mlp");
    MlpParams mp = mlp_params(w_, p + "mlp.");
    mlp_backward(mp, dh, ls.mlp, linear_precision(c), db);
  }
  Tensor dmid = activation(dev, T, H, "d_h_mid");
  Tensor gpost = w_.grad(p + "post_attention_layernorm.weight");
  ops::rmsnorm_backward(db, ls.h_mid, w_.param(p + "post_attention_layernorm.weight"), ls.b_rstd, dmid, gpost);
  ops::axpy(1.0f, dmid, dh);
  // Attention residual.
  Tensor da = activation(dev, T, H, "d_attn_in");
  {
    CRUCIBLE_PROFILE_SCOPE("bwd.attn");
    if (c.is_mla()) {
      MlaParams ap = mla_params(w_, l);
      mla_backward(c, ap, dh, st.seq, ls.mla, da);
    } else {
      GqaParams ap = gqa_params(w_, l);
      gqa_backward(c, ap, dh, st.seq, ls.gqa, da);
    }
  }
  Tensor din = activation(dev, T, H, "d_h_in");
  Tensor gin = w_.grad(p + "input_layernorm.weight");
  ops::rmsnorm_backward(da, ls.h_in, w_.param(p + "input_layernorm.weight"), ls.a_rstd, din, gin);
  ops::axpy(1.0f, din, dh);
}

Tensor Transformer::forward_hidden(const Batch& batch, ForwardState& st) {
  const ModelConfig& c = config();
  const std::int64_t T = batch.tokens(), H = c.hidden_size;
  const float eps = static_cast<float>(c.rms_norm_eps);
  const Device dev = device();
  CRUCIBLE_CHECK(batch.ids.device() == dev, "batch on ", batch.ids.device().str(), ", model on ", dev.str(),
                 " (Batch::to moves it)");
  st.seq = {batch.pos, batch.cu_seqlens, on_host(batch.cu_seqlens), &rope_for(batch.pos)};
  st.ids = batch.ids;
  st.targets = batch.targets;
  st.layers.assign(c.num_hidden_layers, LayerState());
  st.aux_loss = 0;

  Tensor h = activation(dev, T, H, "embed");
  CRUCIBLE_PROFILE_SCOPE("fwd.body");  // embedding, layers, final norm
  ops::embedding_forward(batch.ids, w_.param("model.embed_tokens.weight"), h);
  for (std::int64_t l = 0; l < c.num_hidden_layers; ++l) h = layer_forward(l, c.is_moe_layer(l), h, st.layers[l], st);
  st.h_last = h;
  st.hf = activation(dev, T, H, "final_norm");
  st.hf_rstd = Tensor(Shape{T}, DType::F32, dev);
  ops::rmsnorm_forward(h, w_.param("model.norm.weight"), eps, st.hf, st.hf_rstd);
  return st.hf;
}

Tensor Transformer::forward_logprobs(const Batch& batch, ForwardState& st, Tensor* entropy) {
  const Tensor hf = forward_hidden(batch, st);
  const std::int64_t T = batch.tokens();
  const Device dev = device();
  Tensor logp(Shape{T}, DType::F32, dev, "logp");
  st.lse = Tensor(Shape{T}, DType::F32, dev, "head.lse");
  Tensor ent;
  ops::LogprobHeadOptions opts = head_options();
  if (entropy) {
    ent = Tensor(Shape{T}, DType::F32, dev, "entropy");
    opts.entropy = true;
  }
  {
    CRUCIBLE_PROFILE_SCOPE("fwd.head");
    ops::logprob_head_forward(hf, head_weight(), batch.targets, logp, st.lse, ent, opts);
  }
  if (entropy) *entropy = ent;
  return logp;
}

void Transformer::backward(const Tensor& dlogp, ForwardState& st, const Tensor* extra_dh_last,
                           const Tensor* extra_dhf) {
  const ModelConfig& c = config();
  CRUCIBLE_CHECK(w_.has_grads(), "backward needs a gradient arena");
  const std::int64_t T = dlogp.numel(), H = c.hidden_size;
  const Device dev = device();
  CRUCIBLE_PROFILE_SCOPE("bwd.total");  // head, layers, embedding
  const std::string head_name = c.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight";
  Tensor dhf = activation(dev, T, H, "d_final_norm");
  Tensor dhead = w_.grad(head_name);
  {
    CRUCIBLE_PROFILE_SCOPE("bwd.head");
    ops::logprob_head_backward(dlogp, st.hf, head_weight(), st.targets, st.lse, dhf, dhead, head_options());
  }
  if (extra_dhf) ops::axpy(1.0f, *extra_dhf, dhf);
  Tensor dh = activation(dev, T, H, "d_h");
  {
    Tensor g = w_.grad("model.norm.weight");
    ops::rmsnorm_backward(dhf, st.h_last, w_.param("model.norm.weight"), st.hf_rstd, dh, g);
  }
  if (extra_dh_last) ops::axpy(1.0f, *extra_dh_last, dh);
  for (std::int64_t l = c.num_hidden_layers - 1; l >= 0; --l) {
    layer_backward(l, st.layers[l], st, dh);
    if (st.layer_grads_done) st.layer_grads_done(l);
  }
  Tensor gemb = w_.grad("model.embed_tokens.weight");
  ops::embedding_backward(dh, st.ids, gemb);
}

std::vector<std::vector<std::int64_t>> Transformer::expert_load(const ForwardState& st) const {
  std::vector<std::vector<std::int64_t>> out;
  for (std::int64_t l = 0; l < config().num_hidden_layers; ++l)
    if (config().is_moe_layer(l)) out.push_back(st.layers[l].moe.load);
  return out;
}

}  // namespace crucible
