// Fused vocab-chunked LM head (kernels/logprob_head.h): log-probs, lse and entropy
// against a naive float64 log_softmax, independence of the chunk size, backward against
// the float64 gradient and finite differences, top-k against a naive sort (ties included),
// the += / = gradient contract and out-of-range targets.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>
#include <vector>

#include "core/numerics.h"
#include "kernels/logprob_head.h"
#include "kernels/tensor_ops.h"
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

struct Problem {
  std::int64_t T, D, V;
  Tensor h, w, targets, coef;  // coef: c_t of the loss L = Σ c_t logp_t

  Problem(std::int64_t t, std::int64_t d, std::int64_t v, std::uint64_t seed)
      : T(t), D(d), V(v), h(random_tensor(Shape{t, d}, seed)), w(random_tensor(Shape{v, d}, seed + 1, 0.5f)),
        targets(Shape{t}, DType::I32, Device::cpu(), "targets"), coef(random_tensor(Shape{t}, seed + 2)) {
    std::mt19937_64 gen(seed + 3);
    for (std::int32_t& x : targets.span<std::int32_t>()) x = static_cast<std::int32_t>(gen() % static_cast<std::uint64_t>(V));
  }
};

struct Forward {
  Tensor logp, lse, entropy;
};

Forward run_forward(const Problem& pb, std::int64_t chunk) {
  Forward f{Tensor(Shape{pb.T}, DType::F32, Device::cpu(), "logp"), Tensor(Shape{pb.T}, DType::F32, Device::cpu(), "lse"),
            Tensor(Shape{pb.T}, DType::F32, Device::cpu(), "entropy")};
  ops::LogprobHeadOptions opts;
  opts.chunk = chunk;
  opts.entropy = true;
  ops::logprob_head_forward(pb.h, pb.w, pb.targets, f.logp, f.lse, f.entropy, opts);
  return f;
}

// Naive float64 log_softmax over full [T, V] logits, with worst-case FP32 tolerances:
// a logit (length-D dot product) errs by dl = (D + 1) u Σ|h_i w_i|; lse moves by at most
// max dl plus the rounding of a length-V sum, (V + 4) u; logp adds the target's dl; the
// entropy H = lse - Σ p l moves by at most max dl (max l - min l) plus (V + 4) u (1 + range).
struct Reference {
  std::vector<double> logits, lse, logp, entropy, lse_tol, logp_tol, entropy_tol;
};

Reference reference(const Problem& pb) {
  Reference r;
  r.logits.assign(pb.T * pb.V, 0.0);
  const float* h = pb.h.data<float>();
  const float* w = pb.w.data<float>();
  for (std::int64_t t = 0; t < pb.T; ++t) {
    double m = -INFINITY, lo = INFINITY, dl = 0;
    std::vector<double> mag(pb.V);
    for (std::int64_t v = 0; v < pb.V; ++v) {
      double s = 0;
      for (std::int64_t i = 0; i < pb.D; ++i) {
        s += static_cast<double>(h[t * pb.D + i]) * w[v * pb.D + i];
        mag[v] += std::abs(static_cast<double>(h[t * pb.D + i]) * w[v * pb.D + i]);
      }
      r.logits[t * pb.V + v] = s;
      m = std::max(m, s);
      lo = std::min(lo, s);
      dl = std::max(dl, (pb.D + 1) * kU * mag[v]);
    }
    double sum = 0, pl = 0;
    for (std::int64_t v = 0; v < pb.V; ++v) sum += std::exp(r.logits[t * pb.V + v] - m);
    const double lse = m + std::log(sum);
    for (std::int64_t v = 0; v < pb.V; ++v) pl += std::exp(r.logits[t * pb.V + v] - lse) * r.logits[t * pb.V + v];
    const std::int32_t tg = pb.targets.data<std::int32_t>()[t];
    r.lse.push_back(lse);
    r.logp.push_back(r.logits[t * pb.V + tg] - lse);
    r.entropy.push_back(lse - pl);
    r.lse_tol.push_back(dl + (pb.V + 4) * kU + 2 * kU * std::abs(lse));
    r.logp_tol.push_back(r.lse_tol.back() + (pb.D + 1) * kU * mag[tg] + kU * std::abs(r.logp.back()));
    r.entropy_tol.push_back(dl * (m - lo) + (pb.V + 4) * kU * (1 + m - lo));
  }
  return r;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  double e = 0;
  for (std::int64_t i = 0; i < a.numel(); ++i) e = testing::worst_of(e, static_cast<double>(std::abs(a.data<float>()[i] - b.data<float>()[i])));
  return e;
}

}  // namespace

TEST_CASE("logprob head forward matches a float64 log_softmax", "[kernels][logprob_head]") {
  const Problem pb(13, 16, 100, 5);
  const Reference r = reference(pb);
  for (std::int64_t chunk : {7, 64, 100, 4096}) {
    const Forward f = run_forward(pb, chunk);
    INFO("chunk " << chunk);
    for (std::int64_t t = 0; t < pb.T; ++t) {
      INFO("row " << t);
      CHECK(std::abs(f.lse.data<float>()[t] - r.lse[t]) <= r.lse_tol[t]);
      CHECK(std::abs(f.logp.data<float>()[t] - r.logp[t]) <= r.logp_tol[t]);
      CHECK(std::abs(f.entropy.data<float>()[t] - r.entropy[t]) <= r.entropy_tol[t]);
    }
  }
}

TEST_CASE("logprob head results do not depend on the chunk size", "[kernels][logprob_head]") {
  // Chunking only changes the order of the online log-sum-exp: lse moves by FP32 rounding.
  const Problem pb(13, 16, 100, 7);
  const Forward whole = run_forward(pb, 100);
  Tensor dh0(Shape{pb.T, pb.D}, DType::F32), dw0(Shape{pb.V, pb.D}, DType::F32);
  ops::logprob_head_backward(pb.coef, pb.h, pb.w, pb.targets, whole.lse, dh0, dw0, {100, false});
  Tensor ids0(Shape{pb.T, 5}, DType::I32), top0(Shape{pb.T, 5}, DType::F32);
  ops::logprob_head_topk(pb.h, pb.w, 5, ids0, top0, {100, false});
  for (std::int64_t chunk : {7, 64, 1000}) {
    INFO("chunk " << chunk);
    const Forward f = run_forward(pb, chunk);
    CHECK(max_abs_diff(f.lse, whole.lse) <= 1e-5);
    CHECK(max_abs_diff(f.logp, whole.logp) <= 1e-5);
    CHECK(max_abs_diff(f.entropy, whole.entropy) <= 1e-5);
    Tensor dh(Shape{pb.T, pb.D}, DType::F32), dw(Shape{pb.V, pb.D}, DType::F32);
    ops::logprob_head_backward(pb.coef, pb.h, pb.w, pb.targets, whole.lse, dh, dw, {chunk, false});
    CHECK(max_abs_diff(dh, dh0) <= 1e-5);
    CHECK(max_abs_diff(dw, dw0) <= 1e-5);
    Tensor ids(Shape{pb.T, 5}, DType::I32), top(Shape{pb.T, 5}, DType::F32);
    ops::logprob_head_topk(pb.h, pb.w, 5, ids, top, {chunk, false});
    CHECK(std::equal(ids.span<std::int32_t>().begin(), ids.span<std::int32_t>().end(), ids0.span<std::int32_t>().begin()));
    CHECK(max_abs_diff(top, top0) <= 1e-5);
  }
}

TEST_CASE("logprob head backward matches float64 gradients and finite differences", "[kernels][logprob_head]") {
  Problem pb(13, 16, 100, 11);
  const std::int64_t chunk = 7;
  const Forward f = run_forward(pb, chunk);
  Tensor dh(Shape{pb.T, pb.D}, DType::F32), dw(Shape{pb.V, pb.D}, DType::F32);
  for (float& x : dh.span<float>()) x = 99.0f;  // dh is written
  ops::logprob_head_backward(pb.coef, pb.h, pb.w, pb.targets, f.lse, dh, dw, {chunk, false});

  // Float64 gradient: g_tv = c_t (onehot - p_tv), dh = g W, dW = g^T h. Normwise bound:
  // reductions of length D (logits), V (dh) and T (dW), each n u.
  const Reference r = reference(pb);
  std::vector<double> rdh(pb.T * pb.D, 0.0), rdw(pb.V * pb.D, 0.0);
  for (std::int64_t t = 0; t < pb.T; ++t)
    for (std::int64_t v = 0; v < pb.V; ++v) {
      const double g = pb.coef.data<float>()[t] *
                       ((v == pb.targets.data<std::int32_t>()[t]) - std::exp(r.logits[t * pb.V + v] - r.lse[t]));
      for (std::int64_t i = 0; i < pb.D; ++i) {
        rdh[t * pb.D + i] += g * pb.w.data<float>()[v * pb.D + i];
        rdw[v * pb.D + i] += g * pb.h.data<float>()[t * pb.D + i];
      }
    }
  const double tol = static_cast<double>(pb.D + pb.V + pb.T) * kU;
  for (auto [x, ref] : {std::pair{&dh, &rdh}, std::pair{&dw, &rdw}}) {
    double err = 0, mag = 0;
    for (std::int64_t i = 0; i < x->numel(); ++i) {
      err = testing::worst_of(err, std::abs(x->data<float>()[i] - (*ref)[i]));
      mag = std::max(mag, std::abs((*ref)[i]));
    }
    CHECK(err <= tol * mag);
  }

  // Finite differences of L = Σ c_t logp_t on 24 random elements of h and of W: of the
  // float64 reference (h = 1e-3): 1e-3 relative + 1e-6; of the FP32 kernel (h = 1e-2,
  // lse rounding ~1e-7 x T rows / 2h stays under 1e-4): 1e-2 relative + 1e-4.
  auto loss64 = [&] {
    const Reference rr = reference(pb);
    double s = 0;
    for (std::int64_t t = 0; t < pb.T; ++t) s += pb.coef.data<float>()[t] * rr.logp[t];
    return s;
  };
  auto loss32 = [&] {
    const Forward ff = run_forward(pb, chunk);
    double s = 0;
    for (std::int64_t t = 0; t < pb.T; ++t) s += static_cast<double>(pb.coef.data<float>()[t]) * ff.logp.data<float>()[t];
    return s;
  };
  auto central = [](Tensor& x, std::int64_t i, double step, const auto& loss) {
    float* xs = x.data<float>();
    const float orig = xs[i];
    xs[i] = static_cast<float>(orig + step);
    const double x_up = xs[i], up = loss();
    xs[i] = static_cast<float>(orig - step);
    const double x_down = xs[i], down = loss();
    xs[i] = orig;
    return (up - down) / (x_up - x_down);
  };
  std::mt19937_64 gen(13);
  for (auto [x, g, name] : {std::tuple{&pb.h, &dh, "h"}, std::tuple{&pb.w, &dw, "W"}}) {
    for (int s = 0; s < 24; ++s) {
      // Half of the W samples on target rows, where the gradient is large.
      std::int64_t i = static_cast<std::int64_t>(gen() % static_cast<std::uint64_t>(x->numel()));
      if (x == &pb.w && s % 2 == 0) i = pb.targets.data<std::int32_t>()[s % pb.T] * pb.D + i % pb.D;
      const double an = g->data<float>()[i];
      const double fd64 = central(*x, i, 1e-3, loss64), fd32 = central(*x, i, 1e-2, loss32);
      INFO(name << "[" << i << "]: analytic " << an << " fd64 " << fd64 << " fd32 " << fd32);
      CHECK(std::abs(fd64 - an) <= 1e-3 * std::max(std::abs(fd64), std::abs(an)) + 1e-6);
      CHECK(std::abs(fd32 - an) <= 1e-2 * std::max(std::abs(fd32), std::abs(an)) + 1e-4);
    }
  }
}

TEST_CASE("logprob head backward writes dh and accumulates dw", "[kernels][logprob_head]") {
  const Problem pb(5, 8, 30, 17);
  const Forward f = run_forward(pb, 8);
  Tensor dh(Shape{pb.T, pb.D}, DType::F32), dw(Shape{pb.V, pb.D}, DType::F32);
  ops::logprob_head_backward(pb.coef, pb.h, pb.w, pb.targets, f.lse, dh, dw, {8, false});
  const Tensor dh1 = dh.clone(), dw1 = dw.clone();
  ops::logprob_head_backward(pb.coef, pb.h, pb.w, pb.targets, f.lse, dh, dw, {8, false});
  for (std::int64_t i = 0; i < dh.numel(); ++i) REQUIRE(dh.data<float>()[i] == dh1.data<float>()[i]);
  for (std::int64_t i = 0; i < dw.numel(); ++i) REQUIRE(dw.data<float>()[i] == 2.0f * dw1.data<float>()[i]);
}

TEST_CASE("logprob head top-k matches a naive sort", "[kernels][logprob_head]") {
  const Problem pb(13, 16, 100, 19);
  const Reference r = reference(pb);
  const std::int64_t k = 6;
  for (std::int64_t chunk : {7, 64, 100}) {
    Tensor ids(Shape{pb.T, k}, DType::I32), lp(Shape{pb.T, k}, DType::F32);
    ops::logprob_head_topk(pb.h, pb.w, k, ids, lp, {chunk, false});
    for (std::int64_t t = 0; t < pb.T; ++t) {
      std::vector<std::int32_t> order(pb.V);
      std::iota(order.begin(), order.end(), 0);
      const double* l = r.logits.data() + t * pb.V;
      std::stable_sort(order.begin(), order.end(), [&](std::int32_t a, std::int32_t b) { return l[a] > l[b]; });
      INFO("chunk " << chunk << " row " << t);
      for (std::int64_t j = 0; j < k; ++j) {
        CHECK(ids.data<std::int32_t>()[t * k + j] == order[j]);
        CHECK(std::abs(lp.data<float>()[t * k + j] - (l[order[j]] - r.lse[t])) <= r.logp_tol[t]);
      }
    }
  }
}

TEST_CASE("logprob head top-k breaks ties towards the lower id", "[kernels][logprob_head]") {
  // D = 1 and small dyadic values: every logit is exact, so equal values tie exactly.
  const std::int64_t V = 12, k = 6;
  const float wv[V] = {1, 0.5f, 2, 0.5f, 2, -1, 0, 2, 1, 0.5f, -1, 2};
  Tensor w(Shape{V, 1}, DType::F32), h(Shape{3, 1}, DType::F32);
  std::copy(wv, wv + V, w.data<float>());
  h.data<float>()[0] = 1.0f;   // ids by value: 2 4 7 11 | 0 8 | ...
  h.data<float>()[1] = 0.0f;   // all tie: 0 1 2 3 4 5
  h.data<float>()[2] = -2.0f;  // 5 10 | 6 | 1 3 9 | ...
  const std::int32_t want[3][k] = {{2, 4, 7, 11, 0, 8}, {0, 1, 2, 3, 4, 5}, {5, 10, 6, 1, 3, 9}};
  for (std::int64_t chunk : {1, 5, 12}) {
    Tensor ids(Shape{3, k}, DType::I32), lp(Shape{3, k}, DType::F32);
    ops::logprob_head_topk(h, w, k, ids, lp, {chunk, false});
    for (int t = 0; t < 3; ++t)
      for (int j = 0; j < k; ++j) {
        INFO("chunk " << chunk << " row " << t << " rank " << j);
        CHECK(ids.data<std::int32_t>()[t * k + j] == want[t][j]);
      }
    for (int j = 0; j < k; ++j) CHECK(lp.data<float>()[k + j] == Approx(-std::log(12.0)).epsilon(1e-6));
  }
}

TEST_CASE("logprob head rejects targets outside the vocabulary", "[kernels][logprob_head]") {
  Problem pb(5, 8, 30, 23);
  Tensor logp(Shape{5}, DType::F32), lse(Shape{5}, DType::F32), none;
  pb.targets.data<std::int32_t>()[3] = 30;
  CHECK_THROWS_WITH(ops::logprob_head_forward(pb.h, pb.w, pb.targets, logp, lse, none),
                    Contains("target of row 3 is token id 30, outside the vocabulary [0, 30)"));
  pb.targets.data<std::int32_t>()[3] = 0;
  pb.targets.data<std::int32_t>()[1] = -1;
  Tensor dh(Shape{5, 8}, DType::F32), dw(Shape{30, 8}, DType::F32);
  CHECK_THROWS_WITH(ops::logprob_head_backward(logp, pb.h, pb.w, pb.targets, lse, dh, dw),
                    Contains("target of row 1 is token id -1"));
}

TEST_CASE("logprob head forward+backward timing, T=512, D=256, V=32000, chunk 4096",
          "[kernels][logprob_head][.bench]") {
  const Problem pb(512, 256, 32000, 29);
  Tensor dh(Shape{pb.T, pb.D}, DType::F32), dw(Shape{pb.V, pb.D}, DType::F32);
  std::vector<double> fwd, bwd;
  for (int rep = 0; rep < 3; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    const Forward f = run_forward(pb, 4096);
    const auto t1 = std::chrono::steady_clock::now();
    ops::logprob_head_backward(pb.coef, pb.h, pb.w, pb.targets, f.lse, dh, dw, {4096, false});
    const auto t2 = std::chrono::steady_clock::now();
    fwd.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    bwd.push_back(std::chrono::duration<double, std::milli>(t2 - t1).count());
  }
  std::sort(fwd.begin(), fwd.end());
  std::sort(bwd.begin(), bwd.end());
  std::printf("logprob head T=512 D=256 V=32000 chunk 4096: forward (with entropy) %.1f ms + backward %.1f ms "
              "(medians of 3)\n", fwd[1], bwd[1]);
}

TEST_CASE("logprob head with bf16 operands is the FP32 head on BF16-rounded operands", "[kernels][logprob_head]") {
  const Problem pb(11, 40, 300, 23);
  auto rounded = [](const Tensor& t) {
    Tensor r = t.clone();
    for (float& v : r.span<float>()) v = bf16_to_f32(f32_to_bf16(v));
    return r;
  };
  const Tensor hr = rounded(pb.h), wr = rounded(pb.w);
  auto forward = [&](const Tensor& h, const Tensor& w, bool bf16) {
    Forward f{Tensor(Shape{pb.T}, DType::F32), Tensor(Shape{pb.T}, DType::F32), Tensor(Shape{pb.T}, DType::F32)};
    ops::LogprobHeadOptions o{64, true, bf16};
    ops::logprob_head_forward(h, w, pb.targets, f.logp, f.lse, f.entropy, o);
    return f;
  };
  const Forward b = forward(pb.h, pb.w, true), r = forward(hr, wr, false), f = forward(pb.h, pb.w, false);
  // Forward: bit for bit the FP32 head on the rounded operands, and not the FP32 head
  // on the originals (the rounding happened).
  CHECK(max_abs_diff(b.logp, r.logp) == 0);
  CHECK(max_abs_diff(b.lse, r.lse) == 0);
  CHECK(max_abs_diff(b.entropy, r.entropy) == 0);
  CHECK(max_abs_diff(b.logp, f.logp) > 0);

  // Backward: the logits gradient is rounded too, so it matches the FP32 backward on the
  // rounded operands to BF16's relative precision (2^-8 per term of sums of like sign
  // at worst), and differs from it.
  auto backward = [&](const Tensor& h, const Tensor& w, const Tensor& lse, bool bf16) {
    Tensor dh(Shape{pb.T, pb.D}, DType::F32), dw(Shape{pb.V, pb.D}, DType::F32);
    ops::fill(dw, 0.0f);
    ops::logprob_head_backward(pb.coef, h, w, pb.targets, lse, dh, dw, ops::LogprobHeadOptions{64, false, bf16});
    return std::pair{dh, dw};
  };
  const auto [dhb, dwb] = backward(pb.h, pb.w, b.lse, true);
  const auto [dhr, dwr] = backward(hr, wr, r.lse, false);
  auto rel = [](const Tensor& a, const Tensor& ref) {
    double num = 0, den = 0;
    for (std::int64_t i = 0; i < a.numel(); ++i) {
      num = std::max(num, static_cast<double>(std::abs(a.data<float>()[i] - ref.data<float>()[i])));
      den = std::max(den, static_cast<double>(std::abs(ref.data<float>()[i])));
    }
    return num / den;
  };
  const double e_dh = rel(dhb, dhr), e_dw = rel(dwb, dwr);
  INFO("bf16 vs fp32-on-rounded backward: dh " << e_dh << ", dw " << e_dw);
  CHECK(e_dh > 0);
  CHECK(e_dh < 0x1p-8);
  CHECK(e_dw > 0);
  CHECK(e_dw < 0x1p-8);
}
