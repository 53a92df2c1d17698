// rollout/cached_forward.cpp: per-layer inference with GQA and absorbed-MLA caches.
#include "rollout/cached_forward.h"

#include <algorithm>
#include <cmath>

#include "kernels/elementwise.h"
#include "kernels/tensor_ops.h"
#include "model/mlp.h"
#include "model/moe.h"

namespace crucible::rollout {

namespace {

// Softmax-weighted sum over `n` cached positions: scores already scaled.
void softmax_inplace(std::vector<float>& s, std::int64_t n) {
  float mx = -INFINITY;
  for (std::int64_t t = 0; t < n; ++t) mx = std::max(mx, s[t]);
  double sum = 0;
  for (std::int64_t t = 0; t < n; ++t) sum += (s[t] = std::exp(s[t] - mx));
  const float inv = static_cast<float>(1.0 / sum);
  for (std::int64_t t = 0; t < n; ++t) s[t] *= inv;
}

struct TokenPlace {
  std::int64_t slot, pos;
};

void gqa_cached(const ModelConfig& c, const ModelWeights& w, std::int64_t layer, const Tensor& a,
                const Tensor& pos, const RopeTable& rope, const std::vector<TokenPlace>& places,
                KvCache& cache, Tensor& y) {
  const std::int64_t T = a.dim(0), nh = c.num_attention_heads, nkv = c.kv_heads(), d = c.attn_head_dim();
  const auto prec = linear_precision(c);
  const GqaParams p = gqa_params(w, layer);
  Tensor q(Shape{T, nh, d}, DType::F32), k(Shape{T, nkv, d}, DType::F32), v(Shape{T, nkv, d}, DType::F32);
  Tensor q2 = q.reshape(Shape{T, nh * d}), k2 = k.reshape(Shape{T, nkv * d}), v2 = v.reshape(Shape{T, nkv * d});
  ops::linear_forward(a, p.q.w, p.q_b.w, q2, prec);
  ops::linear_forward(a, p.k.w, p.k_b.w, k2, prec);
  ops::linear_forward(a, p.v.w, p.v_b.w, v2, prec);
  ops::rope_apply(q, pos, rope.cos, rope.sin, d, false);
  ops::rope_apply(k, pos, rope.cos, rope.sin, d, false);
  float* kc = cache.k[layer].data<float>();
  float* vc = cache.v[layer].data<float>();
  const std::int64_t row = nkv * d, slot_stride = cache.capacity * row;
  for (std::int64_t t = 0; t < T; ++t) {  // append first: a token attends to itself
    std::copy_n(k.data<float>() + t * row, row, kc + places[t].slot * slot_stride + places[t].pos * row);
    std::copy_n(v.data<float>() + t * row, row, vc + places[t].slot * slot_stride + places[t].pos * row);
  }
  const float scale = static_cast<float>(c.softmax_scale());
  Tensor o(Shape{T, nh * d}, DType::F32);
  std::vector<float> s;
  for (std::int64_t t = 0; t < T; ++t) {
    const std::int64_t n = places[t].pos + 1;
    s.resize(static_cast<std::size_t>(n));
    const float* kb = kc + places[t].slot * slot_stride;
    const float* vb = vc + places[t].slot * slot_stride;
    for (std::int64_t h = 0; h < nh; ++h) {
      const std::int64_t g = h / (nh / nkv);
      const float* qh = q.data<float>() + (t * nh + h) * d;
      for (std::int64_t j = 0; j < n; ++j) {
        float dot = 0;
        for (std::int64_t i = 0; i < d; ++i) dot += qh[i] * kb[j * row + g * d + i];
        s[j] = dot * scale;
      }
      softmax_inplace(s, n);
      float* oh = o.data<float>() + t * nh * d + h * d;
      for (std::int64_t j = 0; j < n; ++j)
        for (std::int64_t i = 0; i < d; ++i) oh[i] += s[j] * vb[j * row + g * d + i];
    }
  }
  ops::linear_forward(o, p.o.w, Tensor(), y, prec);
}

void mla_cached(const ModelConfig& c, const ModelWeights& w, std::int64_t layer, const Tensor& a,
                const Tensor& pos, const RopeTable& rope, const std::vector<TokenPlace>& places,
                KvCache& cache, Tensor& y) {
  const std::int64_t T = a.dim(0), nh = c.num_attention_heads;
  const std::int64_t nope = c.qk_nope_head_dim, rd = c.qk_rope_head_dim, dqk = nope + rd;
  const std::int64_t dv = c.v_head_dim, kvr = c.kv_lora_rank;
  const auto prec = linear_precision(c);
  const float eps = static_cast<float>(c.rms_norm_eps);
  const MlaParams p = mla_params(w, layer);

  Tensor q(Shape{T, nh * dqk}, DType::F32);
  if (c.q_lora_rank > 0) {
    Tensor cq(Shape{T, c.q_lora_rank}, DType::F32), cqn(Shape{T, c.q_lora_rank}, DType::F32), r(Shape{T}, DType::F32);
    ops::linear_forward(a, p.q_a.w, Tensor(), cq, prec);
    ops::rmsnorm_forward(cq, p.q_a_norm.w, eps, cqn, r);
    ops::linear_forward(cqn, p.q_b.w, Tensor(), q, prec);
  } else {
    ops::linear_forward(a, p.q.w, Tensor(), q, prec);
  }
  Tensor kv_a(Shape{T, kvr + rd}, DType::F32);
  ops::linear_forward(a, p.kv_a.w, Tensor(), kv_a, prec);
  Tensor ckv(Shape{T, kvr}, DType::F32), ckv_n(Shape{T, kvr}, DType::F32), r(Shape{T}, DType::F32);
  ops::copy_columns(kv_a, 0, ckv, 0, kvr);
  ops::rmsnorm_forward(ckv, p.kv_a_norm.w, eps, ckv_n, r);
  Tensor kpe(Shape{T, 1, rd}, DType::F32);
  ops::copy_columns(kv_a, kvr, kpe, 0, rd);
  ops::rope_apply(kpe, pos, rope.cos, rope.sin, rd, true);
  Tensor q_pe(Shape{T, nh, rd}, DType::F32);
  Tensor q_pe2 = q_pe.reshape(Shape{T, nh * rd});
  for (std::int64_t h = 0; h < nh; ++h) ops::copy_columns(q, h * dqk + nope, q_pe2, h * rd, rd);
  ops::rope_apply(q_pe, pos, rope.cos, rope.sin, rd, true);

  float* cc = cache.ckv[layer].data<float>();
  float* pc = cache.kpe[layer].data<float>();
  for (std::int64_t t = 0; t < T; ++t) {
    std::copy_n(ckv_n.data<float>() + t * kvr, kvr, cc + (places[t].slot * cache.capacity + places[t].pos) * kvr);
    std::copy_n(kpe.data<float>() + t * rd, rd, pc + (places[t].slot * cache.capacity + places[t].pos) * rd);
  }

  // Absorbed attention: W_UK_h = kv_b rows [h(nope+dv), +nope), W_UV_h = the next dv rows.
  const float* wkvb = p.kv_b.w.data<float>();  // [nh * (nope + dv), kvr]
  const float scale = static_cast<float>(c.softmax_scale());
  Tensor o(Shape{T, nh * dv}, DType::F32);
  std::vector<float> q_lat(static_cast<std::size_t>(kvr)), o_lat(static_cast<std::size_t>(kvr)), s;
  for (std::int64_t t = 0; t < T; ++t) {
    const std::int64_t n = places[t].pos + 1;
    s.resize(static_cast<std::size_t>(n));
    const float* cb = cc + places[t].slot * cache.capacity * kvr;
    const float* pb = pc + places[t].slot * cache.capacity * rd;
    for (std::int64_t h = 0; h < nh; ++h) {
      const float* qn = q.data<float>() + t * nh * dqk + h * dqk;  // q_nope of head h
      const float* qp = q_pe.data<float>() + (t * nh + h) * rd;
      const float* wuk = wkvb + h * (nope + dv) * kvr;
      std::fill(q_lat.begin(), q_lat.end(), 0.0f);
      for (std::int64_t j = 0; j < nope; ++j)
        for (std::int64_t cidx = 0; cidx < kvr; ++cidx) q_lat[cidx] += qn[j] * wuk[j * kvr + cidx];
      for (std::int64_t u = 0; u < n; ++u) {
        float dot = 0;
        for (std::int64_t cidx = 0; cidx < kvr; ++cidx) dot += q_lat[cidx] * cb[u * kvr + cidx];
        for (std::int64_t i = 0; i < rd; ++i) dot += qp[i] * pb[u * rd + i];
        s[u] = dot * scale;
      }
      softmax_inplace(s, n);
      std::fill(o_lat.begin(), o_lat.end(), 0.0f);
      for (std::int64_t u = 0; u < n; ++u)
        for (std::int64_t cidx = 0; cidx < kvr; ++cidx) o_lat[cidx] += s[u] * cb[u * kvr + cidx];
      const float* wuv = wuk + nope * kvr;
      float* oh = o.data<float>() + t * nh * dv + h * dv;
      for (std::int64_t i = 0; i < dv; ++i) {
        float acc = 0;
        for (std::int64_t cidx = 0; cidx < kvr; ++cidx) acc += o_lat[cidx] * wuv[i * kvr + cidx];
        oh[i] = acc;
      }
    }
  }
  ops::linear_forward(o, p.o.w, Tensor(), y, prec);
}

}  // namespace

Tensor forward_cached(Transformer& model, KvCache& cache, const std::vector<Chunk>& chunks) {
  const ModelConfig& c = model.config();
  const ModelWeights& w = model.weights();
  std::vector<std::int32_t> ids;
  std::vector<TokenPlace> places;
  for (const Chunk& ch : chunks) {
    CRUCIBLE_CHECK(ch.slot >= 0 && ch.slot < cache.slots, "cache slot ", ch.slot, " out of range");
    CRUCIBLE_USER_CHECK(cache.len[ch.slot] + static_cast<std::int64_t>(ch.tokens.size()) <= cache.capacity,
                        "sequence in slot ", ch.slot, " exceeds the KV cache capacity of ", cache.capacity, " tokens");
    for (std::size_t i = 0; i < ch.tokens.size(); ++i) {
      ids.push_back(ch.tokens[i]);
      places.push_back({ch.slot, cache.len[ch.slot] + static_cast<std::int64_t>(i)});
    }
  }
  const std::int64_t T = static_cast<std::int64_t>(ids.size()), H = c.hidden_size;
  Tensor ids_t(Shape{T}, DType::I32), pos(Shape{T}, DType::I32), cu(Shape{2}, DType::I32);
  for (std::int64_t t = 0; t < T; ++t) {
    ids_t.data<std::int32_t>()[t] = ids[t];
    pos.data<std::int32_t>()[t] = static_cast<std::int32_t>(places[t].pos);
  }
  cu.data<std::int32_t>()[1] = static_cast<std::int32_t>(T);
  const RopeTable& rope = model.rope_for(pos);
  const float eps = static_cast<float>(c.rms_norm_eps);

  Tensor h(Shape{T, H}, DType::F32);
  ops::embedding_forward(ids_t, w.param("model.embed_tokens.weight"), h);
  Tensor a(Shape{T, H}, DType::F32), r(Shape{T}, DType::F32), out(Shape{T, H}, DType::F32);
  for (std::int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    ops::rmsnorm_forward(h, w.param(p + "input_layernorm.weight"), eps, a, r);
    if (c.is_mla()) mla_cached(c, w, l, a, pos, rope, places, cache, out);
    else gqa_cached(c, w, l, a, pos, rope, places, cache, out);
    ops::axpy(1.0f, out, h);
    ops::rmsnorm_forward(h, w.param(p + "post_attention_layernorm.weight"), eps, a, r);
    if (c.is_moe_layer(l)) {
      MoeSaved saved;
      moe_forward(c, moe_params(w, l), a, cu, out, saved);
    } else {
      MlpSaved saved;
      mlp_forward(mlp_params(w, p + "mlp."), a, linear_precision(c), out, saved);
    }
    ops::axpy(1.0f, out, h);
  }
  for (const Chunk& ch : chunks) cache.len[ch.slot] += static_cast<std::int64_t>(ch.tokens.size());
  Tensor hf(Shape{T, H}, DType::F32, Device::cpu(), "final_norm");
  ops::rmsnorm_forward(h, w.param("model.norm.weight"), eps, hf, r);
  return hf;
}

}  // namespace crucible::rollout
