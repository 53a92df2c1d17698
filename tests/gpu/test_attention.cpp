// GPU vs CPU twin: causal packed attention forward and backward (kernels/attention.h).
//
// Fresh random inputs (uniform [-1, 1)) at the MLA and GQA shapes of tests/gpu/
// attention_cases.h, packed sequences of uneven lengths (1, 0 and tile edges included).
// Every comparison checks NaN/Inf positions first (GPU outputs start as NaN, so a row
// the kernel forgets fails here), then |gpu - cpu| <= tol per element. Two runs of each
// GPU op must give identical bits (determinism), and so must the forward that keeps its
// BF16 q, k, v and the backward that reads them (ops::AttentionOperands).
//
// The CUDA twin rounds q, k, v, dout (and P, dS before their products) to BF16 (RNE,
// unit roundoff u_b = 2^-8) and accumulates in FP32 (u = 2^-24). Two checks:
//
// 1. Kernel check (sharp): the CPU twin runs on the BF16-rounded inputs (exactly the
//    operands the GPU multiplies), so the twins differ only by the rounding of P (dS in
//    the backward) to BF16 and by FP32 effects. With s_t = scale ||q_t|| max_j ||k_j||
//    (j <= t in t's sequence; it bounds scale sum_i |q_i k_ji| by Cauchy-Schwarz):
//    - a score differs by <= (dqk + 4) u s_t between the twins (dot products of length
//      dqk, the scale multiply, log2(e) folding; x1.5 margin), exp2/exp by a few ulp,
//      so each probability by a relative  e_t = u (1.5 (dqk + 4) s_t + 4 |lse_t| + 8)
//      (the lse term: the backward's P = exp(x - lse) rounds lse * log2(e));
//    - out = sum_j p_j v_j / l with p_j rounded once to BF16 in the numerator:
//        tol(out_tc) = A_tc (u_b + 2 e_t + u (2 L + 32)),  A_tc = sum_j p_tj |v_jc|
//      (L = sequence length: the PV sum and the online rescaling; A from the CPU twin
//      run with |v|);
//    - lse = m + log(sum): tol = e_t + u (L + 16 + 4 |lse|).
//    Backward, with G_tj = p_tj (sum_c |dO_tc v_jc| + sum_c |dO_tc o_tc|) >= |dS_tj|:
//    the GPU's dS differs by <= G (u_b + e + u (dv + 2)) (BF16 rounding of dS; P's
//    relative error times |dP - D|; the FP32 dot products dP and D), and each gradient
//    is a sum of L such terms times an exact BF16 operand:
//        tol(dq_tc) = scale sum_j G_tj |k_jc| (u_b + 2 (e + u (dv + L + 16)))
//        tol(dk_jc) = scale sum_t G_tj |q_tc| (same factor, e = the sequence's max e_t)
//        tol(dv_jc) = sum_t p_tj |dO_tc| (u_b + 2 (e + u (L + 16)))
//    (the factor 2 covers the CPU's own FP32 rounding). The G sums are computed below
//    with BLAS from the CPU's P, as the CPU backward computes dS.
// 2. Precision contract (forward): the CPU twin on the unrounded FP32 inputs. Rounding
//    q and k moves each score by <= (2 u_b + u_b^2) s_t, so each probability by a
//    factor within exp(+-2 (2 u_b + u_b^2) s_t); v and P add u_b each:
//        tol(out_tc) = A_tc (exp(2 (2 u_b + u_b^2) s_t) - 1 + 2 u_b + u_b^2 + u (2 L + 32)).
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "core/device_memory.h"
#include "core/numerics.h"
#include "kernels/attention.h"
#include "tests/catch.h"
#include "tests/gpu/attention_cases.h"
#include "tests/gpu/gpu_compare.h"

using namespace crucible;
using namespace crucible::gpu_test;

namespace {

const Device kGpu = Device::cuda(0);
constexpr double kUb = 0x1p-8;  // BF16 unit roundoff (8 significant bits, RNE)

Tensor to_gpu(const Tensor& t) { return t.to(kGpu); }

Tensor bf16_rounded(const Tensor& t) {
  Tensor r = t.clone();
  for (float& v : r.span<float>()) v = round_to(v, DType::BF16);
  return r;
}

Tensor abs_of(const Tensor& t) {
  Tensor r = t.clone();
  for (float& v : r.span<float>()) v = std::fabs(v);
  return r;
}

Tensor f32(Shape shape, const char* name) { return Tensor(shape, DType::F32, Device::cpu(), name); }

struct Problem {
  const gpu_cases::AttentionCase& c;
  std::vector<std::int32_t> cu;
  std::int64_t T;
  float scale;
  Tensor cu_cpu, q, k, v, dout;  // FP32 inputs
  Tensor qb, kb, vb, dob;        // the same, rounded to BF16

  Problem(const gpu_cases::AttentionCase& cs, std::uint64_t seed)
      : c(cs), cu(cs.cu_seqlens()), T(cu.back()),
        scale(static_cast<float>(1.0 / std::sqrt(static_cast<double>(cs.dqk)))) {
    cu_cpu = Tensor(Shape{static_cast<std::int64_t>(cu.size())}, DType::I32, Device::cpu(), "cu_seqlens");
    std::copy(cu.begin(), cu.end(), cu_cpu.data<std::int32_t>());
    q = uniform_tensor(Shape{T, c.Hq, c.dqk}, seed, "q");
    k = uniform_tensor(Shape{T, c.Hkv, c.dqk}, seed + 1, "k");
    v = uniform_tensor(Shape{T, c.Hkv, c.dv}, seed + 2, "v");
    dout = uniform_tensor(Shape{T, c.Hq, c.dv}, seed + 3, "dout");
    qb = bf16_rounded(q), kb = bf16_rounded(k), vb = bf16_rounded(v), dob = bf16_rounded(dout);
  }
  std::int64_t seq_len_of(std::int64_t t) const {
    const auto it = std::upper_bound(cu.begin(), cu.end(), static_cast<std::int32_t>(t));
    return *it - *(it - 1);
  }
};

// s_t per (token, head): scale ||q_t|| max over j <= t in t's sequence of ||k_j||.
std::vector<double> score_bounds(const Problem& pb, const Tensor& q, const Tensor& k) {
  const auto& c = pb.c;
  const std::int64_t group = c.Hq / c.Hkv;
  std::vector<double> s(static_cast<std::size_t>(pb.T * c.Hq));
  auto norm = [](const float* x, std::int64_t n) {
    double a = 0;
    for (std::int64_t i = 0; i < n; ++i) a += static_cast<double>(x[i]) * x[i];
    return std::sqrt(a);
  };
  for (std::size_t b = 0; b + 1 < pb.cu.size(); ++b)
    for (std::int64_t g = 0; g < c.Hkv; ++g) {
      double kmax = 0;
      for (std::int64_t t = pb.cu[b]; t < pb.cu[b + 1]; ++t) {
        kmax = std::max(kmax, norm(k.data<float>() + (t * c.Hkv + g) * c.dqk, c.dqk));
        for (std::int64_t h = g * group; h < (g + 1) * group; ++h)
          s[t * c.Hq + h] = pb.scale * norm(q.data<float>() + (t * c.Hq + h) * c.dqk, c.dqk) * kmax;
      }
    }
  return s;
}

// The backward's magnitude sums (see the header): a_dq [T, Hq, dqk] = sum_j G |k|,
// a_dk [T, Hkv, dqk] = sum_t G |q|, a_dv [T, Hkv, dv] = sum_t p |dO|, from the CPU's
// P = exp(scale q k - lse) over the rounded inputs. Mirrors kernels/cpu/attention.cpp.
struct BackwardMagnitudes {
  Tensor a_dq, a_dk, a_dv;
};

BackwardMagnitudes backward_magnitudes(const Problem& pb, const Tensor& out, const Tensor& lse) {
  const auto& c = pb.c;
  const std::int64_t group = c.Hq / c.Hkv, ldq = c.Hq * c.dqk, ldk = c.Hkv * c.dqk, ldv = c.Hkv * c.dv,
                     ldo = c.Hq * c.dv;
  BackwardMagnitudes m{f32(Shape{pb.T, c.Hq, c.dqk}, "a_dq"), f32(Shape{pb.T, c.Hkv, c.dqk}, "a_dk"),
                       f32(Shape{pb.T, c.Hkv, c.dv}, "a_dv")};
  m.a_dq.zero(), m.a_dk.zero(), m.a_dv.zero();
  const Tensor aq = abs_of(pb.qb), ak = abs_of(pb.kb), av = abs_of(pb.vb), ado = abs_of(pb.dob);
  for (std::size_t b = 0; b + 1 < pb.cu.size(); ++b) {
    const std::int64_t t0 = pb.cu[b], L = pb.cu[b + 1] - t0;
    if (L == 0) continue;
    const int iL = static_cast<int>(L);
    std::vector<float> p(static_cast<std::size_t>(L * L)), gm(static_cast<std::size_t>(L * L));
    for (std::int64_t h = 0; h < c.Hq; ++h) {
      const std::int64_t g = h / group;
      const float* qh = pb.qb.data<float>() + t0 * ldq + h * c.dqk;
      const float* kh = pb.kb.data<float>() + t0 * ldk + g * c.dqk;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, iL, iL, static_cast<int>(c.dqk), pb.scale, qh,
                  static_cast<int>(ldq), kh, static_cast<int>(ldk), 0.0f, p.data(), iL);
      // |dO| |V|^T
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, iL, iL, static_cast<int>(c.dv), 1.0f,
                  ado.data<float>() + t0 * ldo + h * c.dv, static_cast<int>(ldo),
                  av.data<float>() + t0 * ldv + g * c.dv, static_cast<int>(ldv), 0.0f, gm.data(), iL);
      for (std::int64_t i = 0; i < L; ++i) {
        const float l = lse.data<float>()[(t0 + i) * c.Hq + h];
        double a_o = 0;  // sum_c |dO o|
        for (std::int64_t x = 0; x < c.dv; ++x)
          a_o += std::fabs(static_cast<double>(pb.dob.data<float>()[(t0 + i) * ldo + h * c.dv + x]) *
                           out.data<float>()[(t0 + i) * ldo + h * c.dv + x]);
        for (std::int64_t j = 0; j < L; ++j) {
          const float pe = j <= i ? std::exp(p[i * L + j] - l) : 0.0f;
          p[i * L + j] = pe;
          gm[i * L + j] = pe * (gm[i * L + j] + static_cast<float>(a_o));
        }
      }
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, iL, static_cast<int>(c.dqk), iL, 1.0f, gm.data(), iL,
                  ak.data<float>() + t0 * ldk + g * c.dqk, static_cast<int>(ldk), 1.0f,
                  m.a_dq.data<float>() + t0 * ldq + h * c.dqk, static_cast<int>(ldq));
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, iL, static_cast<int>(c.dqk), iL, 1.0f, gm.data(), iL,
                  aq.data<float>() + t0 * ldq + h * c.dqk, static_cast<int>(ldq), 1.0f,
                  m.a_dk.data<float>() + t0 * ldk + g * c.dqk, static_cast<int>(ldk));
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, iL, static_cast<int>(c.dv), iL, 1.0f, p.data(), iL,
                  ado.data<float>() + t0 * ldo + h * c.dv, static_cast<int>(ldo), 1.0f,
                  m.a_dv.data<float>() + t0 * ldv + g * c.dv, static_cast<int>(ldv));
    }
  }
  return m;
}

}  // namespace

TEST_CASE("attention: CUDA forward and backward match the CPU twin", "[gpu][attention]") {
  REQUIRE(cuda_device_count() > 0);
  constexpr double u = kU;
  std::uint64_t seed = 5000;
  for (const gpu_cases::AttentionCase& c : gpu_cases::kAttentionTestCases) {
    const std::string name = std::string("attention ") + c.name;
    const Problem pb(c, seed);
    seed += 10;
    const std::int64_t T = pb.T;
    const Shape o_shape{T, c.Hq, c.dv}, l_shape{T, c.Hq};

    // GPU forward on the FP32 inputs (it rounds to BF16 itself), twice.
    const Tensor cu_g = to_gpu(pb.cu_cpu), qg = to_gpu(pb.q), kg = to_gpu(pb.k), vg = to_gpu(pb.v);
    Tensor out_g = to_gpu(nan_tensor(o_shape, "out")), lse_g = to_gpu(nan_tensor(l_shape, "lse"));
    ops::attention_forward(qg, kg, vg, cu_g, pb.scale, out_g, lse_g);
    Tensor out_g2 = to_gpu(nan_tensor(o_shape, "out2")), lse_g2 = to_gpu(nan_tensor(l_shape, "lse2"));
    ops::attention_forward(qg, kg, vg, cu_g, pb.scale, out_g2, lse_g2);
    const Tensor out_gh = on_host(out_g), lse_gh = on_host(lse_g);
    require_same_bits(name + " out, second run", out_gh, out_g2);
    require_same_bits(name + " lse, second run", lse_gh, lse_g2);

    // 1. Kernel check: the CPU twin on the BF16-rounded inputs.
    Tensor out_c = f32(o_shape, "out"), lse_c = f32(l_shape, "lse"), abs_o = f32(o_shape, "A"),
           lse_tmp = f32(l_shape, "lse_tmp");
    ops::attention_forward(pb.qb, pb.kb, pb.vb, pb.cu_cpu, pb.scale, out_c, lse_c);
    ops::attention_forward(pb.qb, pb.kb, abs_of(pb.vb), pb.cu_cpu, pb.scale, abs_o, lse_tmp);
    const std::vector<double> sb = score_bounds(pb, pb.qb, pb.kb);
    const float* lse_cp = lse_c.data<float>();
    auto e_of = [&](std::int64_t th) {  // e_t of (token, head) index th
      return u * (1.5 * (c.dqk + 4) * sb[th] + 4 * std::fabs(lse_cp[th]) + 8);
    };
    require_close(name + " out (vs CPU on BF16 inputs)", out_c, out_gh, [&](std::int64_t i) {
      const std::int64_t th = i / c.dv, L = pb.seq_len_of(th / c.Hq);
      return abs_o.data<float>()[i] * (kUb + 2 * e_of(th) + u * (2 * L + 32));
    });
    require_close(name + " lse (vs CPU on BF16 inputs)", lse_c, lse_gh, [&](std::int64_t th) {
      const std::int64_t L = pb.seq_len_of(th / c.Hq);
      return e_of(th) + u * (L + 16 + 4 * std::fabs(lse_cp[th]));
    });

    // 2. Precision contract: the CPU twin on the FP32 inputs.
    Tensor out_f = f32(o_shape, "out_fp32"), abs_f = f32(o_shape, "A_fp32");
    ops::attention_forward(pb.q, pb.k, pb.v, pb.cu_cpu, pb.scale, out_f, lse_tmp);
    ops::attention_forward(pb.q, pb.k, abs_of(pb.v), pb.cu_cpu, pb.scale, abs_f, lse_tmp);
    const std::vector<double> sf = score_bounds(pb, pb.q, pb.k);
    const double eb = 2 * kUb + kUb * kUb;
    require_close(name + " out (vs CPU on FP32 inputs: the BF16 contract)", out_f, out_gh, [&](std::int64_t i) {
      const std::int64_t th = i / c.dv, L = pb.seq_len_of(th / c.Hq);
      return abs_f.data<float>()[i] * (std::expm1(2 * eb * sf[th]) + eb + u * (2 * L + 32));
    });

    // Backward on the rounded inputs with the CPU's out and lse on both sides, so that
    // it is compared on its own.
    Tensor dq_c = f32(pb.q.shape(), "dq"), dk_c = f32(pb.k.shape(), "dk"), dv_c = f32(pb.v.shape(), "dv");
    ops::attention_backward(pb.dob, pb.qb, pb.kb, pb.vb, out_c, lse_c, pb.cu_cpu, pb.scale, dq_c, dk_c, dv_c);
    const Tensor dog = to_gpu(pb.dob), qbg = to_gpu(pb.qb), kbg = to_gpu(pb.kb), vbg = to_gpu(pb.vb),
                 outcg = to_gpu(out_c), lsecg = to_gpu(lse_c);
    auto run_backward = [&](const char* tag) {
      Tensor dq = to_gpu(nan_tensor(pb.q.shape(), tag)), dk = to_gpu(nan_tensor(pb.k.shape(), tag)),
             dv = to_gpu(nan_tensor(pb.v.shape(), tag));
      ops::attention_backward(dog, qbg, kbg, vbg, outcg, lsecg, cu_g, pb.scale, dq, dk, dv);
      return std::vector<Tensor>{on_host(dq), on_host(dk), on_host(dv)};
    };
    const std::vector<Tensor> g1 = run_backward("grad"), g2 = run_backward("grad2");
    require_same_bits(name + " dq, second run", g1[0], g2[0]);
    require_same_bits(name + " dk, second run", g1[1], g2[1]);
    require_same_bits(name + " dv, second run", g1[2], g2[2]);
    {  // The forward's kept BF16 q, k, v: the same forward, and the same backward bits.
      ops::AttentionOperands kept;
      Tensor out_k = to_gpu(nan_tensor(o_shape, "out_kept")), lse_k = to_gpu(nan_tensor(l_shape, "lse_kept"));
      ops::attention_forward(qbg, kbg, vbg, cu_g, pb.scale, out_k, lse_k, Stream(), &kept);
      REQUIRE(kept.q.defined());
      Tensor out_r = to_gpu(nan_tensor(o_shape, "out_r")), lse_r = to_gpu(nan_tensor(l_shape, "lse_r"));
      ops::attention_forward(qbg, kbg, vbg, cu_g, pb.scale, out_r, lse_r);
      require_same_bits(name + " out with kept operands", on_host(out_r), out_k);
      require_same_bits(name + " lse with kept operands", on_host(lse_r), lse_k);
      Tensor dq = to_gpu(nan_tensor(pb.q.shape(), "dq_kept")), dk = to_gpu(nan_tensor(pb.k.shape(), "dk_kept")),
             dv = to_gpu(nan_tensor(pb.v.shape(), "dv_kept"));
      ops::attention_backward(dog, qbg, kbg, vbg, outcg, lsecg, cu_g, pb.scale, dq, dk, dv, Stream(), &kept);
      require_same_bits(name + " dq with kept operands", g1[0], dq);
      require_same_bits(name + " dk with kept operands", g1[1], dk);
      require_same_bits(name + " dv with kept operands", g1[2], dv);
    }

    const BackwardMagnitudes mag = backward_magnitudes(pb, out_c, lse_c);
    std::vector<double> e_seq(pb.cu.size() - 1, 0.0);  // max e_t over each sequence's tokens and heads
    for (std::size_t b = 0; b + 1 < pb.cu.size(); ++b)
      for (std::int64_t th = pb.cu[b] * c.Hq; th < pb.cu[b + 1] * c.Hq; ++th) e_seq[b] = std::max(e_seq[b], e_of(th));
    auto seq_of = [&](std::int64_t t) {
      return static_cast<std::size_t>(std::upper_bound(pb.cu.begin(), pb.cu.end(), static_cast<std::int32_t>(t)) -
                                      pb.cu.begin() - 1);
    };
    require_close(name + " dq", dq_c, g1[0], [&](std::int64_t i) {
      const std::int64_t th = i / c.dqk, L = pb.seq_len_of(th / c.Hq);
      return pb.scale * mag.a_dq.data<float>()[i] * (kUb + 2 * (e_of(th) + u * (c.dv + L + 16)));
    });
    require_close(name + " dk", dk_c, g1[1], [&](std::int64_t i) {
      const std::int64_t t = i / (c.Hkv * c.dqk), L = pb.seq_len_of(t);
      return pb.scale * mag.a_dk.data<float>()[i] * (kUb + 2 * (e_seq[seq_of(t)] + u * (c.dv + L + 16)));
    });
    require_close(name + " dv", dv_c, g1[2], [&](std::int64_t i) {
      const std::int64_t t = i / (c.Hkv * c.dv), L = pb.seq_len_of(t);
      return mag.a_dv.data<float>()[i] * (kUb + 2 * (e_seq[seq_of(t)] + u * (L + 16)));
    });
  }
}

TEST_CASE("attention: the CUDA FP32 fallback matches the CPU twin at head dims without a tensor-core kernel",
          "[gpu][attention]") {
  // The fallback (kernels/cuda/attention_generic.cu) has no BF16 rounding: the bounds
  // of the kernel check above with u_b = 0, on the FP32 inputs themselves. Its FMA dot
  // products and fixed-order sums stay within the same FP32 terms.
  REQUIRE(cuda_device_count() > 0);
  constexpr double u = kU;
  const std::vector<gpu_cases::AttentionCase> cases = {
      {"demo teacher mla 4h 48/32", 4, 4, 48, 32, {1, 97, 0, 300, 2}},
      {"demo student gqa 4/2 d=24", 4, 2, 24, 24, {64, 1, 257}},
      {"gqa 8/1 d=96", 8, 1, 96, 96, {33, 129}},
  };
  std::uint64_t seed = 9000;
  for (const gpu_cases::AttentionCase& c : cases) {
    const std::string name = std::string("attention fallback ") + c.name;
    Problem pb(c, seed);
    seed += 10;
    pb.qb = pb.q, pb.kb = pb.k, pb.vb = pb.v, pb.dob = pb.dout;  // no rounding on this path
    const Shape o_shape{pb.T, c.Hq, c.dv}, l_shape{pb.T, c.Hq};
    const Tensor cu_g = to_gpu(pb.cu_cpu), qg = to_gpu(pb.q), kg = to_gpu(pb.k), vg = to_gpu(pb.v);
    Tensor out_g = to_gpu(nan_tensor(o_shape, "out")), lse_g = to_gpu(nan_tensor(l_shape, "lse"));
    ops::attention_forward(qg, kg, vg, cu_g, pb.scale, out_g, lse_g);
    Tensor out_g2 = to_gpu(nan_tensor(o_shape, "out2")), lse_g2 = to_gpu(nan_tensor(l_shape, "lse2"));
    ops::attention_forward(qg, kg, vg, cu_g, pb.scale, out_g2, lse_g2);
    const Tensor out_gh = on_host(out_g), lse_gh = on_host(lse_g);
    require_same_bits(name + " out, second run", out_gh, out_g2);

    Tensor out_c = f32(o_shape, "out"), lse_c = f32(l_shape, "lse"), abs_o = f32(o_shape, "A"),
           lse_tmp = f32(l_shape, "lse_tmp");
    ops::attention_forward(pb.q, pb.k, pb.v, pb.cu_cpu, pb.scale, out_c, lse_c);
    ops::attention_forward(pb.q, pb.k, abs_of(pb.v), pb.cu_cpu, pb.scale, abs_o, lse_tmp);
    const std::vector<double> sb = score_bounds(pb, pb.q, pb.k);
    const float* lse_cp = lse_c.data<float>();
    auto e_of = [&](std::int64_t th) { return u * (1.5 * (c.dqk + 4) * sb[th] + 4 * std::fabs(lse_cp[th]) + 8); };
    require_close(name + " out", out_c, out_gh, [&](std::int64_t i) {
      const std::int64_t th = i / c.dv, L = pb.seq_len_of(th / c.Hq);
      return abs_o.data<float>()[i] * (2 * e_of(th) + u * (2 * L + 32));
    });
    require_close(name + " lse", lse_c, lse_gh, [&](std::int64_t th) {
      return e_of(th) + u * (pb.seq_len_of(th / c.Hq) + 16 + 4 * std::fabs(lse_cp[th]));
    });

    Tensor dq_c = f32(pb.q.shape(), "dq"), dk_c = f32(pb.k.shape(), "dk"), dv_c = f32(pb.v.shape(), "dv");
    ops::attention_backward(pb.dout, pb.q, pb.k, pb.v, out_c, lse_c, pb.cu_cpu, pb.scale, dq_c, dk_c, dv_c);
    const Tensor dog = to_gpu(pb.dout), outcg = to_gpu(out_c), lsecg = to_gpu(lse_c);
    auto run_backward = [&](const char* tag) {
      Tensor dq = to_gpu(nan_tensor(pb.q.shape(), tag)), dk = to_gpu(nan_tensor(pb.k.shape(), tag)),
             dv = to_gpu(nan_tensor(pb.v.shape(), tag));
      ops::attention_backward(dog, qg, kg, vg, outcg, lsecg, cu_g, pb.scale, dq, dk, dv);
      return std::vector<Tensor>{on_host(dq), on_host(dk), on_host(dv)};
    };
    const std::vector<Tensor> g1 = run_backward("grad"), g2 = run_backward("grad2");
    require_same_bits(name + " dq, second run", g1[0], g2[0]);
    require_same_bits(name + " dk, second run", g1[1], g2[1]);
    require_same_bits(name + " dv, second run", g1[2], g2[2]);
    const BackwardMagnitudes mag = backward_magnitudes(pb, out_c, lse_c);
    std::vector<double> e_seq(pb.cu.size() - 1, 0.0);
    for (std::size_t b = 0; b + 1 < pb.cu.size(); ++b)
      for (std::int64_t th = pb.cu[b] * c.Hq; th < pb.cu[b + 1] * c.Hq; ++th) e_seq[b] = std::max(e_seq[b], e_of(th));
    auto seq_of = [&](std::int64_t t) {
      return static_cast<std::size_t>(std::upper_bound(pb.cu.begin(), pb.cu.end(), static_cast<std::int32_t>(t)) -
                                      pb.cu.begin() - 1);
    };
    require_close(name + " dq", dq_c, g1[0], [&](std::int64_t i) {
      const std::int64_t th = i / c.dqk, L = pb.seq_len_of(th / c.Hq);
      return pb.scale * mag.a_dq.data<float>()[i] * 2 * (e_of(th) + u * (c.dv + L + 16));
    });
    require_close(name + " dk", dk_c, g1[1], [&](std::int64_t i) {
      const std::int64_t t = i / (c.Hkv * c.dqk), L = pb.seq_len_of(t);
      return pb.scale * mag.a_dk.data<float>()[i] * 2 * (e_seq[seq_of(t)] + u * (c.dv + L + 16));
    });
    require_close(name + " dv", dv_c, g1[2], [&](std::int64_t i) {
      const std::int64_t t = i / (c.Hkv * c.dv), L = pb.seq_len_of(t);
      return mag.a_dv.data<float>()[i] * 2 * (e_seq[seq_of(t)] + u * (L + 16));
    });
  }
}

TEST_CASE("attention: CUDA rejects head dims past the fallback and mixed devices", "[gpu][attention]") {
  REQUIRE(cuda_device_count() > 0);
  const std::int64_t T = 8;
  Tensor cu(Shape{2}, DType::I32, Device::cpu(), "cu_seqlens");
  cu.data<std::int32_t>()[0] = 0, cu.data<std::int32_t>()[1] = static_cast<std::int32_t>(T);
  const Tensor q = to_gpu(uniform_tensor(Shape{T, 1, 520}, 1, "q")), k = to_gpu(uniform_tensor(Shape{T, 1, 520}, 2, "k"));
  const Tensor v = to_gpu(uniform_tensor(Shape{T, 1, 16}, 3, "v"));
  Tensor out(Shape{T, 1, 16}, DType::F32, kGpu, "out"), lse(Shape{T, 1}, DType::F32, kGpu, "lse");
  CHECK_THROWS_WITH(ops::attention_forward(q, k, v, to_gpu(cu), 0.2f, out, lse), Catch::Contains("exceed 512"));
  // cu_seqlens on the host while q is on the GPU: one device per op.
  CHECK_THROWS_WITH(ops::attention_forward(q, k, v, cu, 0.2f, out, lse), Catch::Contains("cu_seqlens"));
}
