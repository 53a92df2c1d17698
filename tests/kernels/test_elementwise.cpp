// tests/kernels/test_elementwise.cpp: RMSNorm, SwiGLU, embedding, RoPE (kernels/elementwise.h).
//
// Every op against a naive float64 reference on random inputs (fixed seeds) with a bound
// derived from FP32 rounding and the reduction length; gradients against central finite
// differences of the FP32 ops (L = sum(out * random weights) accumulated in double); RoPE's
// inverse against the exact transpose (<R x, y> == <x, R^T y>); the gradient contract
// (activation gradients =, parameter gradients +=); errors that name the bad id/tensor.
// Reference: HF LlamaRMSNorm; transformers apply_rotary_pos_emb (rotate_half) and
// DeepSeek-V3's interleaved RoPE (reference/deepseek_v3_fp8.md §2.3).
#include "kernels/elementwise.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <random>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "tests/catch.h"

namespace {

using namespace crucible;

constexpr double kU = 0x1p-24;  // FP32 unit roundoff

Tensor random_tensor(Shape shape, std::uint32_t seed, const char* name, float stddev = 1.0f,
                     float mean = 0.0f) {
  Tensor t(shape, DType::F32, Device::cpu(), name);
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(mean, stddev);
  for (float& v : t.span<float>()) v = normal(rng);
  return t;
}

Tensor filled(Shape shape, float value, const char* name) {
  Tensor t(shape, DType::F32, Device::cpu(), name);
  for (float& v : t.span<float>()) v = value;
  return t;
}

Tensor ids_tensor(const std::vector<std::int32_t>& v, const char* name) {
  Tensor t(Shape{static_cast<std::int64_t>(v.size())}, DType::I32, Device::cpu(), name);
  std::copy(v.begin(), v.end(), t.data<std::int32_t>());
  return t;
}

double at(const Tensor& t, std::int64_t i) { return t.data<float>()[i]; }

// |got - ref| <= tol elementwise; reports the worst element.
void check_close(const char* what, const Tensor& got, const std::vector<double>& ref,
                 const std::vector<double>& tol) {
  REQUIRE(static_cast<std::size_t>(got.numel()) == ref.size());
  std::int64_t worst = -1, bad = 0;
  double worst_ratio = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    const double err = std::fabs(at(got, static_cast<std::int64_t>(i)) - ref[i]);
    const double ratio = err / std::max(tol[i], std::numeric_limits<double>::min());
    if (!(err <= tol[i])) ++bad;
    if (!(ratio <= worst_ratio)) {
      worst_ratio = ratio;
      worst = static_cast<std::int64_t>(i);
    }
  }
  INFO(what << ": " << bad << " elements out of tolerance; worst at " << worst << ": got "
            << (worst >= 0 ? at(got, worst) : 0.0) << " want " << (worst >= 0 ? ref[worst] : 0.0)
            << " tol " << (worst >= 0 ? tol[worst] : 0.0) << " (err / tol = " << worst_ratio << ")");
  CHECK(bad == 0);
}

// sum(out * wts) in double: the scalar loss of the finite-difference checks.
double weighted_sum(const Tensor& out, const Tensor& wts) {
  double l = 0;
  for (std::int64_t i = 0; i < out.numel(); ++i) l += at(out, i) * at(wts, i);
  return l;
}

// Central differences on every element of `param` (h = 1e-3 relative, floor 1e-3, on the
// FP32 values actually stored) against `grad`. The FP32 outputs make L noisy by about
// sqrt(n_affected) u |out| |wts| ~ 1e-6, ~1e-3 in the quotient, and the truncation error
// is O(h^2): tolerance rtol |analytic| + atol.
void check_fd(Tensor& param, const Tensor& grad, const std::function<double()>& loss,
              const char* what, double rtol = 1e-2, double atol = 2e-3) {
  float* p = param.data<float>();
  std::int64_t bad = 0;
  for (std::int64_t i = 0; i < param.numel(); ++i) {
    const float v = p[i];
    const float h = 1e-3f * std::max(1.0f, std::fabs(v));
    const float vp = v + h, vm = v - h;
    p[i] = vp;
    const double lp = loss();
    p[i] = vm;
    const double lm = loss();
    p[i] = v;
    const double fd = (lp - lm) / (static_cast<double>(vp) - vm);
    const double an = at(grad, i);
    if (!(std::fabs(fd - an) <= rtol * std::fabs(an) + atol)) {
      ++bad;
      UNSCOPED_INFO(what << "[" << i << "]: analytic " << an << " finite difference " << fd);
    }
  }
  INFO(what << ": finite-difference mismatches");
  CHECK(bad == 0);
}

// ----------------------------------------------------------------------------- RMSNorm

TEST_CASE("rmsnorm forward and backward match a float64 reference", "[kernels][rmsnorm]") {
  const std::int64_t dims[] = {1, 7, 64, 300, 1024};
  std::uint32_t seed = 10;
  for (std::int64_t D : dims) {
    DYNAMIC_SECTION("D=" << D) {
      const std::int64_t T = 5;
      const float eps = 1e-6f;
      const Tensor x = random_tensor(Shape{T, D}, ++seed, "x", 2.0f, 0.5f);
      const Tensor w = random_tensor(Shape{D}, ++seed, "w", 0.2f, 1.0f);
      const Tensor dy = random_tensor(Shape{T, D}, ++seed, "dy");
      const Tensor dw0 = random_tensor(Shape{D}, ++seed, "dw0");
      Tensor y = filled(Shape{T, D}, std::nanf(""), "y"), rstd(Shape{T}, DType::F32);
      ops::rmsnorm_forward(x, w, eps, y, rstd);
      Tensor dx = filled(Shape{T, D}, std::nanf(""), "dx"), dw = dw0.clone();
      ops::rmsnorm_backward(dy, x, w, rstd, dx, dw);

      // Reference in double. Bound: the FP32 sum of squares over 8 lanes has relative error
      // <= (D/8 + 3) u; the divide, eps add, sqrt and reciprocal add ~4 u to rstd (a relative
      // error e of the mean gives e/2 in rstd), the two products 2 u: |err| <= (D/8 + 10) u |y|.
      std::vector<double> ry(T * D), ty(T * D), rr(T), tr(T), rdx(T * D), tdx(T * D), rdw(D), tdw(D);
      const double c = static_cast<double>(D) / 8 + 10;
      for (std::int64_t i = 0; i < D; ++i) {
        rdw[i] = at(dw0, i);
        tdw[i] = 2 * (T + 1) * kU * std::fabs(at(dw0, i));
      }
      for (std::int64_t t = 0; t < T; ++t) {
        double ss = 0;
        for (std::int64_t i = 0; i < D; ++i) ss += at(x, t * D + i) * at(x, t * D + i);
        const double r = 1.0 / std::sqrt(ss / D + eps);
        rr[t] = r;
        tr[t] = c * kU * r;
        double dot = 0, adot = 0;  // sum dy w x and sum |dy w x|
        for (std::int64_t i = 0; i < D; ++i) {
          const double xi = at(x, t * D + i), wi = at(w, i), gi = at(dy, t * D + i);
          ry[t * D + i] = xi * r * wi;
          ty[t * D + i] = c * kU * std::fabs(ry[t * D + i]);
          dot += gi * wi * xi;
          adot += std::fabs(gi * wi * xi);
          rdw[i] += gi * xi * r;
          tdw[i] += 2 * (T + 1 + c) * kU * std::fabs(gi * xi * r);
        }
        // dx_i = r (dy_i w_i - x_i r^2/D * dot): each part carries ~(D/8 + 12) u.
        for (std::int64_t i = 0; i < D; ++i) {
          const double xi = at(x, t * D + i), gw = at(dy, t * D + i) * at(w, i);
          rdx[t * D + i] = r * (gw - xi * r * r / D * dot);
          tdx[t * D + i] = 2 * (c + 2) * kU * r * (std::fabs(gw) + std::fabs(xi) * r * r / D * adot);
        }
      }
      check_close("y", y, ry, ty);
      check_close("rstd", rstd, rr, tr);
      check_close("dx", dx, rdx, tdx);
      check_close("dw (+=)", dw, rdw, tdw);
    }
  }
}

TEST_CASE("rmsnorm gradients match finite differences", "[kernels][rmsnorm]") {
  const std::int64_t T = 3, D = 40;
  Tensor x = random_tensor(Shape{T, D}, 1, "x", 1.0f, 0.3f);
  Tensor w = random_tensor(Shape{D}, 2, "w", 0.3f, 1.0f);
  const Tensor wts = random_tensor(Shape{T, D}, 3, "loss_weights");
  auto loss = [&] {
    Tensor y(Shape{T, D}, DType::F32), r(Shape{T}, DType::F32);
    ops::rmsnorm_forward(x, w, 1e-5f, y, r);
    return weighted_sum(y, wts);
  };
  Tensor y(Shape{T, D}, DType::F32), r(Shape{T}, DType::F32);
  ops::rmsnorm_forward(x, w, 1e-5f, y, r);
  Tensor dx(Shape{T, D}, DType::F32), dw(Shape{D}, DType::F32);
  ops::rmsnorm_backward(wts, x, w, r, dx, dw);
  check_fd(x, dx, loss, "rmsnorm dx");
  check_fd(w, dw, loss, "rmsnorm dw");
}

// ------------------------------------------------------------------------------ SwiGLU

TEST_CASE("swiglu forward and backward match float64 and finite differences", "[kernels][swiglu]") {
  const std::int64_t T = 4, I = 50;
  Tensor gate = random_tensor(Shape{T, I}, 21, "gate", 3.0f);
  Tensor up = random_tensor(Shape{T, I}, 22, "up");
  // Saturated gates: silu -> 0 or g without NaN.
  const float extremes[] = {-100.0f, -30.0f, 30.0f, 100.0f, 0.0f};
  for (int i = 0; i < 5; ++i) gate.data<float>()[i] = extremes[i];
  const Tensor dout = random_tensor(Shape{T, I}, 23, "dout");
  Tensor out = filled(Shape{T, I}, std::nanf(""), "out");
  ops::swiglu_forward(gate, up, out);
  Tensor dg = filled(Shape{T, I}, std::nanf(""), "dgate"), du = filled(Shape{T, I}, std::nanf(""), "dup");
  ops::swiglu_backward(dout, gate, up, dg, du);

  // expf is within 1-2 ulp, each further op 1/2 ulp: 16 u relative, plus an absolute
  // floor for the underflowing tails (silu(-100) ~ 4e-42).
  std::vector<double> ro(T * I), to(T * I), rg(T * I), tg(T * I), ru(T * I), tu(T * I);
  for (std::int64_t i = 0; i < T * I; ++i) {
    const double g = at(gate, i), u = at(up, i), d = at(dout, i);
    const double s = 1.0 / (1.0 + std::exp(-g));
    ro[i] = g * s * u;
    ru[i] = d * g * s;
    rg[i] = d * u * s * (1 + g * (1 - s));
    to[i] = 16 * kU * std::fabs(ro[i]) + 1e-30;
    tu[i] = 16 * kU * std::fabs(ru[i]) + 1e-30;
    // 1 + g (1 - s) cancels near g ~ -1.28: bound by its terms' magnitudes.
    tg[i] = 32 * kU * std::fabs(d * u * s) * (1 + std::fabs(g * (1 - s))) + 1e-30;
  }
  check_close("out", out, ro, to);
  check_close("dgate", dg, rg, tg);
  check_close("dup", du, ru, tu);

  const Tensor wts = random_tensor(Shape{T, I}, 24, "loss_weights");
  auto loss = [&] {
    Tensor o(Shape{T, I}, DType::F32);
    ops::swiglu_forward(gate, up, o);
    return weighted_sum(o, wts);
  };
  ops::swiglu_backward(wts, gate, up, dg, du);
  check_fd(gate, dg, loss, "swiglu dgate");
  check_fd(up, du, loss, "swiglu dup");
}

// --------------------------------------------------------------------------- Embedding

TEST_CASE("embedding forward gathers rows, backward scatter-adds them", "[kernels][embedding]") {
  const std::int64_t V = 11, D = 9;
  Tensor table = random_tensor(Shape{V, D}, 31, "embed_tokens");
  const Tensor ids = ids_tensor({3, 0, 10, 3, 7, 3, 0}, "ids");  // repeats on purpose
  const std::int64_t T = ids.numel();
  Tensor out = filled(Shape{T, D}, std::nanf(""), "h");
  ops::embedding_forward(ids, table, out);
  for (std::int64_t t = 0; t < T; ++t)
    for (std::int64_t i = 0; i < D; ++i)
      REQUIRE(out.data<float>()[t * D + i] == table.data<float>()[ids.data<std::int32_t>()[t] * D + i]);

  const Tensor dout = random_tensor(Shape{T, D}, 32, "dout");
  const Tensor dt0 = random_tensor(Shape{V, D}, 33, "dtable0");
  Tensor dt = dt0.clone();
  ops::embedding_backward(dout, ids, dt);
  // Reference: dt0 + sum over tokens with that id, in double; <= (count + 1) u per row sum.
  std::vector<double> ref(V * D), tol(V * D);
  for (std::int64_t i = 0; i < V * D; ++i) ref[i] = at(dt0, i), tol[i] = 4 * kU * std::fabs(at(dt0, i));
  for (std::int64_t t = 0; t < T; ++t)
    for (std::int64_t i = 0; i < D; ++i) {
      const std::int64_t j = ids.data<std::int32_t>()[t] * D + i;
      ref[j] += at(dout, t * D + i);
      tol[j] += 2 * 4 * kU * std::fabs(at(dout, t * D + i));  // at most 3 repeats + dt0
    }
  check_close("dtable (+=)", dt, ref, tol);

  // Finite differences of L = sum(out * wts) with respect to the table.
  const Tensor wts = random_tensor(Shape{T, D}, 34, "loss_weights");
  auto loss = [&] {
    Tensor o(Shape{T, D}, DType::F32);
    ops::embedding_forward(ids, table, o);
    return weighted_sum(o, wts);
  };
  Tensor g(Shape{V, D}, DType::F32);
  ops::embedding_backward(wts, ids, g);
  check_fd(table, g, loss, "embedding dtable");
}

TEST_CASE("embedding rejects out-of-range ids, naming the id", "[kernels][embedding]") {
  const Tensor table = random_tensor(Shape{5, 4}, 1, "embed_tokens");
  Tensor out(Shape{3, 4}, DType::F32);
  CHECK_THROWS_WITH(ops::embedding_forward(ids_tensor({1, 5, 2}, "ids"), table, out),
                    Catch::Contains("token id 5 at position 1"));
  CHECK_THROWS_WITH(ops::embedding_forward(ids_tensor({-1, 0, 2}, "ids"), table, out),
                    Catch::Contains("token id -1"));
  Tensor dt(Shape{5, 4}, DType::F32, Device::cpu(), "dtable");
  CHECK_THROWS_WITH(ops::embedding_backward(out, ids_tensor({0, 1, 9}, "ids"), dt),
                    Catch::Contains("token id 9"));
  CHECK_THROWS_WITH(ops::embedding_forward(ids_tensor({0, 1}, "ids"), table, out),
                    Catch::Contains("out"));
}

// -------------------------------------------------------------------------------- RoPE

struct RopeCase {
  std::int64_t d, rot;
  bool interleaved;
};

// cos/sin tables [max_pos, rot/2] of pos * theta^(-2i/rot), times `factor` (YaRN-like).
void make_tables(std::int64_t max_pos, std::int64_t rot, double factor, Tensor& cos, Tensor& sin) {
  cos = Tensor(Shape{max_pos, rot / 2}, DType::F32, Device::cpu(), "rope.cos");
  sin = Tensor(Shape{max_pos, rot / 2}, DType::F32, Device::cpu(), "rope.sin");
  for (std::int64_t p = 0; p < max_pos; ++p)
    for (std::int64_t i = 0; i < rot / 2; ++i) {
      const double a = static_cast<double>(p) * std::pow(10000.0, -2.0 * i / rot);
      cos.data<float>()[p * rot / 2 + i] = static_cast<float>(factor * std::cos(a));
      sin.data<float>()[p * rot / 2 + i] = static_cast<float>(factor * std::sin(a));
    }
}

// The two elements of pair i of a head: (a, b) indices.
std::pair<std::int64_t, std::int64_t> pair_of(std::int64_t i, std::int64_t rot, bool interleaved) {
  return interleaved ? std::pair{2 * i, 2 * i + 1} : std::pair{i, i + rot / 2};
}

TEST_CASE("rope matches float64; inverse is the exact transpose", "[kernels][rope]") {
  const RopeCase cases[] = {{24, 16, true}, {24, 16, false}, {64, 64, false}, {64, 64, true}, {2, 2, true}};
  const std::int64_t T = 6, H = 3, max_pos = 100;
  const Tensor pos = ids_tensor({0, 1, 5, 99, 37, 5}, "pos");
  std::uint32_t seed = 40;
  for (const RopeCase& rc : cases) {
    for (double factor : {1.0, 1.2}) {  // 1.2: tables carrying YaRN's attention factor
      DYNAMIC_SECTION("d=" << rc.d << " rot=" << rc.rot << (rc.interleaved ? " interleaved" : " half")
                           << " factor=" << factor) {
        Tensor cos, sin;
        make_tables(max_pos, rc.rot, factor, cos, sin);
        const Tensor x0 = random_tensor(Shape{T, H, rc.d}, ++seed, "q");
        const Tensor y0 = random_tensor(Shape{T, H, rc.d}, ++seed, "dq");
        Tensor rx = x0.clone(), ry = y0.clone();
        ops::rope_apply(rx, pos, cos, sin, rc.rot, rc.interleaved);
        ops::rope_apply(ry, pos, cos, sin, rc.rot, rc.interleaved, /*inverse=*/true);

        // Forward vs double on the FP32 table values: two products and a sum, <= 2 u each.
        std::vector<double> ref(T * H * rc.d), tol(T * H * rc.d);
        double dot_rx_y = 0, dot_x_ry = 0, dot_tol = 0;
        for (std::int64_t t = 0; t < T; ++t)
          for (std::int64_t h = 0; h < H; ++h) {
            const std::int64_t base = (t * H + h) * rc.d, p = pos.data<std::int32_t>()[t];
            for (std::int64_t i = rc.rot; i < rc.d; ++i) ref[base + i] = at(x0, base + i), tol[base + i] = 0;
            for (std::int64_t i = 0; i < rc.rot / 2; ++i) {
              const auto [ia, ib] = pair_of(i, rc.rot, rc.interleaved);
              const double c = at(cos, p * rc.rot / 2 + i), s = at(sin, p * rc.rot / 2 + i);
              const double a = at(x0, base + ia), b = at(x0, base + ib);
              ref[base + ia] = a * c - b * s;
              ref[base + ib] = a * s + b * c;
              tol[base + ia] = tol[base + ib] = 2 * kU * (std::fabs(a) + std::fabs(b)) * factor;
              const double ya = at(y0, base + ia), yb = at(y0, base + ib);
              dot_tol += 4 * kU * (std::fabs(a) + std::fabs(b)) * (std::fabs(ya) + std::fabs(yb)) * factor;
            }
            for (std::int64_t i = 0; i < rc.d; ++i) {
              dot_rx_y += at(rx, base + i) * at(y0, base + i);
              dot_x_ry += at(x0, base + i) * at(ry, base + i);
            }
          }
        check_close("rope forward", rx, ref, tol);
        // <R x, y> == <x, R^T y>: the inverse is the backward of the forward.
        INFO("<Rx, y> = " << dot_rx_y << ", <x, R^T y> = " << dot_x_ry << ", tol " << dot_tol);
        CHECK(std::fabs(dot_rx_y - dot_x_ry) <= dot_tol);
        if (factor == 1.0) {
          // A pure rotation: the inverse undoes the forward (cos^2 + sin^2 = 1 within FP32).
          Tensor back = rx.clone();
          ops::rope_apply(back, pos, cos, sin, rc.rot, rc.interleaved, /*inverse=*/true);
          std::vector<double> rb(T * H * rc.d), tb(T * H * rc.d);
          for (std::int64_t i = 0; i < x0.numel(); ++i) rb[i] = at(x0, i);
          for (std::int64_t t = 0; t < T; ++t)
            for (std::int64_t h = 0; h < H; ++h)
              for (std::int64_t i = 0; i < rc.rot / 2; ++i) {
                const std::int64_t base = (t * H + h) * rc.d;
                const auto [ia, ib] = pair_of(i, rc.rot, rc.interleaved);
                const double mag = std::fabs(at(x0, base + ia)) + std::fabs(at(x0, base + ib));
                tb[base + ia] = tb[base + ib] = 8 * kU * mag;
              }
          check_close("rope inverse(forward(x))", back, rb, tb);
        }
      }
    }
  }
}

TEST_CASE("rope interleaved and half-split agree up to a permutation of dims", "[kernels][rope]") {
  // Interleaved pair i = (2i, 2i+1) is half-split pair i = (i, i + rot/2) after moving
  // dims: a check of the pairing convention independent of the reference above.
  const std::int64_t T = 3, H = 2, d = 8, rot = 8;
  Tensor cos, sin;
  make_tables(16, rot, 1.0, cos, sin);
  const Tensor pos = ids_tensor({3, 9, 15}, "pos");
  const Tensor x = random_tensor(Shape{T, H, d}, 7, "k");
  Tensor xi = x.clone(), xh(Shape{T, H, d}, DType::F32);
  for (std::int64_t r = 0; r < T * H; ++r)
    for (std::int64_t i = 0; i < rot / 2; ++i) {
      xh.data<float>()[r * d + i] = x.data<float>()[r * d + 2 * i];
      xh.data<float>()[r * d + i + rot / 2] = x.data<float>()[r * d + 2 * i + 1];
    }
  ops::rope_apply(xi, pos, cos, sin, rot, true);
  ops::rope_apply(xh, pos, cos, sin, rot, false);
  for (std::int64_t r = 0; r < T * H; ++r)
    for (std::int64_t i = 0; i < rot / 2; ++i) {
      REQUIRE(xi.data<float>()[r * d + 2 * i] == xh.data<float>()[r * d + i]);
      REQUIRE(xi.data<float>()[r * d + 2 * i + 1] == xh.data<float>()[r * d + i + rot / 2]);
    }
}

TEST_CASE("rope_apply_at rotates dims [offset, offset + rot) as rope_apply on their copy", "[kernels][rope]") {
  // MLA's query heads [nope | rope]: rotating the window in place must equal copying it
  // out, rotating the copy and copying it back, bit for bit, and leave the rest alone.
  const std::int64_t T = 5, H = 3, d = 14, rot = 6;
  Tensor cos, sin;
  make_tables(32, rot, 1.0, cos, sin);
  const Tensor pos = ids_tensor({0, 7, 31, 2, 19}, "pos");
  const Tensor x = random_tensor(Shape{T, H, d}, 11, "q");
  for (std::int64_t offset : {0, 3, 8}) {
    for (bool interleaved : {true, false}) {
      for (bool inverse : {false, true}) {
        Tensor in_place = x.clone();
        ops::rope_apply_at(in_place, offset, pos, cos, sin, rot, interleaved, inverse);
        Tensor window(Shape{T, H, rot}, DType::F32);
        for (std::int64_t r = 0; r < T * H; ++r)
          for (std::int64_t i = 0; i < rot; ++i) window.data<float>()[r * rot + i] = x.data<float>()[r * d + offset + i];
        ops::rope_apply(window, pos, cos, sin, rot, interleaved, inverse);
        Tensor expect = x.clone();
        for (std::int64_t r = 0; r < T * H; ++r)
          for (std::int64_t i = 0; i < rot; ++i) expect.data<float>()[r * d + offset + i] = window.data<float>()[r * rot + i];
        INFO("offset " << offset << (interleaved ? " interleaved" : " half-split") << (inverse ? " inverse" : ""));
        REQUIRE(std::memcmp(in_place.raw(), expect.raw(), x.nbytes()) == 0);
      }
    }
  }
  Tensor q = x.clone();
  CHECK_THROWS_WITH(ops::rope_apply_at(q, 9, pos, cos, sin, rot, true), Catch::Contains("outside the head dim"));
}

TEST_CASE("rope rejects bad positions and rotary dims", "[kernels][rope]") {
  Tensor cos, sin;
  make_tables(10, 8, 1.0, cos, sin);
  Tensor x(Shape{2, 1, 8}, DType::F32, Device::cpu(), "q_pe");
  CHECK_THROWS_WITH(ops::rope_apply(x, ids_tensor({0, 10}, "pos"), cos, sin, 8, true),
                    Catch::Contains("position 10 of token 1"));
  CHECK_THROWS_AS(ops::rope_apply(x, ids_tensor({0, 1}, "pos"), cos, sin, 7, true), crucible::Error);
  CHECK_THROWS_AS(ops::rope_apply(x, ids_tensor({0, 1}, "pos"), cos, sin, 6, true), crucible::Error);
  Tensor x_wide(Shape{2, 1, 4}, DType::F32, Device::cpu(), "narrow");
  CHECK_THROWS_WITH(ops::rope_apply(x_wide, ids_tensor({0, 1}, "pos"), cos, sin, 8, true),
                    Catch::Contains("narrow"));
}

}  // namespace
