// GPU vs CPU twin: decode attention over a KV cache, the cache append and the MLA
// absorption products (kernels/decode_attention.h).
//
// Fresh random inputs (uniform [-1, 1)) at the shapes of tests/gpu/
// decode_attention_cases.h: one query token per slot, uneven lengths (0, 1, chunk
// edges, full capacity), FP32 and BF16 caches. GPU outputs start as NaN, so a row the
// kernels forget fails the NaN/Inf position check that comes first; then |gpu - cpu|
// <= tol per element; two GPU runs must give identical bits.
//
// Notation (per token t and head h): L = len[t]; s_t = scale ||q|| max_{j<L} ||k_j||
// bounds every |score| (Cauchy-Schwarz); A_c = max_{j<L} |v_jc| bounds sum_j p_j |v_jc|;
// u = 2^-24, u_b = 2^-8.
// GQA (FP32 CUDA cores; the twins read the same cache values): a score differs by
// <= (d + 4) u s_t (dot products of length d, the scale folded into q, log2(e)), so
// each probability by a relative e_t = u (1.5 (d + 4) s_t + 16) (x1.5 margin, exp2 ulps);
// the output sums L terms in FP32 on both sides plus the chunk combine:
//     tol = A_c (2 e_t + u (2 L + 64)).
// MLA (BF16 tensor cores): 1. kernel check against the CPU twin on BF16-rounded q and
// cache (exactly the operands the GPU multiplies): they differ by the BF16 rounding of P
// and FP32 effects, tol = A_c (u_b + 2 e_t + u (2 L + 64)) with d = R + P in e_t;
// 2. precision contract against the CPU on the FP32 inputs: rounding q and k to BF16
// moves a score by <= (2 u_b + u_b^2) s_t, so tol = A_c (expm1(2 eb s_t) + eb + u (2 L + 64)),
// eb = 2 u_b + u_b^2 (a BF16 cache is exact, so only q's rounding counts there:
// eb = u_b + u).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/device_memory.h"
#include "core/numerics.h"
#include "kernels/cuda/decode_attention_cuda.h"
#include "kernels/decode_attention.h"
#include "tests/catch.h"
#include "tests/gpu/decode_attention_cases.h"
#include "tests/gpu/gpu_compare.h"

using namespace crucible;
using namespace crucible::gpu_test;

namespace {

const Device kGpu = Device::cuda(0);
constexpr double kUb = 0x1p-8;

Tensor to_gpu(const Tensor& t) { return t.to(kGpu); }

Tensor bf16_rounded(const Tensor& t) {
  Tensor r = t.clone();
  for (float& v : r.span<float>()) v = round_to(v, DType::BF16);
  return r;
}

Tensor bf16_bits(const Tensor& f) {
  Tensor b(f.shape(), DType::BF16, Device::cpu(), f.name());
  for (std::int64_t i = 0; i < f.numel(); ++i) b.data<std::uint16_t>()[i] = f32_to_bf16(f.data<float>()[i]);
  return b;
}

Tensor i32_tensor(const std::vector<std::int32_t>& v, const char* name) {
  Tensor t(Shape{static_cast<std::int64_t>(v.size())}, DType::I32, Device::cpu(), name);
  std::copy(v.begin(), v.end(), t.data<std::int32_t>());
  return t;
}

double norm(const float* x, std::int64_t n) {
  double a = 0;
  for (std::int64_t i = 0; i < n; ++i) a += static_cast<double>(x[i]) * x[i];
  return std::sqrt(a);
}

// Key j of slot t as one vector of width dk (MLA: c_kv then k_rope; GQA: kv head g).
struct Bounds {
  std::vector<double> s;  // [T * Hq] score bounds
  std::vector<float> a;   // [T * Hq * W] value bounds A_c
};

}  // namespace

TEST_CASE("decode attention: CUDA matches the CPU twin (GQA, absorbed MLA; FP32 and BF16 caches)",
          "[gpu][decode]") {
  REQUIRE(cuda_device_count() > 0);
  constexpr double u = kU;
  std::uint64_t seed = 9000;
  for (const gpu_cases::DecodeCase& c : gpu_cases::kDecodeTestCases) {
    const std::int64_t T = static_cast<std::int64_t>(c.lengths.size()), slots = T, cap = c.capacity;
    const std::int64_t Hq = c.Hq, W = c.d, dk = c.mla ? c.d + c.rope : c.d, Hkv = c.mla ? 1 : c.Hkv;
    const float scale = static_cast<float>(1.0 / std::sqrt(c.mla ? 192.0 : static_cast<double>(c.d)));
    std::vector<std::int32_t> slot_v(static_cast<std::size_t>(T));
    for (std::int64_t t = 0; t < T; ++t) slot_v[t] = static_cast<std::int32_t>(T - 1 - t);  // slots reversed
    std::vector<std::int32_t> len_v(c.lengths.begin(), c.lengths.end());
    const Tensor slot = i32_tensor(slot_v, "slot"), len = i32_tensor(len_v, "len");
    const Tensor slot_g = to_gpu(slot), len_g = to_gpu(len);
    const std::int64_t max_len = c.max_len();

    // Inputs: q (GQA) or q_lat + q_rope (MLA); caches k/v or ckv/kpe.
    const Tensor qa = uniform_tensor(c.mla ? Shape{T, Hq, c.d} : Shape{T, Hq, c.d}, seed++, "q");
    const Tensor qb = c.mla ? uniform_tensor(Shape{T, Hq, c.rope}, seed++, "q_rope") : Tensor();
    const Tensor ca = uniform_tensor(c.mla ? Shape{slots, cap, c.d} : Shape{slots, cap, Hkv, c.d}, seed++, "cache_a");
    const Tensor cb = uniform_tensor(c.mla ? Shape{slots, cap, c.rope} : Shape{slots, cap, Hkv, c.d}, seed++, "cache_b");
    const Shape o_shape{T, Hq, W};

    auto run_cpu = [&](const Tensor& q1, const Tensor& q2, const Tensor& k1, const Tensor& k2) {
      Tensor o(o_shape, DType::F32, Device::cpu(), "out_cpu");
      if (c.mla) ops::mla_decode(q1, q2, k1, k2, slot, len, max_len, scale, o);
      else ops::gqa_decode(q1, k1, k2, slot, len, max_len, scale, o);
      return o;
    };
    auto run_gpu = [&](const Tensor& k1, const Tensor& k2) {
      const Tensor q1 = to_gpu(qa), q2 = c.mla ? to_gpu(qb) : Tensor(), g1 = to_gpu(k1), g2 = to_gpu(k2);
      Tensor o = to_gpu(nan_tensor(o_shape, "out_gpu")), o2 = to_gpu(nan_tensor(o_shape, "out_gpu2"));
      if (c.mla) {
        ops::mla_decode(q1, q2, g1, g2, slot_g, len_g, max_len, scale, o);
        ops::mla_decode(q1, q2, g1, g2, slot_g, len_g, max_len, scale, o2);
      } else {
        ops::gqa_decode(q1, g1, g2, slot_g, len_g, max_len, scale, o);
        ops::gqa_decode(q1, g1, g2, slot_g, len_g, max_len, scale, o2);
      }
      const Tensor oh = on_host(o);
      require_same_bits(std::string(c.name) + " second run", oh, o2);
      return oh;
    };
    // s_t and A_c from FP32 values (the bounds hold for the rounded ones up to u_b, inside the margins).
    auto bounds = [&](const Tensor& q1, const Tensor& q2, const Tensor& k1, const Tensor& k2) {
      Bounds b{std::vector<double>(static_cast<std::size_t>(T * Hq)),
               std::vector<float>(static_cast<std::size_t>(T * Hq * W), 0.0f)};
      for (std::int64_t t = 0; t < T; ++t)
        for (std::int64_t g = 0; g < Hkv; ++g) {
          double kmax = 0;
          std::vector<float> amax(static_cast<std::size_t>(W), 0.0f);
          for (std::int64_t j = 0; j < len_v[t]; ++j) {
            if (c.mla) {
              const float* kr = k1.data<float>() + (slot_v[t] * cap + j) * c.d;
              const float* pr = k2.data<float>() + (slot_v[t] * cap + j) * c.rope;
              kmax = std::max(kmax, std::sqrt(norm(kr, c.d) * norm(kr, c.d) + norm(pr, c.rope) * norm(pr, c.rope)));
              for (std::int64_t i = 0; i < W; ++i) amax[i] = std::max(amax[i], std::fabs(kr[i]));
            } else {
              const std::int64_t off = ((slot_v[t] * cap + j) * Hkv + g) * c.d;
              kmax = std::max(kmax, norm(k1.data<float>() + off, c.d));
              for (std::int64_t i = 0; i < W; ++i) amax[i] = std::max(amax[i], std::fabs(k2.data<float>()[off + i]));
            }
          }
          const std::int64_t group = Hq / Hkv;
          for (std::int64_t h = g * group; h < (g + 1) * group; ++h) {
            double qn = norm(q1.data<float>() + (t * Hq + h) * W, W);
            if (c.mla) qn = std::sqrt(qn * qn + std::pow(norm(q2.data<float>() + (t * Hq + h) * c.rope, c.rope), 2));
            b.s[t * Hq + h] = scale * qn * kmax;
            std::copy(amax.begin(), amax.end(), b.a.begin() + (t * Hq + h) * W);
          }
        }
      return b;
    };
    auto tol_with = [&](const Bounds& b, double extra, double eb) {
      return [&, extra, eb](std::int64_t i) {
        const std::int64_t th = i / W, L = len_v[th / Hq];
        const double e = u * (1.5 * (dk + 4) * b.s[th] + 16);
        const double contract = eb > 0 ? std::expm1(2 * eb * b.s[th]) + eb : 0.0;
        return b.a[i] * (extra + 2 * e + contract + u * (2 * L + 64)) + 1e-30;
      };
    };

    // MLA with a BF16 cache runs twice: the kernel mla_decode picks (wgmma on Hopper) and mma.sync.
    for (const auto& [bf16_cache, kernel] : {std::pair{false, cuda::MlaDecodeKernel::Auto},
                                             std::pair{true, cuda::MlaDecodeKernel::Auto},
                                             std::pair{true, cuda::MlaDecodeKernel::MmaSync}}) {
      if (kernel == cuda::MlaDecodeKernel::MmaSync && !c.mla) continue;
      const std::string name = std::string(c.name) + (bf16_cache ? " bf16 cache" : " fp32 cache") +
                               (kernel == cuda::MlaDecodeKernel::MmaSync ? " (mma.sync kernel)" : "");
      // The values both twins see in the cache.
      const Tensor k1 = bf16_cache ? bf16_rounded(ca) : ca, k2 = bf16_cache ? bf16_rounded(cb) : cb;
      const Tensor g_out = [&] {
        const cuda::ScopedMlaDecodeKernel pick(kernel);
        return run_gpu(bf16_cache ? bf16_bits(ca) : ca, bf16_cache ? bf16_bits(cb) : cb);
      }();
      if (!c.mla) {
        const Tensor cpu = run_cpu(qa, Tensor(), k1, k2);
        const Bounds b = bounds(qa, Tensor(), k1, k2);
        require_close(name + " out", cpu, g_out, tol_with(b, 0.0, 0.0));
        continue;
      }
      // 1. Kernel check: the CPU twin on the operands the tensor cores multiply.
      const Tensor qar = bf16_rounded(qa), qbr = bf16_rounded(qb), k1r = bf16_rounded(k1), k2r = bf16_rounded(k2);
      const Bounds br = bounds(qar, qbr, k1r, k2r);
      require_close(name + " out (vs CPU on BF16 operands)", run_cpu(qar, qbr, k1r, k2r), g_out,
                    tol_with(br, kUb, 0.0));
      // 2. Precision contract: the CPU twin on the values as given.
      const Bounds bf = bounds(qa, qb, k1, k2);
      const double eb = bf16_cache ? kUb + u : 2 * kUb + kUb * kUb;
      require_close(name + " out (vs CPU on FP32 inputs: the BF16 contract)", run_cpu(qa, qb, k1, k2), g_out,
                    tol_with(bf, kUb, eb));
    }
  }
}

TEST_CASE("decode attention: CUDA cache append and MLA absorption match the CPU", "[gpu][decode]") {
  REQUIRE(cuda_device_count() > 0);
  const std::int64_t T = 5, slots = 3, cap = 7, width = 576;
  const Tensor src = uniform_tensor(Shape{T, width}, 11, "src");
  const Tensor slot = i32_tensor({2, 0, 2, 1, 0}, "slot"), pos = i32_tensor({0, 6, 3, 2, 1}, "pos");
  for (DType dt : {DType::F32, DType::BF16}) {
    Tensor cpu(Shape{slots, cap, width}, dt, Device::cpu(), "cache");
    Tensor gpu = to_gpu(cpu);
    ops::kv_cache_append(src, slot, pos, cpu);
    ops::kv_cache_append(to_gpu(src), to_gpu(slot), to_gpu(pos), gpu);
    require_same_bits(std::string("kv_cache_append ") + std::string(dtype_name(dt)), cpu, gpu);
  }
  // DeepSeek-V3 absorption shapes: 128 heads, nope 128, dv 128, R 512.
  const std::int64_t Tq = 9, Hq = 128, nope = 128, rope = 64, dv = 128, R = 512;
  const Tensor q = uniform_tensor(Shape{Tq, Hq, nope + rope}, 12, "q");
  const Tensor kv_b = uniform_tensor(Shape{Hq * (nope + dv), R}, 13, "kv_b", -0.05f, 0.05f);
  const Tensor lat = uniform_tensor(Shape{Tq, Hq, R}, 14, "out_lat");
  Tensor ql_c(Shape{Tq, Hq, R}, DType::F32, Device::cpu(), "q_lat"), o_c(Shape{Tq, Hq, dv}, DType::F32, Device::cpu(), "o");
  ops::mla_absorb_query(q, nope, kv_b, ql_c);
  ops::mla_absorb_output(lat, nope, kv_b, o_c);
  Tensor ql_g = to_gpu(nan_tensor(ql_c.shape(), "q_lat")), o_g = to_gpu(nan_tensor(o_c.shape(), "o"));
  const Tensor kv_b_g = to_gpu(kv_b);
  ops::mla_absorb_query(to_gpu(q), nope, kv_b_g, ql_g);
  ops::mla_absorb_output(to_gpu(lat), nope, kv_b_g, o_g);
  // FP32 sums of length K in different orders: |err| <= 2 u K sum |terms| <= 2 u K^2 max|q| max|w|.
  require_close("mla_absorb_query", ql_c, ql_g, [&](std::int64_t) { return 2 * kU * nope * nope * 0.05; });
  require_close("mla_absorb_output", o_c, o_g, [&](std::int64_t) { return 2 * kU * R * R * 0.05; });
}

TEST_CASE("decode attention: CUDA rejects MLA dims it has no kernel for", "[gpu][decode]") {
  REQUIRE(cuda_device_count() > 0);
  const Tensor ql = to_gpu(uniform_tensor(Shape{2, 4, 32}, 1, "q_lat"));
  const Tensor qr = to_gpu(uniform_tensor(Shape{2, 4, 8}, 2, "q_rope"));
  const Tensor cc = to_gpu(uniform_tensor(Shape{2, 6, 32}, 3, "ckv")), pc = to_gpu(uniform_tensor(Shape{2, 6, 8}, 4, "kpe"));
  Tensor out(Shape{2, 4, 32}, DType::F32, kGpu, "out_lat");
  const Tensor slot = to_gpu(i32_tensor({0, 1}, "slot")), len = to_gpu(i32_tensor({3, 6}, "len"));
  CHECK_THROWS_WITH(ops::mla_decode(ql, qr, cc, pc, slot, len, 6, 0.2f, out), Catch::Contains("have no kernel"));
  // Lengths on the host while q is on the GPU: one device per op.
  CHECK_THROWS_WITH(ops::mla_decode(ql, qr, cc, pc, slot, i32_tensor({3, 6}, "len"), 6, 0.2f, out),
                    Catch::Contains("len"));
}
