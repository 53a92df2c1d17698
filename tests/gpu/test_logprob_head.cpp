// GPU vs CPU twin: the fused, vocab-chunked LM head (kernels/logprob_head.h): forward
// (log-probs, lse, entropy), backward (dh =, dw +=) and top-k, at the shapes of
// tests/gpu/moe_head_cases.h (DeepSeek-V3: 512 tokens x hidden 7168 x vocabulary 129280,
// chunk 4096; small odd shapes with tail chunks and chunk > V).
//
// Two input regimes:
//   exact    h in {0, +-1/2, +-1}, w in {k / 64 : |k| <= 8}: every product and partial
//            sum of h w^T is a multiple of 2^-7 below 2^10 * D / 64, exact in FP32 in any
//            order (D < 2^20), so both sides see the same logits bit for bit and what
//            remains is the head's own arithmetic (exp, log, the FP64 sums' order). The
//            grid also makes many logits tie exactly, which the top-k must break towards
//            the lower id: top-k ids are compared exactly, in this regime only.
//   general  uniform FP32 h and w (logits of std ~3), where the GEMMs' order differs too.
// Tolerances (u = 2^-24; Higham §3.1: a sum of K terms in any order is within (K - 1)u of
// the magnitude sum; each side's error counted once):
//   logits   E[t, j] = 2 (D + 1) u S[t, j], S = |h| |w|^T (0 in the exact regime);
//            Emax[t] = max_j E[t, j].
//   lse      is 1-Lipschitz in the max-norm of the logits: Emax. Each side rounds l - m
//            (u |l - m| <= u X, X = the row's logit range, which moves exp by u X), expf
//            (GPU correctly rounded, glibc within 0.502 ulp: <= 1u each), log(sum) to
//            FP32 (u |L|, L = lse - max l) and m + L (u |lse|):
//              tol = Emax + u (2X + 8 + 2|L| + 2|lse|).
//   logp     = l_target - lse: E[t, target] + tol(lse) + 2u |logp|.
//   entropy  H = log sum - xsum / sum; dH/dl_j = -p_j (log p_j + H), so a logit error
//            moves it by <= 2 (H + 1) Emax; the rounding of l - m (u X per term, in
//            both exp and the factor x) and of exp enter xsum / sum relatively, weighted
//            by sum p |x| <= X: u (16 + 4X)(1 + X) + 4u |H| covers them with the final
//            roundings.
//   backward g[t, j] = -dlogp (p - onehot); with M[t, j] = |dlogp| (p + onehot) >= |g|,
//            each side's g is within rho[t] M of exact, rho = u (8 + 2 (X + ln V)) + 2 Emax
//            (l - lse rounded: |l - lse| <= X + ln V; exp; the product; the target's add;
//            p moves by p E with the logits). Then
//              dh[t, d]  each product passes <= n + V/n additions (chunk GEMM + the
//                        chunks' beta = 1 accumulation): (rho + 2 (n + V/n + 1) u) (M|w|)[t, d]
//              dw[j, d]  one chunk GEMM of K = T plus dw0: (rho_max + 2 (T + 1) u)
//                        (M^T |h|)[j, d] + 2 (T + 1) u |dw0[j, d]|
//            M|w| and M^T|h| come from FP32 GEMMs on the GPU (their own relative error,
//            < V u < 1%, is covered by a factor 1.01). The backward is fed the CPU's lse.
// BF16 operands (LogprobHeadOptions::bf16), general regime: h and w are drawn already
// BF16-rounded, so the rounding of the operands is the identity and each BF16 product is
// exact in FP32: the logits' bounds above hold as they are. The backward rounds the
// logits gradient to BF16 on each side; sides whose g differ by the bound above may round
// to neighbouring BF16 values, one BF16 ulp (2^-8 relative) apart: 2^-8 M joins rho.
// Determinism: a second GPU run of the forward and the backward gives the same bits.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "core/device_memory.h"
#include "core/numerics.h"
#include "kernels/cuda/gemm_cublaslt.h"
#include "kernels/linear.h"
#include "kernels/logprob_head.h"
#include "tests/catch.h"
#include "tests/gpu/gpu_compare.h"
#include "tests/gpu/moe_head_cases.h"

using namespace crucible;
using namespace crucible::gpu_test;

namespace {

const Device kGpu = Device::cuda(0);

Tensor to_gpu(const Tensor& t) { return t.to(kGpu); }

Tensor abs_of(const Tensor& t) {
  Tensor a = t.clone();
  for (float& v : a.span<float>()) v = std::fabs(v);
  return a;
}

struct HeadInputs {
  Tensor h, w, targets, dlogp, dw0;
};

HeadInputs make_inputs(const gpu_cases::HeadCase& c, bool exact, bool bf16, std::uint64_t seed) {
  const std::int64_t T = c.tokens, D = c.hidden, V = c.vocab;
  HeadInputs in;
  if (exact) {
    in.h = Tensor(Shape{T, D}, DType::F32, Device::cpu(), "h");
    in.w = Tensor(Shape{V, D}, DType::F32, Device::cpu(), "w");
    SplitMix rng{seed};
    for (float& v : in.h.span<float>()) v = static_cast<float>(rng.below(5) - 2) / 2.0f;
    for (float& v : in.w.span<float>()) v = static_cast<float>(rng.below(17) - 8) / 64.0f;
  } else {
    const float a = 9.0f / std::sqrt(static_cast<float>(D));  // logits of std ~3
    in.h = uniform_tensor(Shape{T, D}, seed, "h");
    in.w = uniform_tensor(Shape{V, D}, seed + 1, "w", -a, a);
    if (bf16)
      for (Tensor* t : {&in.h, &in.w})
        for (float& v : t->span<float>()) v = bf16_to_f32(f32_to_bf16(v));
  }
  in.targets = Tensor(Shape{T}, DType::I32, Device::cpu(), "targets");
  SplitMix rng{seed + 2};
  for (std::int32_t& v : in.targets.span<std::int32_t>()) v = static_cast<std::int32_t>(rng.below(V));
  in.targets.data<std::int32_t>()[0] = static_cast<std::int32_t>(V - 1);  // the last id of the last chunk
  if (T > 1) in.targets.data<std::int32_t>()[T - 1] = 0;
  in.dlogp = uniform_tensor(Shape{T}, seed + 3, "dlogp");
  in.dw0 = uniform_tensor(Shape{V, D}, seed + 4, "dw0", -0.01f, 0.01f);
  return in;
}

}  // namespace

TEST_CASE("logprob head: CUDA forward, backward and top-k match the CPU twin", "[gpu][logprob_head]") {
  REQUIRE(cuda_device_count() > 0);
  std::uint64_t seed = 8000;
  for (const gpu_cases::HeadCase& c : gpu_cases::kHeadCases) {
    for (const auto& [exact, bf16] : {std::pair{true, false}, std::pair{false, false}, std::pair{false, true}}) {
      const std::int64_t T = c.tokens, D = c.hidden, V = c.vocab, n = std::min(c.chunk, V);
      const std::int64_t n_chunks = (V + n - 1) / n;
      const std::string name = std::string(c.name) + (exact ? " (exact logits)" : bf16 ? " (general, bf16)" : " (general)");
      const HeadInputs in = make_inputs(c, exact, bf16, seed);
      seed += 5;
      ops::LogprobHeadOptions opts;
      opts.chunk = c.chunk;
      opts.entropy = true;
      opts.bf16 = bf16;

      // CPU reference.
      Tensor logp(Shape{T}, DType::F32, Device::cpu(), "logp"), lse(Shape{T}, DType::F32, Device::cpu(), "lse"),
          ent(Shape{T}, DType::F32, Device::cpu(), "entropy");
      ops::logprob_head_forward(in.h, in.w, in.targets, logp, lse, ent, opts);
      Tensor dh(Shape{T, D}, DType::F32, Device::cpu(), "dh");
      Tensor dw = in.dw0.clone();
      ops::logprob_head_backward(in.dlogp, in.h, in.w, in.targets, lse, dh, dw, opts);

      // GPU.
      const Tensor hg = to_gpu(in.h), wg = to_gpu(in.w), tg = to_gpu(in.targets);
      Tensor logp_g = to_gpu(nan_tensor(Shape{T}, "logp")), lse_g = to_gpu(nan_tensor(Shape{T}, "lse")),
             ent_g = to_gpu(nan_tensor(Shape{T}, "entropy"));
      ops::logprob_head_forward(hg, wg, tg, logp_g, lse_g, ent_g, opts);
      const Tensor lse_cpu_g = to_gpu(lse), dlogp_g = to_gpu(in.dlogp);
      Tensor dh_g = to_gpu(nan_tensor(Shape{T, D}, "dh")), dw_g = to_gpu(in.dw0);
      ops::logprob_head_backward(dlogp_g, hg, wg, tg, lse_cpu_g, dh_g, dw_g, opts);

      // Tolerance ingredients (see the file comment), from GPU GEMMs.
      Tensor logits_g(Shape{T, V}, DType::F32, kGpu, "logits");
      ops::gemm_nt(hg, wg, logits_g, 0.0f, ops::GemmPrecision::Fp32);
      const Tensor logits = on_host(logits_g);
      const Tensor habs_g = to_gpu(abs_of(in.h)), wabs_g = to_gpu(abs_of(in.w));
      Tensor S;
      if (!exact) {
        Tensor s_g(Shape{T, V}, DType::F32, kGpu, "S");
        ops::gemm_nt(habs_g, wabs_g, s_g, 0.0f, ops::GemmPrecision::Fp32);
        S = on_host(s_g);
      }
      const double e_coef = exact ? 0.0 : 2.0 * (D + 1) * kU;
      std::vector<double> X(T), Emax(T), Etg(T), rho(T);
      Tensor M(Shape{T, V}, DType::F32, Device::cpu(), "M");
      const float* L = logits.data<float>();
      const std::int32_t* tgt = in.targets.data<std::int32_t>();
      double rho_max = 0;
      for (std::int64_t t = 0; t < T; ++t) {
        const float* row = L + t * V;
        const auto [lo, hi] = std::minmax_element(row, row + V);
        X[t] = static_cast<double>(*hi) - *lo;
        Emax[t] = exact ? 0.0 : e_coef * *std::max_element(S.data<float>() + t * V, S.data<float>() + (t + 1) * V);
        Etg[t] = exact ? 0.0 : e_coef * S.data<float>()[t * V + tgt[t]];
        rho[t] = kU * (8 + 2 * (X[t] + std::log(static_cast<double>(V)))) + 2 * Emax[t] + (bf16 ? 0x1p-8 : 0.0);
        rho_max = std::max(rho_max, rho[t]);
        const double g = std::fabs(in.dlogp.data<float>()[t]), l = lse.data<float>()[t];
        float* m = M.data<float>() + t * V;
        for (std::int64_t j = 0; j < V; ++j) m[j] = static_cast<float>(g * (std::exp(row[j] - l) + (j == tgt[t])));
      }
      const Tensor M_g = to_gpu(M);
      Tensor mw_g(Shape{T, D}, DType::F32, kGpu, "M|w|"), mh_g(Shape{V, D}, DType::F32, kGpu, "M^T|h|");
      cuda::gemm_rowmajor(false, false, T, D, V, cuda::GemmOperand{M_g.raw(), DType::F32},
                          cuda::GemmOperand{wabs_g.raw(), DType::F32}, static_cast<float*>(mw_g.raw()), 0.0f, nullptr);
      cuda::gemm_rowmajor(true, false, V, D, T, cuda::GemmOperand{M_g.raw(), DType::F32},
                          cuda::GemmOperand{habs_g.raw(), DType::F32}, static_cast<float*>(mh_g.raw()), 0.0f, nullptr);
      const Tensor MW = on_host(mw_g), MH = on_host(mh_g);

      const float* lsep = lse.data<float>();
      const float* lpp = logp.data<float>();
      const float* entp = ent.data<float>();
      auto tol_lse = [&](std::int64_t t) {
        const double big_l = static_cast<double>(lsep[t]) - *std::max_element(L + t * V, L + (t + 1) * V);
        return Emax[t] + kU * (2 * X[t] + 8 + 2 * std::fabs(big_l) + 2 * std::fabs(lsep[t]));
      };
      require_close(name + " lse", lse, lse_g, tol_lse);
      require_close(name + " logp", logp, logp_g,
                    [&](std::int64_t t) { return Etg[t] + tol_lse(t) + 2 * kU * std::fabs(lpp[t]); });
      require_close(name + " entropy", ent, ent_g, [&](std::int64_t t) {
        const double H = std::fabs(entp[t]);
        return 2 * (H + 1) * Emax[t] + kU * (16 + 4 * X[t]) * (1 + X[t]) + 4 * kU * H;
      });
      const float* mwp = MW.data<float>();
      const float* mhp = MH.data<float>();
      const float* dw0p = in.dw0.data<float>();
      require_close(name + " dh", dh, dh_g, [&](std::int64_t i) {
        return 1.01 * (rho[i / D] + 2.0 * (n + n_chunks + 1) * kU) * mwp[i];
      });
      require_close(name + " dw", dw, dw_g, [&](std::int64_t i) {
        return 1.01 * (rho_max + 2.0 * (T + 1) * kU) * mhp[i] + 2.0 * (T + 1) * kU * std::fabs(dw0p[i]);
      });

      // Determinism: the same launches again.
      Tensor logp2 = to_gpu(nan_tensor(Shape{T}, "logp2")), lse2 = to_gpu(nan_tensor(Shape{T}, "lse2")),
             ent2 = to_gpu(nan_tensor(Shape{T}, "ent2"));
      ops::logprob_head_forward(hg, wg, tg, logp2, lse2, ent2, opts);
      require_same_bits(name + " logp, second run", on_host(logp_g), logp2);
      require_same_bits(name + " entropy, second run", on_host(ent_g), ent2);
      Tensor dh2 = to_gpu(nan_tensor(Shape{T, D}, "dh2")), dw2 = to_gpu(in.dw0);
      ops::logprob_head_backward(dlogp_g, hg, wg, tg, lse_cpu_g, dh2, dw2, opts);
      require_same_bits(name + " dh, second run", on_host(dh_g), dh2);
      require_same_bits(name + " dw, second run", on_host(dw_g), dw2);

      // Top-k (exact regime: equal logits, so equal ids, ties included).
      if (exact) {
        const std::int64_t k = c.top_k;
        Tensor ids(Shape{T, k}, DType::I32, Device::cpu(), "ids"), tlp(Shape{T, k}, DType::F32, Device::cpu(), "logp");
        ops::logprob_head_topk(in.h, in.w, k, ids, tlp, opts);
        Tensor ids_g(Shape{T, k}, DType::I32, kGpu, "ids"), tlp_g = to_gpu(nan_tensor(Shape{T, k}, "logp"));
        ops::logprob_head_topk(hg, wg, k, ids_g, tlp_g, opts);
        const Tensor ids_h = on_host(ids_g);
        std::int64_t bad = 0;
        for (std::int64_t i = 0; i < T * k; ++i) bad += ids.data<std::int32_t>()[i] != ids_h.data<std::int32_t>()[i];
        INFO(name << " top-k ids differ at " << bad << " of " << T * k);
        REQUIRE(bad == 0);
        const float* tp = tlp.data<float>();
        require_close(name + " top-k logp", tlp, tlp_g,
                      [&](std::int64_t i) { return tol_lse(i / k) + 2 * kU * std::fabs(tp[i]); });
      }
      std::printf("  %-58s ok\n", name.c_str());
    }
  }
}
