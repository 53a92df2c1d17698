// Causal packed attention (kernels/attention.h): forward and backward against a naive
// float64 reference (full score matrix + causal mask), finite-difference gradients of the
// FP32 kernel, the exact-zero mask, GQA/MQA/MLA shapes and bad-input errors.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "kernels/attention.h"
#include "tests/catch.h"
#include "tests/worst.h"

using namespace crucible;
using Catch::Contains;

namespace {

constexpr double kU = 0x1p-24;  // FP32 unit roundoff

Tensor random_tensor(Shape shape, std::uint64_t seed, float scale = 1.0f) {
  Tensor t(shape, DType::F32);
  std::mt19937_64 gen(seed);
  std::normal_distribution<float> nd(0.0f, scale);
  for (float& v : t.span<float>()) v = nd(gen);
  return t;
}

struct Case {
  std::vector<std::int32_t> cu;
  std::int64_t Hq, Hkv, dqk, dv;
};

// The cases: the brief's packed GQA/MLA-like case; MQA with an empty sequence and
// sequences longer than one query block; plain MHA with d_qk == d_v.
const Case kCases[] = {
    {{0, 5, 17, 18}, 4, 2, 24, 16},
    {{0, 70, 70, 200}, 4, 1, 24, 16},
    {{0, 33}, 2, 2, 16, 16},
};

struct Problem {
  Case c;
  std::int64_t T;
  float scale;
  Tensor q, k, v, cu, out, lse;

  Problem(const Case& cs, std::uint64_t seed)
      : c(cs), T(cs.cu.back()), scale(static_cast<float>(1.0 / std::sqrt(static_cast<double>(cs.dqk)))) {
    q = random_tensor(Shape{T, c.Hq, c.dqk}, seed);
    k = random_tensor(Shape{T, c.Hkv, c.dqk}, seed + 1);
    v = random_tensor(Shape{T, c.Hkv, c.dv}, seed + 2);
    cu = Tensor(Shape{static_cast<std::int64_t>(c.cu.size())}, DType::I32, Device::cpu(), "cu_seqlens");
    std::copy(c.cu.begin(), c.cu.end(), cu.data<std::int32_t>());
    out = Tensor(Shape{T, c.Hq, c.dv}, DType::F32, Device::cpu(), "out");
    lse = Tensor(Shape{T, c.Hq}, DType::F32, Device::cpu(), "lse");
  }
  void forward() { ops::attention_forward(q, k, v, cu, scale, out, lse); }
};

// Naive float64 reference: full [L, L] scores per (sequence, head), causal mask.
// Forward tolerances are worst-case FP32 bounds: a length-n dot product errs by at most
// n u Σ|x_i y_i|, so a score errs by ds = (dqk + 2) u scale Σ|q_i k_i|; the softmax then
// moves each p_j by at most p_j (2 max ds + 4u), and the length-L sum Σ p_j v_j adds
// L u Σ p_j |v_j|:  tol(out) = (2 max ds + (L + 8) u) Σ_j p_j |v_j|,
// tol(lse) = max ds + (L + 4) u + 2 u |lse|.
struct Reference {
  std::vector<double> out, lse, out_tol, lse_tol, dq, dk, dv;
};

Reference reference(const Problem& pb, const Tensor* dout) {
  const Case& c = pb.c;
  const std::int64_t group = c.Hq / c.Hkv;
  Reference r;
  r.out.assign(pb.out.numel(), 0.0);
  r.out_tol.assign(pb.out.numel(), 0.0);
  r.lse.assign(pb.lse.numel(), 0.0);
  r.lse_tol.assign(pb.lse.numel(), 0.0);
  r.dq.assign(pb.q.numel(), 0.0);
  r.dk.assign(pb.k.numel(), 0.0);
  r.dv.assign(pb.v.numel(), 0.0);
  const float* q = pb.q.data<float>();
  const float* k = pb.k.data<float>();
  const float* v = pb.v.data<float>();
  auto Q = [&](std::int64_t t, std::int64_t h, std::int64_t i) { return static_cast<double>(q[(t * c.Hq + h) * c.dqk + i]); };
  auto K = [&](std::int64_t t, std::int64_t g, std::int64_t i) { return static_cast<double>(k[(t * c.Hkv + g) * c.dqk + i]); };
  auto V = [&](std::int64_t t, std::int64_t g, std::int64_t i) { return static_cast<double>(v[(t * c.Hkv + g) * c.dv + i]); };
  for (std::size_t b = 0; b + 1 < c.cu.size(); ++b) {
    const std::int64_t t0 = c.cu[b], L = c.cu[b + 1] - c.cu[b];
    for (std::int64_t h = 0; h < c.Hq; ++h) {
      const std::int64_t g = h / group;
      std::vector<double> P(L * L, 0.0);  // masked entries stay 0
      for (std::int64_t i = 0; i < L; ++i) {
        std::vector<double> s(i + 1);
        double m = -INFINITY, ds = 0;
        for (std::int64_t j = 0; j <= i; ++j) {
          double dot = 0, mag = 0;
          for (std::int64_t x = 0; x < c.dqk; ++x) {
            dot += Q(t0 + i, h, x) * K(t0 + j, g, x);
            mag += std::abs(Q(t0 + i, h, x) * K(t0 + j, g, x));
          }
          s[j] = pb.scale * dot;
          m = std::max(m, s[j]);
          ds = std::max(ds, static_cast<double>(c.dqk + 2) * kU * pb.scale * mag);
        }
        double sum = 0;
        for (std::int64_t j = 0; j <= i; ++j) sum += std::exp(s[j] - m);
        for (std::int64_t j = 0; j <= i; ++j) P[i * L + j] = std::exp(s[j] - m) / sum;
        const double lse = m + std::log(sum);
        r.lse[(t0 + i) * c.Hq + h] = lse;
        r.lse_tol[(t0 + i) * c.Hq + h] = ds + (L + 4) * kU + 2 * kU * std::abs(lse);
        for (std::int64_t x = 0; x < c.dv; ++x) {
          double o = 0, mag = 0;
          for (std::int64_t j = 0; j <= i; ++j) {
            o += P[i * L + j] * V(t0 + j, g, x);
            mag += P[i * L + j] * std::abs(V(t0 + j, g, x));
          }
          r.out[((t0 + i) * c.Hq + h) * c.dv + x] = o;
          r.out_tol[((t0 + i) * c.Hq + h) * c.dv + x] = (2 * ds + (L + 8) * kU) * mag;
        }
      }
      if (!dout) continue;
      const float* dO = dout->data<float>();
      auto DO = [&](std::int64_t t, std::int64_t x) { return static_cast<double>(dO[(t * c.Hq + h) * c.dv + x]); };
      for (std::int64_t i = 0; i < L; ++i) {
        double D = 0;  // rowsum(dO * O)
        for (std::int64_t x = 0; x < c.dv; ++x) D += DO(t0 + i, x) * r.out[((t0 + i) * c.Hq + h) * c.dv + x];
        for (std::int64_t j = 0; j <= i; ++j) {
          double dp = 0;
          for (std::int64_t x = 0; x < c.dv; ++x) dp += DO(t0 + i, x) * V(t0 + j, g, x);
          const double p = P[i * L + j], dsc = p * (dp - D) * pb.scale;
          for (std::int64_t x = 0; x < c.dqk; ++x) {
            r.dq[((t0 + i) * c.Hq + h) * c.dqk + x] += dsc * K(t0 + j, g, x);
            r.dk[((t0 + j) * c.Hkv + g) * c.dqk + x] += dsc * Q(t0 + i, h, x);
          }
          for (std::int64_t x = 0; x < c.dv; ++x) r.dv[((t0 + j) * c.Hkv + g) * c.dv + x] += p * DO(t0 + i, x);
        }
      }
    }
  }
  return r;
}

// max |a - ref| / max |ref| over a tensor.
double normwise_error(const Tensor& a, const std::vector<double>& ref) {
  double err = 0, mag = 0;
  for (std::int64_t i = 0; i < a.numel(); ++i) {
    err = testing::worst_of(err, std::abs(a.data<float>()[i] - ref[i]));
    mag = std::max(mag, std::abs(ref[i]));
  }
  return err / std::max(mag, 1e-30);
}

double weighted_sum(const Tensor& y, const Tensor& r) {
  double s = 0;
  for (std::int64_t i = 0; i < y.numel(); ++i) s += static_cast<double>(y.data<float>()[i]) * r.data<float>()[i];
  return s;
}

}  // namespace

TEST_CASE("attention forward matches a float64 reference", "[kernels][attention]") {
  for (const Case& c : kCases) {
    Problem pb(c, 11);
    pb.forward();
    const Reference r = reference(pb, nullptr);
    INFO("T " << pb.T << " Hq " << c.Hq << " Hkv " << c.Hkv << " dqk " << c.dqk << " dv " << c.dv);
    int bad = 0;
    for (std::int64_t i = 0; i < pb.out.numel(); ++i)
      bad += std::abs(pb.out.data<float>()[i] - r.out[i]) > r.out_tol[i];
    for (std::int64_t i = 0; i < pb.lse.numel(); ++i)
      bad += std::abs(pb.lse.data<float>()[i] - r.lse[i]) > r.lse_tol[i];
    CHECK(bad == 0);
  }
}

TEST_CASE("attention backward matches a float64 reference", "[kernels][attention]") {
  for (const Case& c : kCases) {
    Problem pb(c, 23);
    pb.forward();
    const Tensor dout = random_tensor(pb.out.shape(), 29);
    const Reference r = reference(pb, &dout);
    Tensor dq(pb.q.shape(), DType::F32), dk(pb.k.shape(), DType::F32), dv(pb.v.shape(), DType::F32);
    for (Tensor* t : {&dq, &dk, &dv})
      for (float& x : t->span<float>()) x = 123.0f;  // the contract is "written": stale values must go
    ops::attention_backward(dout, pb.q, pb.k, pb.v, pb.out, pb.lse, pb.cu, pb.scale, dq, dk, dv);
    // Normwise bound: the chain S -> P -> dP - D -> dS -> dq/dk/dv has reductions of
    // length dqk (S, dq/dk), dv (dP, D, dv) and L (the products); each contributes n u.
    std::int64_t L = 0;
    for (std::size_t b = 0; b + 1 < c.cu.size(); ++b) L = std::max<std::int64_t>(L, c.cu[b + 1] - c.cu[b]);
    const double tol = static_cast<double>(2 * c.dqk + 2 * c.dv + L) * kU;
    INFO("T " << pb.T << " Hq " << c.Hq << " Hkv " << c.Hkv << " tol " << tol);
    CHECK(normwise_error(dq, r.dq) < tol);
    CHECK(normwise_error(dk, r.dk) < tol);
    CHECK(normwise_error(dv, r.dv) < tol);
  }
}

TEST_CASE("attention backward matches finite differences", "[kernels][attention]") {
  // L = Σ r ⊙ out accumulated in double, central differences on 24 random elements of each
  // of q, k, v, two ways:
  //  - of the float64 reference forward (h = 1e-3; truncation ~h² ~ 1e-6 relative): the
  //    kernel's gradient must agree to 1e-3 relative + 1e-6 absolute;
  //  - of the FP32 kernel forward itself (h = 1e-2, so that its rounding, ~1e-6 over up to
  //    1e4 outputs, stays under 3e-4 after dividing by 2h): 1e-2 relative + 3e-4 absolute.
  for (const Case& c : {kCases[0], kCases[1]}) {
    Problem pb(c, 37);
    const Tensor rw = random_tensor(pb.out.shape(), 41);
    pb.forward();
    Tensor dq(pb.q.shape(), DType::F32), dk(pb.k.shape(), DType::F32), dv(pb.v.shape(), DType::F32);
    ops::attention_backward(rw, pb.q, pb.k, pb.v, pb.out, pb.lse, pb.cu, pb.scale, dq, dk, dv);
    auto loss64 = [&] {
      const std::vector<double> out = reference(pb, nullptr).out;
      double s = 0;
      for (std::int64_t i = 0; i < rw.numel(); ++i) s += out[i] * rw.data<float>()[i];
      return s;
    };
    auto loss32 = [&] {
      pb.forward();
      return weighted_sum(pb.out, rw);
    };
    // Central difference of `loss` at element i of x with step h (the rounded float step).
    auto central = [](Tensor& x, std::int64_t i, double h, const auto& loss) {
      float* xs = x.data<float>();
      const float orig = xs[i];
      xs[i] = static_cast<float>(orig + h);
      const double x_up = xs[i], up = loss();
      xs[i] = static_cast<float>(orig - h);
      const double x_down = xs[i], down = loss();
      xs[i] = orig;
      return (up - down) / (x_up - x_down);
    };
    std::mt19937_64 gen(43);
    for (auto [x, g, name] : {std::tuple{&pb.q, &dq, "q"}, std::tuple{&pb.k, &dk, "k"}, std::tuple{&pb.v, &dv, "v"}}) {
      for (int s = 0; s < 24; ++s) {
        const std::int64_t i = static_cast<std::int64_t>(gen() % static_cast<std::uint64_t>(x->numel()));
        const double an = g->data<float>()[i];
        const double fd64 = central(*x, i, 1e-3, loss64), fd32 = central(*x, i, 1e-2, loss32);
        INFO("T " << pb.T << " " << name << "[" << i << "]: analytic " << an << " fd64 " << fd64 << " fd32 " << fd32);
        CHECK(std::abs(fd64 - an) <= 1e-3 * std::max(std::abs(fd64), std::abs(an)) + 1e-6);
        CHECK(std::abs(fd32 - an) <= 1e-2 * std::max(std::abs(fd32), std::abs(an)) + 3e-4);
      }
    }
  }
}

TEST_CASE("attention masks exactly: later tokens and other sequences change nothing", "[kernels][attention]") {
  // Masked probabilities are exact zeros, so huge keys/values at masked positions must
  // leave the visible outputs bit-identical (not merely close).
  Problem pb(kCases[0], 53);  // cu = {0, 5, 17, 18}
  pb.forward();
  const Tensor out0 = pb.out.clone(), lse0 = pb.lse.clone();
  const std::int64_t cut = 9;  // tokens >= cut of sequence 1 (5..16) and sequence 2 change
  const auto& c = pb.c;
  for (std::int64_t t = cut; t < pb.T; ++t) {
    for (std::int64_t i = 0; i < c.Hkv * c.dqk; ++i) pb.k.data<float>()[t * c.Hkv * c.dqk + i] *= 1e3f;
    for (std::int64_t i = 0; i < c.Hkv * c.dv; ++i) pb.v.data<float>()[t * c.Hkv * c.dv + i] = 1e6f;
  }
  pb.forward();
  for (std::int64_t t = 0; t < cut; ++t) {
    for (std::int64_t i = 0; i < c.Hq * c.dv; ++i)
      REQUIRE(pb.out.data<float>()[t * c.Hq * c.dv + i] == out0.data<float>()[t * c.Hq * c.dv + i]);
    for (std::int64_t h = 0; h < c.Hq; ++h) REQUIRE(pb.lse.data<float>()[t * c.Hq + h] == lse0.data<float>()[t * c.Hq + h]);
  }
  // The first token of a sequence sees only itself: out = v, lse = its own score.
  const std::int64_t t = 5, g = 0;
  for (std::int64_t x = 0; x < c.dv; ++x)
    CHECK(pb.out.data<float>()[(t * c.Hq + 0) * c.dv + x] == pb.v.data<float>()[(t * c.Hkv + g) * c.dv + x]);
}

TEST_CASE("attention rejects inconsistent inputs", "[kernels][attention]") {
  Problem pb(kCases[0], 61);
  Tensor bad_cu(Shape{3}, DType::I32, Device::cpu(), "cu_seqlens");
  bad_cu.data<std::int32_t>()[1] = 5;
  bad_cu.data<std::int32_t>()[2] = 17;  // T is 18
  CHECK_THROWS_WITH(ops::attention_forward(pb.q, pb.k, pb.v, bad_cu, pb.scale, pb.out, pb.lse),
                    Contains("cu_seqlens must run from 0 to T = 18"));
  const Tensor k3 = random_tensor(Shape{pb.T, 3, pb.c.dqk}, 1);
  const Tensor v3 = random_tensor(Shape{pb.T, 3, pb.c.dv}, 2);
  CHECK_THROWS_WITH(ops::attention_forward(pb.q, k3, v3, pb.cu, pb.scale, pb.out, pb.lse),
                    Contains("must be a multiple of key/value heads 3"));
  Tensor small_out(Shape{pb.T, pb.c.Hq, pb.c.dqk}, DType::F32, Device::cpu(), "o");
  CHECK_THROWS_WITH(ops::attention_forward(pb.q, pb.k, pb.v, pb.cu, pb.scale, small_out, pb.lse),
                    Contains("attention_forward out (o) has shape [18, 4, 24], expected [18, 4, 16]"));
}

TEST_CASE("attention forward+backward timing, T=512 (2 x 256), H=8, d=64", "[kernels][attention][.bench]") {
  Problem pb(Case{{0, 256, 512}, 8, 8, 64, 64}, 71);
  const Tensor dout = random_tensor(pb.out.shape(), 73);
  Tensor dq(pb.q.shape(), DType::F32), dk(pb.k.shape(), DType::F32), dv(pb.v.shape(), DType::F32);
  std::vector<double> ms;
  for (int rep = 0; rep < 5; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    pb.forward();
    ops::attention_backward(dout, pb.q, pb.k, pb.v, pb.out, pb.lse, pb.cu, pb.scale, dq, dk, dv);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  std::printf("attention fwd+bwd T=512 (2x256) Hq=Hkv=8 d=64: median %.2f ms (min %.2f) over 5\n", ms[2], ms[0]);
}
