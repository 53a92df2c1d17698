// rollout/cached_forward.cpp: per-layer inference with GQA and absorbed-MLA caches.
//
// The attention over the cache is kernels/decode_attention.h (gqa_decode, mla_decode,
// kv_cache_append, mla_absorb_query/output): every new token carries its slot and its
// position, appends its keys (or latent) first and then attends to positions 0 .. pos
// of its slot, so prefill chunks and single decode tokens of different sequences run
// in one batch. Everything runs on the device of the model weights; only the token
// ids, positions, slots and lengths are assembled on the host, and go over in one copy.
// Every temporary is written whole by the op that makes it (Tensor::empty: no memset).
#include "rollout/cached_forward.h"

#include <algorithm>
#include <cmath>

#include "kernels/decode_attention.h"
#include "kernels/elementwise.h"
#include "kernels/tensor_ops.h"
#include "model/mlp.h"
#include "model/moe.h"

namespace crucible::rollout {

namespace {

// Where the new tokens go, on the weights' device.
struct Places {
  Tensor slot;  // [T] i32: cache slot of each token
  Tensor pos;   // [T] i32: its position (= cache.len[slot] + offset in its chunk)
  Tensor len;   // [T] i32: positions it attends to (pos + 1: itself included)
  std::int64_t max_len = 0;  // max over len
};

void gqa_cached(const ModelConfig& c, const ModelWeights& w, std::int64_t layer, const Tensor& a,
                const Tensor& pos, const RopeTable& rope, const Places& pl, KvCache& cache, Tensor& y) {
  const Device dev = a.device();
  const std::int64_t T = a.dim(0), nh = c.num_attention_heads, nkv = c.kv_heads(), d = c.attn_head_dim();
  const auto prec = linear_precision(c);
  const GqaParams p = gqa_params(w, layer);
  Tensor q = Tensor::empty(Shape{T, nh, d}, DType::F32, dev, "gqa.q"),
         k = Tensor::empty(Shape{T, nkv, d}, DType::F32, dev, "gqa.k"),
         v = Tensor::empty(Shape{T, nkv, d}, DType::F32, dev, "gqa.v");
  Tensor q2 = q.reshape(Shape{T, nh * d}), k2 = k.reshape(Shape{T, nkv * d}), v2 = v.reshape(Shape{T, nkv * d});
  ops::linear_forward(a, p.q.w, p.q_b.w, q2, prec);
  ops::linear_forward(a, p.k.w, p.k_b.w, k2, prec);
  ops::linear_forward(a, p.v.w, p.v_b.w, v2, prec);
  ops::rope_apply(q, pos, rope.cos, rope.sin, d, false);
  ops::rope_apply(k, pos, rope.cos, rope.sin, d, false);
  // Append first: a token attends to itself.
  ops::kv_cache_append(k, pl.slot, pl.pos, cache.k[layer]);
  ops::kv_cache_append(v, pl.slot, pl.pos, cache.v[layer]);
  Tensor o = Tensor::empty(Shape{T, nh, d}, DType::F32, dev, "gqa.o");  // [T, nh, d]
  ops::gqa_decode(q, cache.k[layer], cache.v[layer], pl.slot, pl.len, pl.max_len,
                  static_cast<float>(c.softmax_scale()), o);
  ops::linear_forward(o.reshape(Shape{T, nh * d}), p.o.w, Tensor(), y, prec);
}

void mla_cached(const ModelConfig& c, const ModelWeights& w, std::int64_t layer, const Tensor& a,
                const Tensor& pos, const RopeTable& rope, const Places& pl, KvCache& cache, Tensor& y) {
  const Device dev = a.device();
  const std::int64_t T = a.dim(0), nh = c.num_attention_heads;
  const std::int64_t nope = c.qk_nope_head_dim, rd = c.qk_rope_head_dim, dqk = nope + rd;
  const std::int64_t dv = c.v_head_dim, kvr = c.kv_lora_rank;
  const auto prec = linear_precision(c);
  const float eps = static_cast<float>(c.rms_norm_eps);
  const MlaParams p = mla_params(w, layer);
  auto f32 = [&](Shape s, const char* name) { return Tensor::empty(s, DType::F32, dev, name); };

  Tensor q = f32(Shape{T, nh * dqk}, "mla.q");  // [T, nh * (nope + rope)]
  if (c.q_lora_rank > 0) {
    Tensor cq = f32(Shape{T, c.q_lora_rank}, "mla.cq"), cqn = f32(Shape{T, c.q_lora_rank}, "mla.cq_norm"),
           r = f32(Shape{T}, "mla.cq_rstd");
    ops::linear_forward(a, p.q_a.w, Tensor(), cq, prec);
    ops::rmsnorm_forward(cq, p.q_a_norm.w, eps, cqn, r);
    ops::linear_forward(cqn, p.q_b.w, Tensor(), q, prec);
  } else {
    ops::linear_forward(a, p.q.w, Tensor(), q, prec);
  }
  Tensor kv_a = f32(Shape{T, kvr + rd}, "mla.kv_a");  // [T, kvr + rope]
  ops::linear_forward(a, p.kv_a.w, Tensor(), kv_a, prec);
  Tensor ckv = f32(Shape{T, kvr}, "mla.ckv"), ckv_n = f32(Shape{T, kvr}, "mla.ckv_norm"), r = f32(Shape{T}, "mla.rstd");
  ops::copy_columns(kv_a, 0, ckv, 0, kvr);
  ops::rmsnorm_forward(ckv, p.kv_a_norm.w, eps, ckv_n, r);
  Tensor kpe = f32(Shape{T, 1, rd}, "mla.kpe");  // [T, 1, rope]
  ops::copy_columns(kv_a, kvr, kpe, 0, rd);
  ops::rope_apply(kpe, pos, rope.cos, rope.sin, rd, true);
  Tensor q_pe = f32(Shape{T, nh, rd}, "mla.q_rope");  // [T, nh, rope]
  Tensor q_pe_rows = q_pe.reshape(Shape{T * nh, rd});  // every head's rope dims in one copy
  ops::copy_columns(q.reshape(Shape{T * nh, dqk}), nope, q_pe_rows, 0, rd);
  ops::rope_apply(q_pe, pos, rope.cos, rope.sin, rd, true);

  ops::kv_cache_append(ckv_n, pl.slot, pl.pos, cache.ckv[layer]);
  ops::kv_cache_append(kpe.reshape(Shape{T, rd}), pl.slot, pl.pos, cache.kpe[layer]);

  // Absorbed attention: W_UK_h = kv_b rows [h(nope+dv), +nope), W_UV_h = the next dv rows.
  Tensor q_lat = f32(Shape{T, nh, kvr}, "mla.q_lat"), o_lat = f32(Shape{T, nh, kvr}, "mla.o_lat");
  ops::mla_absorb_query(q.reshape(Shape{T, nh, dqk}), nope, p.kv_b.w, q_lat);
  ops::mla_decode(q_lat, q_pe, cache.ckv[layer], cache.kpe[layer], pl.slot, pl.len, pl.max_len,
                  static_cast<float>(c.softmax_scale()), o_lat);
  Tensor o = f32(Shape{T, nh, dv}, "mla.o");  // [T, nh, dv]
  ops::mla_absorb_output(o_lat, nope, p.kv_b.w, o);
  ops::linear_forward(o.reshape(Shape{T, nh * dv}), p.o.w, Tensor(), y, prec);
}

}  // namespace

Tensor forward_cached(Transformer& model, KvCache& cache, const std::vector<Chunk>& chunks) {
  const ModelConfig& c = model.config();
  const ModelWeights& w = model.weights();
  const Tensor embed = w.param("model.embed_tokens.weight");
  const Device dev = embed.device();
  std::int64_t T = 0;
  for (const Chunk& ch : chunks) {
    CRUCIBLE_CHECK(ch.slot >= 0 && ch.slot < cache.slots, "cache slot ", ch.slot, " out of range");
    CRUCIBLE_USER_CHECK(cache.len[ch.slot] + static_cast<std::int64_t>(ch.tokens.size()) <= cache.capacity,
                        "sequence in slot ", ch.slot, " exceeds the KV cache capacity of ", cache.capacity, " tokens");
    T += static_cast<std::int64_t>(ch.tokens.size());
  }
  const std::int64_t H = c.hidden_size;
  // Rows: token ids, positions, slots, lengths; one upload.
  Tensor places_h(Shape{4, T}, DType::I32, Device::cpu(), "cached.places");
  Places pl;
  {
    std::int32_t* ids = places_h.data<std::int32_t>();
    std::int32_t *pos = ids + T, *slot = pos + T, *len = slot + T;
    std::int64_t t = 0;
    for (const Chunk& ch : chunks)
      for (std::size_t i = 0; i < ch.tokens.size(); ++i, ++t) {
        const std::int64_t p = cache.len[ch.slot] + static_cast<std::int64_t>(i);
        ids[t] = ch.tokens[i];
        pos[t] = static_cast<std::int32_t>(p);
        slot[t] = static_cast<std::int32_t>(ch.slot);
        len[t] = static_cast<std::int32_t>(p + 1);
        pl.max_len = std::max(pl.max_len, p + 1);
      }
  }
  const RopeTable& rope_d = model.rope_for(places_h.row(1));  // on the model's device; sized from the host positions
  const Tensor places = on_device(places_h, dev);
  const Tensor ids = places.row(0), pos = places.row(1);
  pl.slot = places.row(2), pl.pos = pos, pl.len = places.row(3);
  const float eps = static_cast<float>(c.rms_norm_eps);

  Tensor h = Tensor::empty(Shape{T, H}, DType::F32, dev, "cached.h");  // [T, H] residual stream
  ops::embedding_forward(ids, embed, h);
  Tensor a = Tensor::empty(Shape{T, H}, DType::F32, dev, "cached.a"),
         r = Tensor::empty(Shape{T}, DType::F32, dev, "cached.rstd"),
         out = Tensor::empty(Shape{T, H}, DType::F32, dev, "cached.out");
  for (std::int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    ops::rmsnorm_forward(h, w.param(p + "input_layernorm.weight"), eps, a, r);
    if (c.is_mla()) mla_cached(c, w, l, a, pos, rope_d, pl, cache, out);
    else gqa_cached(c, w, l, a, pos, rope_d, pl, cache, out);
    ops::axpy(1.0f, out, h);
    ops::rmsnorm_forward(h, w.param(p + "post_attention_layernorm.weight"), eps, a, r);
    if (c.is_moe_layer(l)) {
      MoeSaved saved;
      moe_forward(c, moe_params(w, l), a, Tensor(), out, saved);  // no balance loss
    } else {
      MlpSaved saved;
      mlp_forward(mlp_params(w, p + "mlp."), a, linear_precision(c), out, saved);
    }
    ops::axpy(1.0f, out, h);
  }
  for (const Chunk& ch : chunks) cache.len[ch.slot] += static_cast<std::int64_t>(ch.tokens.size());
  Tensor hf = Tensor::empty(Shape{T, H}, DType::F32, dev, "final_norm");
  ops::rmsnorm_forward(h, w.param("model.norm.weight"), eps, hf, r);
  return hf;
}

}  // namespace crucible::rollout
