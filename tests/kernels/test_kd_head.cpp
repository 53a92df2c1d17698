// Logit KD through two LM heads (kernels/kd_head.h): the loss against a naive float64
// tau^2 KL, zero when student and teacher agree, independence of the block size, the
// gradient (dhs, dws) against central differences of the float64 loss, the += / =
// contract, and the shape checks (vocabularies must match).
#include <cmath>
#include <random>
#include <vector>

#include "kernels/kd_head.h"
#include "tests/catch.h"
#include "tests/worst.h"

using namespace crucible;
using Catch::Contains;

namespace {

Tensor random_tensor(Shape shape, std::uint64_t seed, float scale = 1.0f) {
  Tensor t(shape, DType::F32);
  std::mt19937_64 gen(seed);
  std::normal_distribution<float> nd(0.0f, scale);
  for (float& v : t.span<float>()) v = nd(gen);
  return t;
}

// Σ_t c_t tau^2 KL(pt || ps) in float64 from the raw tensors.
double naive_loss(const Tensor& hs, const Tensor& ws, const Tensor& ht, const Tensor& wt, const Tensor& c, double tau,
                  std::vector<double>* per_token = nullptr) {
  const std::int64_t T = hs.dim(0), Ds = hs.dim(1), Dt = ht.dim(1), V = ws.dim(0);
  double total = 0;
  for (std::int64_t t = 0; t < T; ++t) {
    std::vector<double> zs(V), zt(V);
    for (std::int64_t v = 0; v < V; ++v) {
      double a = 0, b = 0;
      for (std::int64_t d = 0; d < Ds; ++d) a += double(hs.data<float>()[t * Ds + d]) * ws.data<float>()[v * Ds + d];
      for (std::int64_t d = 0; d < Dt; ++d) b += double(ht.data<float>()[t * Dt + d]) * wt.data<float>()[v * Dt + d];
      zs[v] = a / tau, zt[v] = b / tau;
    }
    auto lse = [&](const std::vector<double>& z) {
      double m = z[0], s = 0;
      for (double x : z) m = std::max(m, x);
      for (double x : z) s += std::exp(x - m);
      return m + std::log(s);
    };
    const double ls = lse(zs), lt = lse(zt);
    double kl = 0;
    for (std::int64_t v = 0; v < V; ++v) kl += std::exp(zt[v] - lt) * ((zt[v] - lt) - (zs[v] - ls));
    if (per_token) per_token->push_back(tau * tau * kl);
    total += c.data<float>()[t] * tau * tau * kl;
  }
  return total;
}

struct Problem {
  std::int64_t T = 13, Ds = 24, Dt = 40, V = 37;
  Tensor hs = random_tensor(Shape{T, Ds}, 1), ws = random_tensor(Shape{V, Ds}, 2, 0.4f);
  Tensor ht = random_tensor(Shape{T, Dt}, 3), wt = random_tensor(Shape{V, Dt}, 4, 0.4f);
  Tensor c = random_tensor(Shape{T}, 5);
};

}  // namespace

TEST_CASE("kd_head forward: tau^2 KL per token, zero for identical heads, block-size independent", "[kernels][kd]") {
  Problem p;
  for (float tau : {1.0f, 2.0f, 0.5f}) {
    INFO("tau " << tau);
    std::vector<double> want;
    naive_loss(p.hs, p.ws, p.ht, p.wt, p.c, tau, &want);
    for (std::int64_t rows : {1, 4, 64}) {
      Tensor loss(Shape{p.T}, DType::F32);
      ops::kd_head_forward(p.hs, p.ws, p.ht, p.wt, loss, {tau, rows});
      for (std::int64_t t = 0; t < p.T; ++t) CHECK(std::abs(loss.data<float>()[t] - want[t]) <= 1e-5 * (1 + want[t]));
    }
  }
  Tensor self(Shape{p.T}, DType::F32);
  ops::kd_head_forward(p.hs, p.ws, p.hs, p.ws, self, {1.5f, 64});
  for (float x : self.span<float>()) CHECK(std::abs(x) < 1e-6);
}

TEST_CASE("kd_head backward matches central differences of the float64 loss; dhs =, dws +=", "[kernels][kd]") {
  Problem p;
  for (float tau : {1.0f, 2.0f}) {
    INFO("tau " << tau);
    Tensor dhs(Shape{p.T, p.Ds}, DType::F32), dws(Shape{p.V, p.Ds}, DType::F32);
    for (float& x : dhs.span<float>()) x = 123.0f;  // written, not accumulated
    for (float& x : dws.span<float>()) x = 0.25f;   // accumulated
    ops::kd_head_backward(p.c, p.hs, p.ws, p.ht, p.wt, dhs, dws, {tau, 5});
    double worst = 0;
    auto check = [&](Tensor x, const Tensor& g, float offset) {
      std::mt19937_64 gen(7);
      for (int i = 0; i < 40; ++i) {
        const std::int64_t k = static_cast<std::int64_t>(gen() % static_cast<std::uint64_t>(x.numel()));
        float& v = x.data<float>()[k];
        const float orig = v, h = 1e-3f;
        v = orig + h;
        const double up = naive_loss(p.hs, p.ws, p.ht, p.wt, p.c, tau);
        v = orig - h;
        const double down = naive_loss(p.hs, p.ws, p.ht, p.wt, p.c, tau);
        v = orig;
        const double fd = (up - down) / ((double(orig) + h) - (double(orig) - h));
        const double got = g.data<float>()[k] - offset;
        worst = testing::worst_of(worst, std::abs(fd - got) / std::max(1e-2, std::abs(fd)));
      }
    };
    check(p.hs, dhs, 0.0f);
    check(p.ws, dws, 0.25f);
    INFO("worst relative error " << worst);
    CHECK(worst < 1e-3);
  }
}

TEST_CASE("kd_head refuses heads over different vocabularies", "[kernels][kd]") {
  Problem p;
  Tensor loss(Shape{p.T}, DType::F32);
  const Tensor wt_small = random_tensor(Shape{p.V - 1, p.Dt}, 9);
  REQUIRE_THROWS_WITH(ops::kd_head_forward(p.hs, p.ws, p.ht, wt_small, loss), Contains("student's vocabulary"));
}
