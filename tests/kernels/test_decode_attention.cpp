// Decode attention over a KV cache (kernels/decode_attention.h) on the CPU: GQA and
// absorbed MLA against a naive float64 recompute (varied lengths, 0 and full capacity
// included; several tokens per slot as in prefill; GQA groups 1, 2, 4; the tiny demo
// model's and DeepSeek-V3's MLA dims), bit equality with the host loops rollout used
// before these ops existed, the BF16 cache, the cache append, the absorption products
// and bad-input errors.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/numerics.h"
#include "kernels/decode_attention.h"
#include "tests/catch.h"

using namespace crucible;
using Catch::Contains;

namespace {

constexpr double kU = 0x1p-24;  // FP32 unit roundoff

Tensor random_tensor(Shape shape, std::uint64_t seed, float scale = 1.0f) {
  Tensor t(shape, DType::F32);
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<float> ud(-scale, scale);
  for (float& v : t.span<float>()) v = ud(gen);
  return t;
}

Tensor i32_tensor(const std::vector<std::int32_t>& v, const char* name) {
  Tensor t(Shape{static_cast<std::int64_t>(v.size())}, DType::I32, Device::cpu(), name);
  std::copy(v.begin(), v.end(), t.data<std::int32_t>());
  return t;
}

Tensor to_bf16_cache(const Tensor& f) {
  Tensor b(f.shape(), DType::BF16);
  for (std::int64_t i = 0; i < f.numel(); ++i) b.data<std::uint16_t>()[i] = f32_to_bf16(f.data<float>()[i]);
  return b;
}

Tensor bf16_rounded(const Tensor& f) {
  Tensor r = f.clone();
  for (float& v : r.span<float>()) v = round_to(v, DType::BF16);
  return r;
}

// One batch: tokens with (slot, len); slots may repeat (prefill of one sequence).
struct Batch {
  std::vector<std::int32_t> slot, len;
  std::int64_t max_len() const { return len.empty() ? 0 : *std::max_element(len.begin(), len.end()); }
  std::int64_t T() const { return static_cast<std::int64_t>(slot.size()); }
};

// Naive float64 attention of one (token, head): keys key(j) . q and values val(j), j < n.
template <typename Key, typename Val>
void naive_row(std::int64_t n, std::int64_t dk, std::int64_t dvw, double scale, const float* q, Key key, Val val,
               std::vector<double>& out, std::vector<double>& mag) {
  out.assign(static_cast<std::size_t>(dvw), 0.0);
  mag.assign(static_cast<std::size_t>(dvw), 0.0);
  if (n == 0) return;
  std::vector<double> s(static_cast<std::size_t>(n));
  double mx = -INFINITY;
  for (std::int64_t j = 0; j < n; ++j) {
    double dot = 0;
    for (std::int64_t i = 0; i < dk; ++i) dot += static_cast<double>(q[i]) * key(j, i);
    s[j] = dot * scale;
    mx = std::max(mx, s[j]);
  }
  double sum = 0;
  for (double& x : s) sum += (x = std::exp(x - mx));
  for (std::int64_t j = 0; j < n; ++j)
    for (std::int64_t i = 0; i < dvw; ++i) {
      out[i] += s[j] / sum * val(j, i);
      mag[i] += s[j] / sum * std::fabs(val(j, i));
    }
}

// The host loop of rollout/cached_forward.cpp before kernels/decode_attention.h: the
// CPU op must give the same bits.
void legacy_softmax(std::vector<float>& s, std::int64_t n) {
  float mx = -INFINITY;
  for (std::int64_t t = 0; t < n; ++t) mx = std::max(mx, s[t]);
  double sum = 0;
  for (std::int64_t t = 0; t < n; ++t) sum += (s[t] = std::exp(s[t] - mx));
  const float inv = static_cast<float>(1.0 / sum);
  for (std::int64_t t = 0; t < n; ++t) s[t] *= inv;
}

Tensor legacy_gqa(const Tensor& q, const Tensor& kc, const Tensor& vc, const Batch& b, float scale) {
  const std::int64_t T = q.dim(0), nh = q.dim(1), d = q.dim(2), nkv = kc.dim(2), capacity = kc.dim(1);
  const std::int64_t row = nkv * d, slot_stride = capacity * row;
  Tensor o(Shape{T, nh, d}, DType::F32);
  std::vector<float> s;
  for (std::int64_t t = 0; t < T; ++t) {
    const std::int64_t n = b.len[t];
    s.resize(static_cast<std::size_t>(n));
    const float* kb = kc.data<float>() + b.slot[t] * slot_stride;
    const float* vb = vc.data<float>() + b.slot[t] * slot_stride;
    for (std::int64_t h = 0; h < nh; ++h) {
      const std::int64_t g = h / (nh / nkv);
      const float* qh = q.data<float>() + (t * nh + h) * d;
      for (std::int64_t j = 0; j < n; ++j) {
        float dot = 0;
        for (std::int64_t i = 0; i < d; ++i) dot += qh[i] * kb[j * row + g * d + i];
        s[j] = dot * scale;
      }
      legacy_softmax(s, n);
      float* oh = o.data<float>() + t * nh * d + h * d;
      for (std::int64_t j = 0; j < n; ++j)
        for (std::int64_t i = 0; i < d; ++i) oh[i] += s[j] * vb[j * row + g * d + i];
    }
  }
  return o;
}

Tensor legacy_mla(const Tensor& ql, const Tensor& qr, const Tensor& cc, const Tensor& pc, const Batch& b,
                  float scale) {
  const std::int64_t T = ql.dim(0), nh = ql.dim(1), kvr = ql.dim(2), rd = qr.dim(2), capacity = cc.dim(1);
  Tensor o(Shape{T, nh, kvr}, DType::F32);
  std::vector<float> s, o_lat(static_cast<std::size_t>(kvr));
  for (std::int64_t t = 0; t < T; ++t) {
    const std::int64_t n = b.len[t];
    s.resize(static_cast<std::size_t>(n));
    const float* cb = cc.data<float>() + b.slot[t] * capacity * kvr;
    const float* pb = pc.data<float>() + b.slot[t] * capacity * rd;
    for (std::int64_t h = 0; h < nh; ++h) {
      const float* q_lat = ql.data<float>() + (t * nh + h) * kvr;
      const float* qp = qr.data<float>() + (t * nh + h) * rd;
      for (std::int64_t u = 0; u < n; ++u) {
        float dot = 0;
        for (std::int64_t c = 0; c < kvr; ++c) dot += q_lat[c] * cb[u * kvr + c];
        for (std::int64_t i = 0; i < rd; ++i) dot += qp[i] * pb[u * rd + i];
        s[u] = dot * scale;
      }
      legacy_softmax(s, n);
      std::fill(o_lat.begin(), o_lat.end(), 0.0f);
      for (std::int64_t u = 0; u < n; ++u)
        for (std::int64_t c = 0; c < kvr; ++c) o_lat[c] += s[u] * cb[u * kvr + c];
      std::copy(o_lat.begin(), o_lat.end(), o.data<float>() + (t * nh + h) * kvr);
    }
  }
  return o;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && std::equal(a.data<float>(), a.data<float>() + a.numel(), b.data<float>(),
                                              [](float x, float y) { return std::memcmp(&x, &y, 4) == 0; });
}

// |op - naive| <= A (u (2 n + dk + 16)) + tiny, A = sum_j p_j |v_j| (FP32 sums of length
// dk and n; the softmax sum is double).
void require_near(const Tensor& got, const std::vector<double>& want, const std::vector<double>& mag,
                  std::int64_t n, std::int64_t dk, std::int64_t offset) {
  for (std::size_t i = 0; i < want.size(); ++i) {
    const double tol = mag[i] * kU * (2.0 * n + dk + 16) * 4 + 1e-30;
    const double err = std::fabs(got.data<float>()[offset + static_cast<std::int64_t>(i)] - want[i]);
    if (!(err <= tol)) {
      INFO("element " << offset + static_cast<std::int64_t>(i) << ": got " << got.data<float>()[offset + i]
                      << " want " << want[i] << " tol " << tol);
      REQUIRE(err <= tol);
    }
  }
}

}  // namespace

TEST_CASE("gqa_decode matches a float64 recompute and the legacy host loop", "[kernels][decode]") {
  struct Shape4 {
    std::int64_t Hq, Hkv, d, slots, capacity;
  };
  const Shape4 shapes[] = {{4, 2, 24, 3, 16}, {8, 2, 64, 2, 40}, {6, 3, 128, 2, 33}, {4, 4, 32, 2, 9}, {8, 1, 16, 1, 20}};
  const Batch batch_for[] = {
      {{0, 0, 0, 1, 2, 2}, {1, 2, 3, 16, 0, 7}},  // prefill of slot 0, a full slot, an empty token
      {{1, 0, 1}, {40, 1, 17}},
      {{0, 1, 1, 1}, {33, 5, 6, 7}},
      {{1, 0}, {9, 3}},
      {{0, 0}, {20, 1}},
  };
  std::uint64_t seed = 10;
  for (std::size_t ci = 0; ci < std::size(shapes); ++ci) {
    const Shape4& s = shapes[ci];
    const Batch& b = batch_for[ci];
    INFO("Hq " << s.Hq << " Hkv " << s.Hkv << " d " << s.d);
    const std::int64_t T = b.T();
    const Tensor q = random_tensor(Shape{T, s.Hq, s.d}, seed++);
    const Tensor kc = random_tensor(Shape{s.slots, s.capacity, s.Hkv, s.d}, seed++, 2.0f);
    const Tensor vc = random_tensor(Shape{s.slots, s.capacity, s.Hkv, s.d}, seed++);
    const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(s.d)));
    const Tensor slot = i32_tensor(b.slot, "slot"), len = i32_tensor(b.len, "len");
    Tensor out(Shape{T, s.Hq, s.d}, DType::F32, Device::cpu(), "out");
    for (float& v : out.span<float>()) v = NAN;  // written, not accumulated
    ops::gqa_decode(q, kc, vc, slot, len, b.max_len(), scale, out);

    REQUIRE(same_bits(out, legacy_gqa(q, kc, vc, b, scale)));

    const std::int64_t group = s.Hq / s.Hkv, row = s.Hkv * s.d;
    std::vector<double> want, mag;
    for (std::int64_t t = 0; t < T; ++t)
      for (std::int64_t h = 0; h < s.Hq; ++h) {
        const std::int64_t g = h / group;
        const float* kb = kc.data<float>() + b.slot[t] * s.capacity * row + g * s.d;
        const float* vb = vc.data<float>() + b.slot[t] * s.capacity * row + g * s.d;
        naive_row(b.len[t], s.d, s.d, scale, q.data<float>() + (t * s.Hq + h) * s.d,
                  [&](std::int64_t j, std::int64_t i) { return static_cast<double>(kb[j * row + i]); },
                  [&](std::int64_t j, std::int64_t i) { return static_cast<double>(vb[j * row + i]); }, want, mag);
        require_near(out, want, mag, b.len[t], s.d, (t * s.Hq + h) * s.d);
      }

    // A BF16 cache reads as its FP32 widening, exactly.
    Tensor out_b(out.shape(), DType::F32), out_r(out.shape(), DType::F32);
    ops::gqa_decode(q, to_bf16_cache(kc), to_bf16_cache(vc), slot, len, b.max_len(), scale, out_b);
    ops::gqa_decode(q, bf16_rounded(kc), bf16_rounded(vc), slot, len, b.max_len(), scale, out_r);
    REQUIRE(same_bits(out_b, out_r));
  }
}

TEST_CASE("mla_decode matches a float64 recompute and the legacy host loop", "[kernels][decode]") {
  struct Dims {
    std::int64_t Hq, R, P, slots, capacity;
    Batch b;
  };
  const Dims cases[] = {
      {4, 64, 16, 2, 24, {{0, 0, 0, 0, 1, 1}, {1, 2, 3, 4, 24, 0}}},  // tiny-deepseek-v3
      {128, 512, 64, 2, 300, {{1, 0, 1}, {300, 1, 77}}},              // DeepSeek-V3
      {3, 32, 8, 1, 5, {{0}, {5}}},                                   // odd dims (the CPU takes any)
  };
  std::uint64_t seed = 100;
  for (const Dims& c : cases) {
    INFO("Hq " << c.Hq << " R " << c.R << " P " << c.P);
    const std::int64_t T = c.b.T();
    const Tensor ql = random_tensor(Shape{T, c.Hq, c.R}, seed++), qr = random_tensor(Shape{T, c.Hq, c.P}, seed++);
    const Tensor cc = random_tensor(Shape{c.slots, c.capacity, c.R}, seed++);
    const Tensor pc = random_tensor(Shape{c.slots, c.capacity, c.P}, seed++);
    const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(c.R / 4 + c.P)));
    const Tensor slot = i32_tensor(c.b.slot, "slot"), len = i32_tensor(c.b.len, "len");
    Tensor out(Shape{T, c.Hq, c.R}, DType::F32, Device::cpu(), "out_lat");
    for (float& v : out.span<float>()) v = NAN;
    ops::mla_decode(ql, qr, cc, pc, slot, len, c.b.max_len(), scale, out);

    REQUIRE(same_bits(out, legacy_mla(ql, qr, cc, pc, c.b, scale)));

    std::vector<double> want, mag;
    for (std::int64_t t = 0; t < T; ++t) {
      const float* cb = cc.data<float>() + c.b.slot[t] * c.capacity * c.R;
      const float* pb = pc.data<float>() + c.b.slot[t] * c.capacity * c.P;
      for (std::int64_t h = 0; h < c.Hq; ++h) {
        std::vector<float> qcat(ql.data<float>() + (t * c.Hq + h) * c.R, ql.data<float>() + (t * c.Hq + h + 1) * c.R);
        qcat.insert(qcat.end(), qr.data<float>() + (t * c.Hq + h) * c.P, qr.data<float>() + (t * c.Hq + h + 1) * c.P);
        naive_row(c.b.len[t], c.R + c.P, c.R, scale, qcat.data(),
                  [&](std::int64_t j, std::int64_t i) {
                    return static_cast<double>(i < c.R ? cb[j * c.R + i] : pb[j * c.P + i - c.R]);
                  },
                  [&](std::int64_t j, std::int64_t i) { return static_cast<double>(cb[j * c.R + i]); }, want, mag);
        require_near(out, want, mag, c.b.len[t], c.R + c.P, (t * c.Hq + h) * c.R);
      }
    }

    Tensor out_b(out.shape(), DType::F32), out_r(out.shape(), DType::F32);
    ops::mla_decode(ql, qr, to_bf16_cache(cc), to_bf16_cache(pc), slot, len, c.b.max_len(), scale, out_b);
    ops::mla_decode(ql, qr, bf16_rounded(cc), bf16_rounded(pc), slot, len, c.b.max_len(), scale, out_r);
    REQUIRE(same_bits(out_b, out_r));
  }
}

TEST_CASE("kv_cache_append writes rows at (slot, pos), RNE-rounded into a BF16 cache", "[kernels][decode]") {
  const Tensor src = random_tensor(Shape{3, 2, 5}, 7);
  const Tensor slot = i32_tensor({1, 0, 1}, "slot"), pos = i32_tensor({0, 3, 2}, "pos");
  for (DType dt : {DType::F32, DType::BF16}) {
    Tensor cache(Shape{2, 4, 2, 5}, dt, Device::cpu(), "cache");
    ops::kv_cache_append(src, slot, pos, cache);
    for (std::int64_t t = 0; t < 3; ++t)
      for (std::int64_t i = 0; i < 10; ++i) {
        const std::int64_t at = (slot.data<std::int32_t>()[t] * 4 + pos.data<std::int32_t>()[t]) * 10 + i;
        const float x = src.data<float>()[t * 10 + i];
        if (dt == DType::F32) REQUIRE(cache.data<float>()[at] == x);
        else REQUIRE(cache.data<std::uint16_t>()[at] == f32_to_bf16(x));
      }
    // Untouched rows stay zero.
    const std::int64_t untouched = (0 * 4 + 0) * 10;
    if (dt == DType::F32) REQUIRE(cache.data<float>()[untouched] == 0.0f);
  }
  Tensor cache(Shape{2, 4, 2, 5}, DType::F32);
  CHECK_THROWS_WITH(ops::kv_cache_append(src, slot, i32_tensor({0, 4, 1}, "pos"), cache),
                    Contains("token 1 has position 4"));
  CHECK_THROWS_WITH(ops::kv_cache_append(src, i32_tensor({0, 2, 1}, "slot"), pos, cache),
                    Contains("token 1 has cache slot 2"));
  Tensor wrong(Shape{2, 4, 2, 6}, DType::F32, Device::cpu(), "wrong");
  CHECK_THROWS_WITH(ops::kv_cache_append(src, slot, pos, wrong), Contains("trailing dims"));
}

TEST_CASE("mla_absorb_query and mla_absorb_output are the per-head products with kv_b", "[kernels][decode]") {
  const std::int64_t T = 3, Hq = 4, nope = 8, rope = 4, dv = 6, R = 16;
  const Tensor q = random_tensor(Shape{T, Hq, nope + rope}, 1), kv_b = random_tensor(Shape{Hq * (nope + dv), R}, 2);
  const Tensor lat = random_tensor(Shape{T, Hq, R}, 3);
  Tensor q_lat(Shape{T, Hq, R}, DType::F32), o(Shape{T, Hq, dv}, DType::F32);
  ops::mla_absorb_query(q, nope, kv_b, q_lat);
  ops::mla_absorb_output(lat, nope, kv_b, o);
  const float* w = kv_b.data<float>();
  for (std::int64_t t = 0; t < T; ++t)
    for (std::int64_t h = 0; h < Hq; ++h) {
      for (std::int64_t c = 0; c < R; ++c) {
        double want = 0, mag = 0;
        for (std::int64_t j = 0; j < nope; ++j) {
          const double x = static_cast<double>(q.data<float>()[(t * Hq + h) * (nope + rope) + j]) * w[(h * (nope + dv) + j) * R + c];
          want += x, mag += std::fabs(x);
        }
        REQUIRE(std::fabs(q_lat.data<float>()[(t * Hq + h) * R + c] - want) <= mag * kU * (nope + 2));
      }
      for (std::int64_t i = 0; i < dv; ++i) {
        double want = 0, mag = 0;
        for (std::int64_t c = 0; c < R; ++c) {
          const double x = static_cast<double>(lat.data<float>()[(t * Hq + h) * R + c]) * w[(h * (nope + dv) + nope + i) * R + c];
          want += x, mag += std::fabs(x);
        }
        REQUIRE(std::fabs(o.data<float>()[(t * Hq + h) * dv + i] - want) <= mag * kU * (R + 2));
      }
    }
  Tensor bad(Shape{T, Hq, dv + 1}, DType::F32, Device::cpu(), "o");
  CHECK_THROWS_WITH(ops::mla_absorb_output(lat, nope, kv_b, bad), Contains("kv_b"));
}

TEST_CASE("decode attention rejects bad slots, lengths, shapes and dtypes", "[kernels][decode]") {
  const Tensor q = random_tensor(Shape{2, 4, 8}, 1), kc = random_tensor(Shape{2, 6, 2, 8}, 2);
  const Tensor slot = i32_tensor({0, 1}, "slot");
  Tensor out(Shape{2, 4, 8}, DType::F32);
  CHECK_THROWS_WITH(ops::gqa_decode(q, kc, kc, slot, i32_tensor({3, 6}, "len"), 5, 0.3f, out),
                    Contains("token 1 has length 6 outside [0, max_len = 5]"));
  CHECK_THROWS_WITH(ops::gqa_decode(q, kc, kc, i32_tensor({0, 2}, "slot"), i32_tensor({3, 6}, "len"), 6, 0.3f, out),
                    Contains("token 1 has cache slot 2"));
  CHECK_THROWS_WITH(ops::gqa_decode(q, kc, kc, slot, i32_tensor({3, 6}, "len"), 7, 0.3f, out),
                    Contains("max_len = 7"));
  const Tensor q3 = random_tensor(Shape{2, 3, 8}, 1);
  Tensor out3(Shape{2, 3, 8}, DType::F32);
  CHECK_THROWS_WITH(ops::gqa_decode(q3, kc, kc, slot, i32_tensor({3, 6}, "len"), 6, 0.3f, out3),
                    Contains("multiple of kv heads"));
  Tensor k_i32(Shape{2, 6, 2, 8}, DType::I32, Device::cpu(), "k_i32");
  CHECK_THROWS_WITH(ops::gqa_decode(q, k_i32, k_i32, slot, i32_tensor({3, 6}, "len"), 6, 0.3f, out),
                    Contains("f32 or bf16"));
  const Tensor ql = random_tensor(Shape{2, 4, 16}, 3), qr = random_tensor(Shape{2, 4, 4}, 4);
  const Tensor cc = random_tensor(Shape{2, 6, 16}, 5), pc = random_tensor(Shape{2, 6, 4}, 6);
  Tensor ol(Shape{2, 4, 16}, DType::F32);
  CHECK_THROWS_WITH(ops::mla_decode(ql, qr, cc, to_bf16_cache(pc), slot, i32_tensor({1, 2}, "len"), 6, 0.3f, ol),
                    Contains("kpe_cache"));
  CHECK_THROWS_WITH(ops::mla_decode(ql, qr, cc, pc, slot, i32_tensor({1, -1}, "len"), 6, 0.3f, ol),
                    Contains("token 1 has length -1"));
}
