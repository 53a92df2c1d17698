// GPU vs CPU twin: RMSNorm, SwiGLU, embedding and RoPE (kernels/elementwise.h), and the
// BF16 cast in front of the BF16 GEMMs.
//
// Fresh random inputs at the DeepSeek-V3 shapes of tests/gpu/elementwise_cases.h and
// small odd shapes. Every comparison checks NaN/Inf positions first, then values:
// - embedding and RoPE: identical bits (same additions in the same order; RoPE's
//   products rounded one by one on both sides);
// - RMSNorm and SwiGLU: |gpu - cpu| <= a bound derived per element below from FP32
//   rounding (u = 2^-24 per operation), the reduction length and CUDA's expf error.
// NOTE: the CPU twin is built with -std=c++20 (no GNU extensions), so g++ does not
// contract a * b + c into an FMA (-ffp-contract=off), and the CUDA twin spells those
// operations with __fmul_rn/__fadd_rn: both round every product and sum.
// GPU outputs that the contract says are written (=) start as NaN; parameter
// gradients (+=) start as random values. Determinism: a second GPU run of each
// reduction (RMSNorm dw, embedding backward) gives the same bits.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include <cuda_runtime.h>

#include "core/cuda_check.h"
#include "core/device_memory.h"
#include "core/numerics.h"
#include "kernels/cuda/gemm_prep_cuda.h"
#include "kernels/elementwise.h"
#include "tests/catch.h"
#include "tests/gpu/elementwise_cases.h"
#include "tests/gpu/gpu_compare.h"

using namespace crucible;
using namespace crucible::gpu_test;

namespace {

const Device kGpu = Device::cuda(0);

Tensor to_gpu(const Tensor& t) { return t.to(kGpu); }

// x [T, D] uniform in [-1, 1) with each row scaled by 2^k, k uniform in [-6, 6]:
// RMSNorm must not care about a row's scale.
Tensor scaled_rows(std::int64_t T, std::int64_t D, std::uint64_t seed) {
  Tensor x = uniform_tensor(Shape{T, D}, seed, "x");
  SplitMix rng{seed ^ 0x5eedull};
  float* p = x.data<float>();
  for (std::int64_t t = 0; t < T; ++t) {
    const float scale = std::exp2(static_cast<float>(rng.below(13) - 6));
    for (std::int64_t i = 0; i < D; ++i) p[t * D + i] *= scale;
  }
  return x;
}

}  // namespace

// ----------------------------------------------------------------------------- RMSNorm
//
// Forward, per row of length D. S = sum x^2 has only non-negative terms, and any
// summation order (the CPU's 8 lanes, the GPU's threads + tree) is within
// (D - 1) u S of the exact sum, so the twins' S differ by <= 2 D u S. r = 1/sqrt(S/D +
// eps) halves that relative difference and adds 3 roundings per side:
//   |r_gpu - r_cpu| <= (D + 8) u r.
// y = (x r) w rounds twice per side from the same x, w: |dy| <= (D + 12) u |y|.
//
// Backward, per row, with gw = dy w (rounded identically on both sides),
// A = sum |gw x|, k = sum(gw x) r^2 / D. Each side's dot is within (D + 1) u A of exact
// (products rounded on the CPU, fused on the GPU), so |dk| <= (2 + 2/D) u A r^2 + 6 u |k|
// (3 roundings of k per side). dx = r (gw - k x) then differs by r |x| |dk| plus 3
// roundings per side of values bounded by r (|gw| + |k x|):
//   tol(dx_i) = r |x_i| ((2 + 4/D) u A r^2 + 6 u |k|) + 6 u r (|gw_i| + |k x_i|).
// dw_i += sum_t dy x r: the terms are rounded identically on both sides and only the
// order of the T additions differs, then one add into dw:
//   tol(dw_i) = 2 (T - 1) u B_i + 2 u |dw_i|, B_i = sum_t |dy x r|.
// With T <= 8 the GPU sums in the CPU's order (one block) and dw must match bit for bit.
TEST_CASE("rmsnorm: CUDA forward and backward match the CPU twin", "[gpu][rmsnorm]") {
  REQUIRE(cuda_device_count() > 0);
  const float eps = 1e-6f;
  std::uint64_t seed = 1000;
  for (const gpu_cases::RowsCase& c : gpu_cases::kRmsNormCases) {
    const std::int64_t T = c.rows, D = c.cols;
    const std::string name = std::string("rmsnorm ") + c.name;
    const Tensor x = scaled_rows(T, D, seed++);
    const Tensor w = uniform_tensor(Shape{D}, seed++, "w", -2.0f, 2.0f);
    const Tensor dy = uniform_tensor(Shape{T, D}, seed++, "dy");
    const Tensor dw0 = uniform_tensor(Shape{D}, seed++, "dw");

    Tensor y(Shape{T, D}, DType::F32, Device::cpu(), "y"), r(Shape{T}, DType::F32, Device::cpu(), "rstd");
    ops::rmsnorm_forward(x, w, eps, y, r);
    Tensor dx(Shape{T, D}, DType::F32, Device::cpu(), "dx");
    Tensor dw = dw0.clone();
    ops::rmsnorm_backward(dy, x, w, r, dx, dw);

    const Tensor xg = to_gpu(x), wg = to_gpu(w), dyg = to_gpu(dy);
    Tensor yg = to_gpu(nan_tensor(Shape{T, D}, "y")), rg = to_gpu(nan_tensor(Shape{T}, "rstd"));
    ops::rmsnorm_forward(xg, wg, eps, yg, rg);
    // The backward takes the CPU's rstd, so that it is compared on its own.
    const Tensor rc = to_gpu(r);
    Tensor dxg = to_gpu(nan_tensor(Shape{T, D}, "dx")), dwg = to_gpu(dw0);
    ops::rmsnorm_backward(dyg, xg, wg, rc, dxg, dwg);

    const float* xp = x.data<float>();
    const float* wp = w.data<float>();
    const float* gp = dy.data<float>();
    const float* rp = r.data<float>();
    const float* yp = y.data<float>();
    const float* dwp = dw.data<float>();
    require_close(name + " rstd", r, rg, [&](std::int64_t t) { return (D + 8) * kU * rp[t]; });
    require_close(name + " y", y, yg, [&](std::int64_t i) { return (D + 12) * kU * std::fabs(yp[i]); });

    std::vector<double> row_a(T), row_k(T);  // A and k per row (see the derivation above)
    for (std::int64_t t = 0; t < T; ++t) {
      double a = 0, dot = 0;
      for (std::int64_t i = 0; i < D; ++i) {
        const double gw = static_cast<double>(gp[t * D + i]) * wp[i];
        a += std::fabs(gw * xp[t * D + i]);
        dot += gw * xp[t * D + i];
      }
      row_a[t] = a;
      row_k[t] = dot * rp[t] * rp[t] / static_cast<double>(D);
    }
    require_close(name + " dx", dx, dxg, [&](std::int64_t idx) {
      const std::int64_t t = idx / D, i = idx % D;
      const double rt = rp[t], xi = std::fabs(xp[idx]), k = std::fabs(row_k[t]);
      const double gw = std::fabs(static_cast<double>(gp[idx]) * wp[i]);
      return rt * xi * ((2.0 + 4.0 / D) * kU * row_a[t] * rt * rt + 6 * kU * k) + 6 * kU * rt * (gw + k * xi);
    });
    std::vector<double> col_b(D, 0.0);  // B_i
    for (std::int64_t t = 0; t < T; ++t)
      for (std::int64_t i = 0; i < D; ++i)
        col_b[i] += std::fabs(static_cast<double>(gp[t * D + i]) * xp[t * D + i] * rp[t]);
    if (T <= 8) {
      require_same_bits(name + " dw (one block: the CPU's order)", dw, dwg);
    } else {
      require_close(name + " dw", dw, dwg, [&](std::int64_t i) {
        return 2.0 * (T - 1) * kU * col_b[i] + 2 * kU * std::fabs(dwp[i]);
      });
    }
    // Determinism: the same launch again gives the same bits.
    Tensor dx2 = to_gpu(nan_tensor(Shape{T, D}, "dx2")), dw2 = to_gpu(dw0);
    ops::rmsnorm_backward(dyg, xg, wg, rc, dx2, dw2);
    require_same_bits(name + " dx, second run", on_host(dxg), dx2);
    require_same_bits(name + " dw, second run", on_host(dwg), dw2);
  }
}

// ----------------------------------------------------------------------------- SwiGLU
//
// Per element the twins evaluate the same expressions; only exp differs: CUDA's expf
// is within 2 ulp (<= 4u relative), the host's within 1 ulp (<= 2u), so the two
// e = exp(-g) differ by <= 6u e. Then 1 + e (<= 6u e / (1 + e) + 2u) and the division
// (+2u) give |ds| <= 10u s. Hence
//   out = (g s) u, dup = dout (g s): <= 10u + 2 * 2u (two roundings per side): 16u |out|.
//   dgate = (dout u)(s (1 + g (1 - s))): propagating |ds| <= 10u s through 1 - s,
//   g (1 - s), 1 + ..., s (...) and the two outer products (2u each per side) gives
//   <= 28u |dout u| s (1 + |g|); we allow 32u |dout u| s (1 + |g|).
// Gates are uniform in [-8, 8] (both saturated ends) plus, in the larger cases,
// +-inf, NaN, +-100 (exp overflows to inf on both sides), +-0 and an infinite up.
TEST_CASE("swiglu: CUDA forward and backward match the CPU twin", "[gpu][swiglu]") {
  REQUIRE(cuda_device_count() > 0);
  std::uint64_t seed = 2000;
  for (const gpu_cases::RowsCase& c : gpu_cases::kSwiGluCases) {
    const Shape shape{c.rows, c.cols};
    const std::string name = std::string("swiglu ") + c.name;
    Tensor gate = uniform_tensor(shape, seed++, "gate", -8.0f, 8.0f);
    Tensor up = uniform_tensor(shape, seed++, "up", -2.0f, 2.0f);
    const Tensor dout = uniform_tensor(shape, seed++, "dout");
    if (gate.numel() > 16) {
      const float inf = std::numeric_limits<float>::infinity();
      float* g = gate.data<float>();
      g[1] = inf, g[2] = -inf, g[3] = std::numeric_limits<float>::quiet_NaN();
      g[4] = 100.0f, g[5] = -100.0f, g[6] = 0.0f, g[7] = -0.0f;
      up.data<float>()[9] = -inf;
    }
    Tensor out(shape, DType::F32, Device::cpu(), "out"), dg(shape, DType::F32, Device::cpu(), "dgate"),
        du(shape, DType::F32, Device::cpu(), "dup");
    ops::swiglu_forward(gate, up, out);
    ops::swiglu_backward(dout, gate, up, dg, du);

    const Tensor gg = to_gpu(gate), ug = to_gpu(up), dog = to_gpu(dout);
    Tensor outg = to_gpu(nan_tensor(shape, "out")), dgg = to_gpu(nan_tensor(shape, "dgate")),
           dug = to_gpu(nan_tensor(shape, "dup"));
    ops::swiglu_forward(gg, ug, outg);
    ops::swiglu_backward(dog, gg, ug, dgg, dug);

    const float* gp = gate.data<float>();
    const float* upp = up.data<float>();
    const float* dop = dout.data<float>();
    const float* outp = out.data<float>();
    const float* dup = du.data<float>();
    require_close(name + " out", out, outg, [&](std::int64_t i) { return 16 * kU * std::fabs(outp[i]); });
    require_close(name + " dup", du, dug, [&](std::int64_t i) { return 16 * kU * std::fabs(dup[i]); });
    require_close(name + " dgate", dg, dgg, [&](std::int64_t i) {
      const double g = gp[i], s = 1.0 / (1.0 + std::exp(-g));
      return 32 * kU * std::fabs(static_cast<double>(dop[i]) * upp[i]) * s * (1.0 + std::fabs(g));
    });
  }
}

// -------------------------------------------------------------------------- Embedding
//
// Bit for bit: the forward copies rows; the backward adds each table element's
// gradient rows in ascending token order on both sides. Ids: a quarter of the tokens
// are 0 (a padding id repeated ~1000 times), an eighth come from 8 hot ids, the rest
// are uniform over the vocabulary, and the last id V - 1 appears.
TEST_CASE("embedding: CUDA forward and backward match the CPU twin bit for bit", "[gpu][embedding]") {
  REQUIRE(cuda_device_count() > 0);
  std::uint64_t seed = 3000;
  for (const gpu_cases::EmbeddingCase& c : gpu_cases::kEmbeddingCases) {
    const std::int64_t T = c.tokens, V = c.vocab, D = c.dim;
    const std::string name = std::string("embedding ") + c.name;
    Tensor ids(Shape{T}, DType::I32, Device::cpu(), "ids");
    SplitMix rng{seed++};
    std::int32_t* id = ids.data<std::int32_t>();
    for (std::int64_t t = 0; t < T; ++t) {
      const std::int64_t kind = rng.below(8);
      id[t] = static_cast<std::int32_t>(kind < 2    ? 0
                                        : kind == 2 ? rng.below(std::min<std::int64_t>(8, V))
                                                    : rng.below(V));
    }
    id[T - 1] = static_cast<std::int32_t>(V - 1);
    const Tensor table = uniform_tensor(Shape{V, D}, seed++, "table");
    const Tensor dout = uniform_tensor(Shape{T, D}, seed++, "dout");

    Tensor out(Shape{T, D}, DType::F32, Device::cpu(), "out");
    ops::embedding_forward(ids, table, out);
    Tensor dtable = uniform_tensor(Shape{V, D}, seed++, "dtable");  // += onto random values
    const Tensor dtable_g0 = to_gpu(dtable);
    ops::embedding_backward(dout, ids, dtable);

    const Tensor idg = to_gpu(ids), dog = to_gpu(dout);
    Tensor outg = to_gpu(nan_tensor(Shape{T, D}, "out"));
    ops::embedding_forward(idg, to_gpu(table), outg);
    require_same_bits(name + " forward", out, outg);

    Tensor dtg = dtable_g0.clone(), dtg2 = dtable_g0.clone();
    ops::embedding_backward(dog, idg, dtg);
    require_same_bits(name + " backward", dtable, dtg);
    ops::embedding_backward(dog, idg, dtg2);
    require_same_bits(name + " backward, second run", on_host(dtg), dtg2);
  }
}

// ------------------------------------------------------------------------------- RoPE
//
// Bit for bit: the same four products and two sums per pair, each rounded once, on
// both sides; forward and inverse; where rot < d, also over the last rot dims
// (rope_apply_at). Tables [16384, rot/2] of pos * 10000^(-2i/rot),
// times 1.25 (a YaRN-style attention factor); positions uniform over the table.
TEST_CASE("rope: CUDA matches the CPU twin bit for bit, forward and inverse", "[gpu][rope]") {
  REQUIRE(cuda_device_count() > 0);
  const std::int64_t max_pos = 16384;
  std::uint64_t seed = 4000;
  for (const gpu_cases::RopeCase& c : gpu_cases::kRopeCases) {
    const std::int64_t T = c.tokens, H = c.heads, d = c.dim, rot = c.rot, half = rot / 2;
    Tensor cos(Shape{max_pos, half}, DType::F32, Device::cpu(), "rope.cos");
    Tensor sin(Shape{max_pos, half}, DType::F32, Device::cpu(), "rope.sin");
    for (std::int64_t p = 0; p < max_pos; ++p)
      for (std::int64_t i = 0; i < half; ++i) {
        const double a = static_cast<double>(p) * std::pow(10000.0, -2.0 * i / rot);
        cos.data<float>()[p * half + i] = static_cast<float>(1.25 * std::cos(a));
        sin.data<float>()[p * half + i] = static_cast<float>(1.25 * std::sin(a));
      }
    Tensor pos(Shape{T}, DType::I32, Device::cpu(), "pos");
    SplitMix rng{seed++};
    for (std::int32_t& p : pos.span<std::int32_t>()) p = static_cast<std::int32_t>(rng.below(max_pos));
    const Tensor x = uniform_tensor(Shape{T, H, d}, seed++, "x", -4.0f, 4.0f);
    const Tensor posg = to_gpu(pos), cosg = to_gpu(cos), sing = to_gpu(sin);
    for (bool inverse : {false, true}) {
      const std::string name = std::string("rope ") + c.name + (inverse ? " inverse" : " forward");
      Tensor xc = x.clone();
      ops::rope_apply(xc, pos, cos, sin, rot, c.interleaved, inverse);
      Tensor xg = to_gpu(x);
      ops::rope_apply(xg, posg, cosg, sing, rot, c.interleaved, inverse);
      require_same_bits(name, xc, xg);
      if (d == rot) continue;
      // The window at the end of each head (MLA's query rope dims): rope_apply_at.
      Tensor wc = x.clone(), wg = to_gpu(x);
      ops::rope_apply_at(wc, d - rot, pos, cos, sin, rot, c.interleaved, inverse);
      ops::rope_apply_at(wg, d - rot, posg, cosg, sing, rot, c.interleaved, inverse);
      require_same_bits(name + " at offset " + std::to_string(d - rot), wc, wg);
    }
  }
}

// ----------------------------------------------------------------------------- BF16 cast
//
// cast_f32_to_bf16 (kernels/cuda/gemm_prep_cuda.h), the cast in front of every BF16 GEMM:
// the bits of core's f32_to_bf16 (RNE; a NaN stays a NaN, whose payload may differ) for
// every element, at lengths and offsets that take the 8-wide path, the scalar path and
// the tail, with NaN, +-Inf, subnormals and ties in the input.
TEST_CASE("cast_f32_to_bf16: the CPU's RNE bits, aligned or not, any length", "[gpu][cast]") {
  REQUIRE(cuda_device_count() > 0);
  const std::int64_t total = 1000003 + 16;
  Tensor x = uniform_tensor(Shape{total}, 4242, "x");
  float* p = x.data<float>();
  p[3] = std::numeric_limits<float>::quiet_NaN();
  p[10] = std::numeric_limits<float>::infinity();
  p[11] = -std::numeric_limits<float>::infinity();
  p[12] = std::numeric_limits<float>::denorm_min();
  for (std::int64_t i = 20; i < 40; ++i) {  // exact ties: the low 16 bits 0x8000
    std::uint32_t bits = 0x3f808000u + static_cast<std::uint32_t>(i - 20) * 0x10000u;
    std::memcpy(&p[i], &bits, 4);
  }
  const Tensor xg = x.to(kGpu);
  for (std::int64_t offset : {0, 1, 4, 8}) {
    for (std::int64_t n : {1, 7, 8, 9, 64, 1000003}) {
      Tensor yg(Shape{n + 8}, DType::BF16, kGpu, "y");
      cuda::cast_f32_to_bf16(static_cast<const float*>(xg.raw()) + offset,
                             static_cast<std::uint16_t*>(yg.raw()) + offset % 8, n, nullptr);
      CHECK_CUDA(cudaDeviceSynchronize());
      const Tensor y = yg.to(Device::cpu());
      const std::uint16_t* yb = y.data<std::uint16_t>() + offset % 8;
      std::int64_t bad = 0, first = -1;
      for (std::int64_t i = 0; i < n; ++i) {
        const bool same = std::isnan(p[offset + i]) ? std::isnan(bf16_to_f32(yb[i])) : yb[i] == f32_to_bf16(p[offset + i]);
        if (!same && bad++ == 0) first = i;
      }
      INFO("offset " << offset << " n " << n << " first mismatch at " << first);
      CHECK(bad == 0);
    }
  }
}
