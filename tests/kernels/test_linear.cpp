// tests/kernels/test_linear.cpp: linear_forward / linear_backward / gemm_nt (kernels/linear.h).
//
// Fp32 and Bf16 against a naive float64 product (of the BF16-rounded operands for Bf16)
// with the FP32 accumulation bound; Fp32 gradients against central finite differences;
// Fp8 Fprop, Dgrad and Wgrad against an independent naive emulation of the DeepSeek-V3
// recipe written here (explicit transposes, quantize_fp8 on them, block partials in
// FP32 with k ascending, promoted with (scale_a * scale_b) * partial), and against FP32
// within the few percent that E4M3 allows. Shapes: partial tiles (T=5, in=300, out=130),
// small DeepSeek-like (T=64, in=512, out=384), several K blocks along tokens (T=300).
// Reference: reference/deepseek_v3_fp8.md §4; Higham, "Accuracy and Stability of
// Numerical Algorithms" §3.1 (|fl(sum) - sum| <= (n - 1) u sum|terms| to first order).
#include "kernels/linear.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "core/error.h"
#include "core/fp8_tensor.h"
#include "core/numerics.h"
#include "tests/catch.h"

namespace {

using namespace crucible;
using ops::GemmPrecision;

constexpr double kU = 0x1p-24;  // FP32 unit roundoff

struct Case {
  std::int64_t T, in, out;
};
// Partial 128-tiles everywhere; DeepSeek-like small; several K blocks along tokens; tiny.
const Case kCases[] = {{5, 300, 130}, {64, 512, 384}, {300, 130, 257}, {1, 1, 1}};

Tensor random_tensor(Shape shape, std::uint32_t seed, const char* name, float stddev = 1.0f) {
  Tensor t(shape, DType::F32, Device::cpu(), name);
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, stddev);
  for (float& v : t.span<float>()) v = normal(rng);
  return t;
}

Tensor filled(Shape shape, float value, const char* name) {
  Tensor t(shape, DType::F32, Device::cpu(), name);
  for (float& v : t.span<float>()) v = value;
  return t;
}

// Explicit transpose of a [rows, cols] matrix.
Tensor transpose(const Tensor& x) {
  const std::int64_t R = x.dim(0), C = x.dim(1);
  Tensor t(Shape{C, R}, DType::F32, Device::cpu(), x.name() + "^T");
  const float* s = x.data<float>();
  float* d = t.data<float>();
  for (std::int64_t r = 0; r < R; ++r)
    for (std::int64_t c = 0; c < C; ++c) d[c * R + r] = s[r * C + c];
  return t;
}

float bf16_round(float v) { return bf16_to_f32(f32_to_bf16(v)); }

// Naive C = A [M, K] B [N, K]^T in float64 on (optionally BF16-rounded) operands, with
// S = sum_k |a||b| per element for the error bounds.
struct Reference {
  std::vector<double> c, s;
};
Reference naive_nt(const Tensor& a, const Tensor& b, bool bf16) {
  const std::int64_t M = a.dim(0), N = b.dim(0), K = a.dim(1);
  auto operand = [bf16](const Tensor& t) {
    std::vector<double> v(static_cast<std::size_t>(t.numel()));
    const float* p = t.data<float>();
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = bf16 ? bf16_round(p[i]) : p[i];
    return v;
  };
  const std::vector<double> ap = operand(a), bp = operand(b);
  Reference r{std::vector<double>(M * N), std::vector<double>(M * N)};
  for (std::int64_t m = 0; m < M; ++m)
    for (std::int64_t n = 0; n < N; ++n) {
      double c = 0, s = 0;
      for (std::int64_t k = 0; k < K; ++k) {
        const double x = ap[m * K + k], y = bp[n * K + k];
        c += x * y;
        s += std::fabs(x * y);
      }
      r.c[m * N + n] = c;
      r.s[m * N + n] = s;
    }
  return r;
}

// The DeepSeek-V3 FP8 GEMM emulated naively: C = A B^T, A [M, K] in 1x128 tiles along K,
// B [N, K] in b_layout (1x128 tiles along K or 128x128 blocks). Per K block of 128:
// FP32 partial of decoded codes, k ascending (each product exact), then
// acc += (scale_a * scale_b) * partial. s = sum_k |dequantized a * dequantized b|.
Reference emulate_fp8_nt(const Tensor& a, const Tensor& b, ScaleLayout b_layout) {
  const std::int64_t M = a.dim(0), N = b.dim(0), K = a.dim(1), nkb = (K + 127) / 128;
  const Fp8Tensor qa = quantize_fp8(a, ScaleLayout::Tile1x128);
  const Fp8Tensor qb = quantize_fp8(b, b_layout);
  auto decode = [](const Fp8Tensor& q) {  // the codes' exact FP32 values (unscaled)
    std::vector<float> v(static_cast<std::size_t>(q.q.numel()));
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = e4m3_to_f32(q.q.data<std::uint8_t>()[i]);
    return v;
  };
  const std::vector<float> ca = decode(qa), cb = decode(qb);
  const float* sa = qa.scale.data<float>();
  const float* sb = qb.scale.data<float>();
  const std::int64_t b_rows_per_scale = b_layout == ScaleLayout::Tile1x128 ? 1 : 128;
  Reference r{std::vector<double>(M * N), std::vector<double>(M * N)};
  for (std::int64_t m = 0; m < M; ++m)
    for (std::int64_t n = 0; n < N; ++n) {
      float acc = 0.0f;
      double s = 0;
      for (std::int64_t kb = 0; kb < nkb; ++kb) {
        const float sa_mk = sa[m * nkb + kb];
        const float sb_nk = sb[(n / b_rows_per_scale) * nkb + kb];
        float partial = 0.0f;
        for (std::int64_t k = kb * 128; k < std::min(K, kb * 128 + 128); ++k) {
          const float x = ca[m * K + k], y = cb[n * K + k];
          partial += x * y;
          s += std::fabs(static_cast<double>(x) * sa_mk * static_cast<double>(y) * sb_nk);
        }
        acc += (sa_mk * sb_nk) * partial;
      }
      r.c[m * N + n] = acc;
      r.s[m * N + n] = s;
    }
  return r;
}

// Checks |got - ref| <= tol elementwise; reports the worst element.
void check_close(const char* what, const Tensor& got, const std::vector<double>& ref,
                 const std::vector<double>& tol) {
  const float* g = got.data<float>();
  REQUIRE(static_cast<std::size_t>(got.numel()) == ref.size());
  std::int64_t worst = -1, bad = 0;
  double worst_ratio = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    const double err = std::fabs(static_cast<double>(g[i]) - ref[i]);
    const double ratio = err / std::max(tol[i], std::numeric_limits<double>::min());
    if (!(err <= tol[i])) ++bad;
    if (!(ratio <= worst_ratio)) {
      worst_ratio = ratio;
      worst = static_cast<std::int64_t>(i);
    }
  }
  INFO(what << ": " << bad << " elements out of tolerance; worst at " << worst << ": got "
            << (worst >= 0 ? g[worst] : 0.0f) << " want " << (worst >= 0 ? ref[worst] : 0.0)
            << " tol " << (worst >= 0 ? tol[worst] : 0.0) << " (err / tol = " << worst_ratio << ")");
  CHECK(bad == 0);
}

// FP32 accumulation over K terms (any order): |err| <= K u S, doubled for margin, plus
// `extra_ulps` final roundings of the result (epilogue adds).
std::vector<double> gemm_tol(const Reference& r, std::int64_t K, double extra_ulps = 2) {
  std::vector<double> tol(r.c.size());
  for (std::size_t i = 0; i < tol.size(); ++i)
    tol[i] = 2.0 * static_cast<double>(K) * kU * r.s[i] + extra_ulps * kU * std::fabs(r.c[i]);
  return tol;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  double m = 0;
  for (std::int64_t i = 0; i < a.numel(); ++i)
    m = std::max(m, std::fabs(static_cast<double>(a.data<float>()[i]) - b.data<float>()[i]));
  return m;
}

double rel_fro_error(const Tensor& got, const Tensor& want) {
  double num = 0, den = 0;
  for (std::int64_t i = 0; i < got.numel(); ++i) {
    const double d = static_cast<double>(got.data<float>()[i]) - want.data<float>()[i];
    num += d * d;
    den += static_cast<double>(want.data<float>()[i]) * want.data<float>()[i];
  }
  return std::sqrt(num / den);
}

// ------------------------------------------------------------------------------- FP32

TEST_CASE("linear fp32 and bf16 forward and backward match a float64 reference", "[kernels][linear]") {
  const GemmPrecision precs[] = {GemmPrecision::Fp32, GemmPrecision::Bf16};
  std::uint32_t seed = 100;
  for (const Case& cs : kCases) {
    for (GemmPrecision p : precs) {
      const bool bf16 = p == GemmPrecision::Bf16;
      DYNAMIC_SECTION("T=" << cs.T << " in=" << cs.in << " out=" << cs.out << (bf16 ? " bf16" : " fp32")) {
        const std::int64_t T = cs.T, in = cs.in, out = cs.out;
        const Tensor x = random_tensor(Shape{T, in}, ++seed, "x");
        const Tensor w = random_tensor(Shape{out, in}, ++seed, "w", 0.05f);
        const Tensor b = random_tensor(Shape{out}, ++seed, "b");
        const Tensor dy = random_tensor(Shape{T, out}, ++seed, "dy");
        const Tensor dw0 = random_tensor(Shape{out, in}, ++seed, "dw0");
        const Tensor db0 = random_tensor(Shape{out}, ++seed, "db0");

        // Fprop: y = x w^T + b, y pre-filled with NaN (it must be overwritten).
        Tensor y = filled(Shape{T, out}, std::nanf(""), "y");
        ops::linear_forward(x, w, b, y, p);
        Reference fy = naive_nt(x, w, bf16);
        for (std::int64_t t = 0; t < T; ++t)
          for (std::int64_t o = 0; o < out; ++o) fy.c[t * out + o] += b.data<float>()[o];
        check_close("fprop", y, fy.c, gemm_tol(fy, in));

        // Dgrad: dx = dy w = dy [T, out] (w^T [in, out])^T; Wgrad: dw += dy^T x.
        Tensor dx = filled(Shape{T, in}, std::nanf(""), "dx");
        Tensor dw = dw0.clone(), db = db0.clone();
        ops::linear_backward(dy, x, w, dx, dw, db, p);
        const Reference fdx = naive_nt(dy, transpose(w), bf16);
        check_close("dgrad", dx, fdx.c, gemm_tol(fdx, out));
        Reference fdw = naive_nt(transpose(dy), transpose(x), bf16);
        std::vector<double> tdw = gemm_tol(fdw, T);
        for (std::size_t i = 0; i < fdw.c.size(); ++i) {
          // The prior dw joins the FP32 sum: one more term of the accumulation.
          tdw[i] += 2.0 * static_cast<double>(T + 1) * kU * std::fabs(dw0.data<float>()[i]);
          fdw.c[i] += dw0.data<float>()[i];
        }
        check_close("wgrad", dw, fdw.c, tdw);
        // dbias += column sums of dy (never rounded to BF16: not a GEMM).
        std::vector<double> rdb(out), tdb(out);
        for (std::int64_t o = 0; o < out; ++o) {
          double s = 0, a = 0;
          for (std::int64_t t = 0; t < T; ++t) {
            s += dy.data<float>()[t * out + o];
            a += std::fabs(dy.data<float>()[t * out + o]);
          }
          rdb[o] = s + db0.data<float>()[o];
          tdb[o] = 2.0 * static_cast<double>(T + 1) * kU * (a + std::fabs(db0.data<float>()[o]));
        }
        check_close("dbias", db, rdb, tdb);

        if (bf16 && in >= 8) {
          // BF16 rounding really happened: the result differs from FP32.
          Tensor y32(Shape{T, out}, DType::F32);
          ops::linear_forward(x, w, b, y32, GemmPrecision::Fp32);
          CHECK(max_abs_diff(y, y32) > 0.0);
        }
      }
    }
  }
}

TEST_CASE("linear fp32 gradients match central finite differences", "[kernels][linear]") {
  const std::int64_t T = 3, in = 20, out = 7;
  Tensor x = random_tensor(Shape{T, in}, 1, "x");
  Tensor w = random_tensor(Shape{out, in}, 2, "w", 0.3f);
  Tensor b = random_tensor(Shape{out}, 3, "b");
  const Tensor wt = random_tensor(Shape{T, out}, 4, "loss_weights");  // L = sum(y * wt)

  auto loss = [&] {
    Tensor y(Shape{T, out}, DType::F32);
    ops::linear_forward(x, w, b, y, GemmPrecision::Fp32);
    double l = 0;
    for (std::int64_t i = 0; i < y.numel(); ++i)
      l += static_cast<double>(y.data<float>()[i]) * wt.data<float>()[i];
    return l;
  };
  // dL/dy = wt.
  Tensor dx(Shape{T, in}, DType::F32), dw(Shape{out, in}, DType::F32), db(Shape{out}, DType::F32);
  ops::linear_backward(wt, x, w, dx, dw, db, GemmPrecision::Fp32);

  // Central differences with h = 1e-3 relative (floor 1e-3), on the FP32 values actually
  // stored. FP32 rounding of y makes L noisy by ~sqrt(out) u |y| |wt| ~ 1e-6, i.e. ~1e-3
  // in the quotient: tolerance 1e-2 relative to the gradient, 1e-3 absolute.
  auto check_fd = [&](Tensor& param, const Tensor& grad, const char* what) {
    float* p = param.data<float>();
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
      const double an = grad.data<float>()[i];
      INFO(what << "[" << i << "]: analytic " << an << " finite difference " << fd);
      CHECK(std::fabs(fd - an) <= 1e-2 * std::fabs(an) + 1e-3);
    }
  };
  check_fd(x, dx, "dx");
  check_fd(w, dw, "dw");
  check_fd(b, db, "dbias");
}

TEST_CASE("gemm_nt: beta 0 overwrites, beta 1 accumulates, in every precision", "[kernels][linear]") {
  const std::int64_t M = 9, N = 140, K = 260;
  const Tensor a = random_tensor(Shape{M, K}, 11, "a");
  const Tensor b = random_tensor(Shape{N, K}, 12, "b");
  const Tensor c0 = random_tensor(Shape{M, N}, 13, "c0");
  for (GemmPrecision p : {GemmPrecision::Fp32, GemmPrecision::Bf16, GemmPrecision::Fp8}) {
    Tensor y(Shape{M, N}, DType::F32);
    ops::linear_forward(a, b, Tensor(), y, p);
    Tensor c = filled(Shape{M, N}, std::nanf(""), "c");
    ops::gemm_nt(a, b, c, 0.0f, p);
    CHECK(max_abs_diff(c, y) == 0.0);  // NaN in c would show up as NaN here
    Tensor c1 = c0.clone();
    ops::gemm_nt(a, b, c1, 1.0f, p);
    if (p == GemmPrecision::Fp8) {
      // The FP8 epilogue adds the finished accumulator once: exactly c0 + y.
      for (std::int64_t i = 0; i < c1.numel(); ++i)
        REQUIRE(c1.data<float>()[i] == c0.data<float>()[i] + y.data<float>()[i]);
    } else {
      Reference r = naive_nt(a, b, p == GemmPrecision::Bf16);
      std::vector<double> tol = gemm_tol(r, K + 1);
      for (std::size_t i = 0; i < r.c.size(); ++i) {
        r.c[i] += c0.data<float>()[i];
        tol[i] += 2.0 * (K + 1) * kU * std::fabs(c0.data<float>()[i]);
      }
      check_close("gemm_nt beta=1", c1, r.c, tol);
    }
  }
}

// -------------------------------------------------------------------------------- FP8

// Bound between the kernel (sgemm partials: any summation order inside a K block) and
// the naive emulation (k ascending): each partial is within (kw - 1) u sum|products| of
// exact, each promotion chain within 2 nkb u of its exactly-promoted sum, so
//   |kernel - emulation| <= (2 * 128 + 4 * nkb) u S + 2 u |result|,
// S = sum_k |dequantized a * dequantized b|, plus the final epilogue add.
std::vector<double> fp8_tol(const Reference& r, std::int64_t K) {
  const double nkb = static_cast<double>((K + 127) / 128);
  std::vector<double> tol(r.c.size());
  for (std::size_t i = 0; i < tol.size(); ++i)
    tol[i] = (2.0 * 128 + 4.0 * nkb) * kU * r.s[i] + 2.0 * kU * std::fabs(r.c[i]);
  return tol;
}

TEST_CASE("linear fp8 Fprop, Dgrad and Wgrad equal a naive emulation of the V3 recipe",
          "[kernels][linear][fp8]") {
  std::uint32_t seed = 500;
  for (const Case& cs : kCases) {
    DYNAMIC_SECTION("T=" << cs.T << " in=" << cs.in << " out=" << cs.out) {
      const std::int64_t T = cs.T, in = cs.in, out = cs.out;
      // Column bands of different magnitude so that tiles and blocks get different scales.
      Tensor x = random_tensor(Shape{T, in}, ++seed, "x");
      for (std::int64_t t = 0; t < T; ++t)
        for (std::int64_t i = 0; i < in; ++i)
          x.data<float>()[t * in + i] *= std::ldexp(1.0f, static_cast<int>((i / 100 + t) % 7) - 3);
      const Tensor w = random_tensor(Shape{out, in}, ++seed, "w", 0.05f);
      const Tensor dy = random_tensor(Shape{T, out}, ++seed, "dy", 1e-3f);
      const Tensor dw0 = random_tensor(Shape{out, in}, ++seed, "dw0", 1e-2f);

      Tensor y = filled(Shape{T, out}, std::nanf(""), "y");
      ops::linear_forward(x, w, Tensor(), y, GemmPrecision::Fp8);
      const Reference fy = emulate_fp8_nt(x, w, ScaleLayout::Block128x128);
      check_close("fp8 fprop", y, fy.c, fp8_tol(fy, in));

      Tensor dx = filled(Shape{T, in}, std::nanf(""), "dx");
      Tensor dw = dw0.clone();
      Tensor no_bias;
      ops::linear_backward(dy, x, w, dx, dw, no_bias, GemmPrecision::Fp8);
      // Dgrad: W^T [in, out] quantized in its own 128x128 blocks (the kernel reuses W's).
      const Reference fdx = emulate_fp8_nt(dy, transpose(w), ScaleLayout::Block128x128);
      check_close("fp8 dgrad", dx, fdx.c, fp8_tol(fdx, out));
      // Wgrad: dy^T [out, T] and x^T [in, T], both 1x128 tiles along tokens; dw += result.
      Reference fdw = emulate_fp8_nt(transpose(dy), transpose(x), ScaleLayout::Tile1x128);
      for (std::size_t i = 0; i < fdw.c.size(); ++i)
        fdw.c[i] = static_cast<float>(fdw.c[i]) + dw0.data<float>()[i];  // the FP32 epilogue add
      check_close("fp8 wgrad", dw, fdw.c, fp8_tol(fdw, T));
    }
  }
}

TEST_CASE("linear fp8 is within a few percent of fp32 and deterministic", "[kernels][linear][fp8]") {
  std::uint32_t seed = 900;
  for (const Case& cs : kCases) {
    if (cs.in * cs.out < 1000) continue;  // too few terms for a statistical bound
    DYNAMIC_SECTION("T=" << cs.T << " in=" << cs.in << " out=" << cs.out) {
      const std::int64_t T = cs.T, in = cs.in, out = cs.out;
      const Tensor x = random_tensor(Shape{T, in}, ++seed, "x");
      const Tensor w = random_tensor(Shape{out, in}, ++seed, "w", 0.05f);
      const Tensor dy = random_tensor(Shape{T, out}, ++seed, "dy");
      Tensor none;
      Tensor y8(Shape{T, out}, DType::F32), y32(Shape{T, out}, DType::F32);
      ops::linear_forward(x, w, none, y8, GemmPrecision::Fp8);
      ops::linear_forward(x, w, none, y32, GemmPrecision::Fp32);
      Tensor dx8(Shape{T, in}, DType::F32), dx32(Shape{T, in}, DType::F32);
      Tensor dw8(Shape{out, in}, DType::F32), dw32(Shape{out, in}, DType::F32);
      ops::linear_backward(dy, x, w, dx8, dw8, none, GemmPrecision::Fp8);
      ops::linear_backward(dy, x, w, dx32, dw32, none, GemmPrecision::Fp32);
      // E4M3 keeps 3 mantissa bits: each operand's relative rounding error is <= 2^-4 and
      // about 2.5% rms for normal data, ~3.5% for a product; random signs keep the dot
      // product's relative error at that level. Above 0.5%: quantization really happened.
      for (const auto& [name, got, want] : {std::tuple{"fprop", &y8, &y32},
                                            std::tuple{"dgrad", &dx8, &dx32},
                                            std::tuple{"wgrad", &dw8, &dw32}}) {
        const double rel = rel_fro_error(*got, *want);
        INFO(name << ": relative Frobenius error vs fp32 " << rel);
        CHECK(rel < 0.06);
        CHECK(rel > 0.005);
      }
      // Deterministic: a second run is bit-identical.
      Tensor y8b(Shape{T, out}, DType::F32);
      ops::linear_forward(x, w, none, y8b, GemmPrecision::Fp8);
      CHECK(max_abs_diff(y8, y8b) == 0.0);
    }
  }
}

// ------------------------------------------------------------------------------ errors

TEST_CASE("linear rejects bad shapes and dtypes, naming the tensor", "[kernels][linear]") {
  const Tensor x = random_tensor(Shape{4, 8}, 1, "attn.x");
  const Tensor w = random_tensor(Shape{6, 9}, 2, "attn.q_proj.weight");
  Tensor y(Shape{4, 6}, DType::F32, Device::cpu(), "attn.q");
  CHECK_THROWS_WITH(ops::linear_forward(x, w, Tensor(), y), Catch::Contains("attn.q_proj.weight"));
  const Tensor w_ok = random_tensor(Shape{6, 8}, 3, "w");
  Tensor y_bad(Shape{4, 5}, DType::F32, Device::cpu(), "attn.q_bad");
  CHECK_THROWS_WITH(ops::linear_forward(x, w_ok, Tensor(), y_bad), Catch::Contains("attn.q_bad"));
  const Tensor x_i32(Shape{4, 8}, DType::I32, Device::cpu(), "ids");
  CHECK_THROWS_WITH(ops::linear_forward(x_i32, w_ok, Tensor(), y), Catch::Contains("f32"));
  Tensor bias_bad(Shape{5}, DType::F32, Device::cpu(), "q_bias");
  CHECK_THROWS_WITH(ops::linear_forward(x, w_ok, bias_bad, y), Catch::Contains("q_bias"));
  Tensor dy(Shape{4, 6}, DType::F32), dx(Shape{4, 8}, DType::F32);
  Tensor dw(Shape{6, 7}, DType::F32, Device::cpu(), "grad.w");
  Tensor none;
  CHECK_THROWS_WITH(ops::linear_backward(dy, x, w_ok, dx, dw, none), Catch::Contains("grad.w"));
  Tensor c(Shape{4, 7}, DType::F32, Device::cpu(), "logits");
  CHECK_THROWS_AS(ops::gemm_nt(x, w_ok, c, 0.0f, GemmPrecision::Fp32), crucible::Error);
}

// ---------------------------------------------------------------------- benchmark (hidden)

// Run with: test_kernels "[bench]". Times linear_forward at T=512, in=1024, out=1024.
TEST_CASE("linear_forward throughput (cpu)", "[.][bench]") {
  const std::int64_t T = 512, in = 1024, out = 1024;
  const Tensor x = random_tensor(Shape{T, in}, 1, "x");
  const Tensor w = random_tensor(Shape{out, in}, 2, "w", 0.05f);
  Tensor y(Shape{T, out}, DType::F32);
  for (GemmPrecision p : {GemmPrecision::Fp32, GemmPrecision::Bf16, GemmPrecision::Fp8}) {
    ops::linear_forward(x, w, Tensor(), y, p);  // warm-up
    const int reps = 5;
    const auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < reps; ++r) ops::linear_forward(x, w, Tensor(), y, p);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / reps;
    const char* name = p == GemmPrecision::Fp32 ? "fp32" : p == GemmPrecision::Bf16 ? "bf16" : "fp8";
    std::printf("linear_forward %s T=%lld in=%lld out=%lld: %.3f ms, %.1f GFLOP/s\n", name,
                static_cast<long long>(T), static_cast<long long>(in), static_cast<long long>(out),
                s * 1e3, 2.0 * T * in * out / s * 1e-9);
  }
}

}  // namespace
