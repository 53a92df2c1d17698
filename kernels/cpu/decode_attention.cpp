// kernels/cpu/decode_attention.cpp: the CPU reference of GQA and absorbed-MLA decode
// attention over a KV cache, the cache append and the MLA absorption products.
//
// The math is exactly what rollout/cached_forward.cpp computed before these ops
// existed (so generation does not change): FP32 dot products accumulated in ascending
// index order, scores times the scale, softmax with the max in FP32 and the sum of
// exp in double, probabilities times 1/sum rounded to FP32, outputs accumulated in
// FP32 in ascending key order. A BF16 cache is widened to FP32 (exact) first.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/error.h"
#include "core/numerics.h"
#include "kernels/cpu/decode_attention_cpu.h"

namespace crucible::cpu {

namespace {

// Softmax over the first n scores, in place: max in FP32, sum in double.
void softmax_inplace(std::vector<float>& s, std::int64_t n) {
  float mx = -INFINITY;
  for (std::int64_t t = 0; t < n; ++t) mx = std::max(mx, s[t]);
  double sum = 0;
  for (std::int64_t t = 0; t < n; ++t) sum += (s[t] = std::exp(s[t] - mx));
  const float inv = static_cast<float>(1.0 / sum);
  for (std::int64_t t = 0; t < n; ++t) s[t] *= inv;
}

// The first `count` elements of a cache slot as FP32: the cache itself when it is
// f32, else widened into `buf`. offset and count in elements.
const float* cache_span(const Tensor& cache, std::int64_t offset, std::int64_t count, std::vector<float>& buf) {
  if (cache.dtype() == DType::F32) return cache.data<float>() + offset;
  const std::uint16_t* src = cache.data<std::uint16_t>() + offset;
  buf.resize(static_cast<std::size_t>(count));
  for (std::int64_t i = 0; i < count; ++i) buf[static_cast<std::size_t>(i)] = bf16_to_f32(src[i]);
  return buf.data();
}

// slot[t] and len[t], checked against the cache and max_len.
struct Place {
  std::int64_t slot, len;
};
Place place_of(const char* op, const Tensor& slot, const Tensor& len, std::int64_t t, std::int64_t slots,
               std::int64_t max_len) {
  const std::int64_t s = slot.data<std::int32_t>()[t], n = len.data<std::int32_t>()[t];
  CRUCIBLE_CHECK(s >= 0 && s < slots, op, ": token ", t, " has cache slot ", s, " outside [0, ", slots, ")");
  CRUCIBLE_CHECK(n >= 0 && n <= max_len, op, ": token ", t, " has length ", n, " outside [0, max_len = ", max_len,
                 "]");
  return {s, n};
}

}  // namespace

void gqa_decode(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& slot,
                const Tensor& len, std::int64_t max_len, float scale, Tensor& out) {
  const std::int64_t T = q.dim(0), nh = q.dim(1), d = q.dim(2);
  const std::int64_t slots = k_cache.dim(0), capacity = k_cache.dim(1), nkv = k_cache.dim(2);
  const std::int64_t row = nkv * d, slot_stride = capacity * row, group = nh / nkv;
  out.zero();
  std::vector<float> s, kbuf, vbuf;
  for (std::int64_t t = 0; t < T; ++t) {
    const Place pl = place_of("gqa_decode", slot, len, t, slots, max_len);
    const std::int64_t n = pl.len;
    if (n == 0) continue;
    s.resize(static_cast<std::size_t>(n));
    const float* kb = cache_span(k_cache, pl.slot * slot_stride, n * row, kbuf);
    const float* vb = cache_span(v_cache, pl.slot * slot_stride, n * row, vbuf);
    for (std::int64_t h = 0; h < nh; ++h) {
      const std::int64_t g = h / group;
      const float* qh = q.data<float>() + (t * nh + h) * d;
      for (std::int64_t j = 0; j < n; ++j) {
        float dot = 0;
        for (std::int64_t i = 0; i < d; ++i) dot += qh[i] * kb[j * row + g * d + i];
        s[j] = dot * scale;
      }
      softmax_inplace(s, n);
      float* oh = out.data<float>() + (t * nh + h) * d;
      for (std::int64_t j = 0; j < n; ++j)
        for (std::int64_t i = 0; i < d; ++i) oh[i] += s[j] * vb[j * row + g * d + i];
    }
  }
}

void mla_decode(const Tensor& q_lat, const Tensor& q_rope, const Tensor& ckv_cache, const Tensor& kpe_cache,
                const Tensor& slot, const Tensor& len, std::int64_t max_len, float scale, Tensor& out_lat) {
  const std::int64_t T = q_lat.dim(0), nh = q_lat.dim(1), kvr = q_lat.dim(2), rd = q_rope.dim(2);
  const std::int64_t slots = ckv_cache.dim(0), capacity = ckv_cache.dim(1);
  out_lat.zero();
  std::vector<float> s, cbuf, pbuf;
  for (std::int64_t t = 0; t < T; ++t) {
    const Place pl = place_of("mla_decode", slot, len, t, slots, max_len);
    const std::int64_t n = pl.len;
    if (n == 0) continue;
    s.resize(static_cast<std::size_t>(n));
    const float* cb = cache_span(ckv_cache, pl.slot * capacity * kvr, n * kvr, cbuf);
    const float* pb = cache_span(kpe_cache, pl.slot * capacity * rd, n * rd, pbuf);
    for (std::int64_t h = 0; h < nh; ++h) {
      const float* ql = q_lat.data<float>() + (t * nh + h) * kvr;
      const float* qp = q_rope.data<float>() + (t * nh + h) * rd;
      for (std::int64_t u = 0; u < n; ++u) {
        float dot = 0;
        for (std::int64_t c = 0; c < kvr; ++c) dot += ql[c] * cb[u * kvr + c];
        for (std::int64_t i = 0; i < rd; ++i) dot += qp[i] * pb[u * rd + i];
        s[u] = dot * scale;
      }
      softmax_inplace(s, n);
      float* oh = out_lat.data<float>() + (t * nh + h) * kvr;
      for (std::int64_t u = 0; u < n; ++u)
        for (std::int64_t c = 0; c < kvr; ++c) oh[c] += s[u] * cb[u * kvr + c];
    }
  }
}

void kv_cache_append(const Tensor& src, const Tensor& slot, const Tensor& pos, Tensor& cache) {
  const std::int64_t T = src.dim(0), width = T == 0 ? 0 : src.numel() / T;
  const std::int64_t slots = cache.dim(0), capacity = cache.dim(1);
  for (std::int64_t t = 0; t < T; ++t) {
    const std::int64_t s = slot.data<std::int32_t>()[t], p = pos.data<std::int32_t>()[t];
    CRUCIBLE_CHECK(s >= 0 && s < slots, "kv_cache_append: token ", t, " has cache slot ", s, " outside [0, ",
                   slots, ")");
    CRUCIBLE_CHECK(p >= 0 && p < capacity, "kv_cache_append: token ", t, " has position ", p, " outside [0, ",
                   capacity, ")");
    const float* x = src.data<float>() + t * width;
    const std::int64_t at = (s * capacity + p) * width;
    if (cache.dtype() == DType::F32) {
      std::copy_n(x, width, cache.data<float>() + at);
    } else {
      std::uint16_t* dst = cache.data<std::uint16_t>() + at;
      for (std::int64_t i = 0; i < width; ++i) dst[i] = f32_to_bf16(x[i]);
    }
  }
}

void mla_absorb_query(const Tensor& q, std::int64_t nope, const Tensor& kv_b, Tensor& q_lat) {
  const std::int64_t T = q.dim(0), nh = q.dim(1), dqk = q.dim(2), kvr = q_lat.dim(2);
  const std::int64_t dv = kv_b.dim(0) / nh - nope;
  const float* wkvb = kv_b.data<float>();
  for (std::int64_t t = 0; t < T; ++t)
    for (std::int64_t h = 0; h < nh; ++h) {
      const float* qn = q.data<float>() + (t * nh + h) * dqk;
      const float* wuk = wkvb + h * (nope + dv) * kvr;
      float* ql = q_lat.data<float>() + (t * nh + h) * kvr;
      std::fill(ql, ql + kvr, 0.0f);
      for (std::int64_t j = 0; j < nope; ++j)
        for (std::int64_t c = 0; c < kvr; ++c) ql[c] += qn[j] * wuk[j * kvr + c];
    }
}

void mla_absorb_output(const Tensor& out_lat, std::int64_t nope, const Tensor& kv_b, Tensor& o) {
  const std::int64_t T = out_lat.dim(0), nh = out_lat.dim(1), kvr = out_lat.dim(2), dv = o.dim(2);
  const float* wkvb = kv_b.data<float>();
  for (std::int64_t t = 0; t < T; ++t)
    for (std::int64_t h = 0; h < nh; ++h) {
      const float* ol = out_lat.data<float>() + (t * nh + h) * kvr;
      const float* wuv = wkvb + (h * (nope + dv) + nope) * kvr;
      float* oh = o.data<float>() + (t * nh + h) * dv;
      for (std::int64_t i = 0; i < dv; ++i) {
        float acc = 0;
        for (std::int64_t c = 0; c < kvr; ++c) acc += ol[c] * wuv[i * kvr + c];
        oh[i] = acc;
      }
    }
}

}  // namespace crucible::cpu
