// GPU vs CPU twin: logit KD through two LM heads (kernels/kd_head.h): forward (loss =)
// and backward (dhs =, dws +=), on fresh uniform random inputs, at a small odd shape
// (tail token block, Ds != Dt, V not a multiple of anything) and a larger one, tau 1 and 2.
//
// Tolerances (u = 2^-24, u_d = 2^-53; Higham §3.1: a sum of K terms in any order is within
// (K - 1)u of the magnitude sum; each side's error counted once). Notation per token t:
// a = z / tau, ps = softmax(as), pt = softmax(at), lps, lpt their logs, KL = sum pt (lpt - lps).
//   logits   Es[t, v] = 2 (Ds + 1) u Ss[t, v], Ss = |hs| |ws|^T (Et likewise, Dt, teacher);
//            es = max_v Es / tau, et = max_v Et / tau (the tempered logits' error).
//   loss     = tau^2 KL; dKL/das_v = ps_v - pt_v, dKL/dat_v = pt_v (lpt_v - lps_v - KL), so
//            to first order the logits move it by
//              tau sum_v (|ps_v - pt_v| Es_v + pt_v |lpt_v - lps_v - KL| Et_v),
//            plus a generous second-order term tau^2 (es + et)^2 (2 + A + |KL|),
//            A = sum pt |lpt - lps|; the FP64 row arithmetic (V-term sums of terms bounded
//            by C = |lse_s| + |lse_t| + (max|zs| + max|zt|) / tau + 1, a few roundings
//            each): tau^2 4 (V + 16) u_d C; the final rounding to FP32: 2u |loss|.
//   backward dz[t, v] = dloss tau (ps - pt); M[t, v] = |dloss| tau (ps + pt) >= |dz|. The
//            logits move log ps_v by <= 2 es, so ps_v by <= 2.02 es ps_v (es < 1e-2),
//            likewise pt; the FP32 rounding of dz: u |dz| per side. Each side's dz is
//            within rho[t] M of exact, rho = 2.02 max(es, et) + 2u (+ FP64 slop, < u). Then
//              dhs[t, d]  one GEMM of K = V:            (rho[t] + 2 (V + 1) u) (M |ws|)[t, d]
//              dws[v, d]  per token block a GEMM of K = R, accumulated over nb blocks
//                         (beta = 1): (rho_max + 2 (R + nb + 1) u) (M^T |hs|)[v, d]
//                         + 2 (nb + 1) u |dws0[v, d]|
//            M |ws| and M^T |hs| come from FP32 GEMMs on the GPU (their own relative error,
//            < V u < 1%, is covered by a factor 1.01); M and the loss's sensitivities are
//            evaluated at the GPU's logits and scaled by 1.01 + 2.02 (es + et) to cover that.
// Determinism: a second GPU run of the forward and the backward gives the same bits.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "core/device_memory.h"
#include "kernels/cuda/gemm_cublaslt.h"
#include "kernels/kd_head.h"
#include "kernels/linear.h"
#include "tests/catch.h"
#include "tests/gpu/gpu_compare.h"

using namespace crucible;
using namespace crucible::gpu_test;

namespace {

const Device kGpu = Device::cuda(0);
constexpr double kUd = 0x1p-53;  // FP64 unit roundoff

Tensor to_gpu(const Tensor& t) { return t.to(kGpu); }

Tensor abs_of(const Tensor& t) {
  Tensor a = t.clone();
  for (float& v : a.span<float>()) v = std::fabs(v);
  return a;
}

// c [M, N] = a [M, K] b [N, K]^T on the GPU (FP32), back on the host.
Tensor gemm_nt_host(const Tensor& a_g, const Tensor& b_g, const char* name) {
  Tensor c(Shape{a_g.dim(0), b_g.dim(0)}, DType::F32, kGpu, name);
  ops::gemm_nt(a_g, b_g, c, 0.0f, ops::GemmPrecision::Fp32);
  return on_host(c);
}

struct KdCase {
  const char* name;
  std::int64_t tokens, d_student, d_teacher, vocab, rows;
};

constexpr KdCase kCases[] = {
    {"small odd (T 13, Ds 37, Dt 29, V 1001, rows 5)", 13, 37, 29, 1001, 5},
    {"T 300, Ds 512, Dt 384, V 32000, rows 64", 300, 512, 384, 32000, 64},
};

// Per row of logits [T, V]: log softmax(z / tau) in FP64 into lp, returns lse.
double log_softmax_row(const float* z, std::int64_t V, double tau, std::vector<double>& lp) {
  lp.resize(static_cast<std::size_t>(V));
  double m = -INFINITY;
  for (std::int64_t v = 0; v < V; ++v) m = std::max(m, static_cast<double>(z[v]) / tau);
  double s = 0;
  for (std::int64_t v = 0; v < V; ++v) s += std::exp(static_cast<double>(z[v]) / tau - m);
  const double lse = m + std::log(s);
  for (std::int64_t v = 0; v < V; ++v) lp[v] = static_cast<double>(z[v]) / tau - lse;
  return lse;
}

}  // namespace

TEST_CASE("kd head: CUDA forward and backward match the CPU twin", "[gpu][kd_head]") {
  REQUIRE(cuda_device_count() > 0);
  std::uint64_t seed = 9100;
  for (const KdCase& c : kCases) {
    for (const float tau : {1.0f, 2.0f}) {
      const std::int64_t T = c.tokens, Ds = c.d_student, Dt = c.d_teacher, V = c.vocab, R = c.rows;
      const std::int64_t nb = (T + R - 1) / R;
      const std::string name = std::string(c.name) + ", tau " + std::to_string(tau);
      // Student logits of std ~3, a sharper teacher (std ~4).
      const float as = 9.0f / std::sqrt(static_cast<float>(Ds)), at = 12.0f / std::sqrt(static_cast<float>(Dt));
      const Tensor hs = uniform_tensor(Shape{T, Ds}, seed, "hs");
      const Tensor ws = uniform_tensor(Shape{V, Ds}, seed + 1, "ws", -as, as);
      const Tensor ht = uniform_tensor(Shape{T, Dt}, seed + 2, "ht");
      const Tensor wt = uniform_tensor(Shape{V, Dt}, seed + 3, "wt", -at, at);
      Tensor dloss = uniform_tensor(Shape{T}, seed + 4, "dloss");
      dloss.data<float>()[1] = 0.0f;  // a row the backward skips
      const Tensor dws0 = uniform_tensor(Shape{V, Ds}, seed + 5, "dws0", -0.01f, 0.01f);
      seed += 6;
      ops::KdHeadOptions opts;
      opts.temperature = tau;
      opts.rows = R;

      // CPU reference.
      Tensor loss(Shape{T}, DType::F32, Device::cpu(), "loss");
      ops::kd_head_forward(hs, ws, ht, wt, loss, opts);
      Tensor dhs(Shape{T, Ds}, DType::F32, Device::cpu(), "dhs");
      Tensor dws = dws0.clone();
      ops::kd_head_backward(dloss, hs, ws, ht, wt, dhs, dws, opts);

      // GPU, outputs written (=) pre-filled with NaN.
      const Tensor hs_g = to_gpu(hs), ws_g = to_gpu(ws), ht_g = to_gpu(ht), wt_g = to_gpu(wt), dl_g = to_gpu(dloss);
      Tensor loss_g = to_gpu(nan_tensor(Shape{T}, "loss"));
      ops::kd_head_forward(hs_g, ws_g, ht_g, wt_g, loss_g, opts);
      Tensor dhs_g = to_gpu(nan_tensor(Shape{T, Ds}, "dhs")), dws_g = to_gpu(dws0);
      ops::kd_head_backward(dl_g, hs_g, ws_g, ht_g, wt_g, dhs_g, dws_g, opts);

      // Tolerance ingredients (see the file comment), from GPU GEMMs and FP64 on the host.
      const Tensor zs = gemm_nt_host(hs_g, ws_g, "zs"), zt = gemm_nt_host(ht_g, wt_g, "zt");
      const Tensor hs_abs_g = to_gpu(abs_of(hs)), ws_abs_g = to_gpu(abs_of(ws));
      const Tensor Ss = gemm_nt_host(hs_abs_g, ws_abs_g, "Ss"),
                   St = gemm_nt_host(to_gpu(abs_of(ht)), to_gpu(abs_of(wt)), "St");
      const double cs = 2.0 * (Ds + 1) * kU, ct = 2.0 * (Dt + 1) * kU;
      std::vector<double> tol_loss(static_cast<std::size_t>(T)), rho(static_cast<std::size_t>(T));
      Tensor M(Shape{T, V}, DType::F32, Device::cpu(), "M");
      std::vector<double> lps, lpt;
      double rho_max = 0;
      for (std::int64_t t = 0; t < T; ++t) {
        const float* zsr = zs.data<float>() + t * V;
        const float* ztr = zt.data<float>() + t * V;
        const float* ssr = Ss.data<float>() + t * V;
        const float* str = St.data<float>() + t * V;
        const double lse_s = log_softmax_row(zsr, V, tau, lps), lse_t = log_softmax_row(ztr, V, tau, lpt);
        double kl = 0, A = 0, zmax_s = 0, zmax_t = 0, es = 0, et = 0;
        for (std::int64_t v = 0; v < V; ++v) {
          kl += std::exp(lpt[v]) * (lpt[v] - lps[v]);
          A += std::exp(lpt[v]) * std::fabs(lpt[v] - lps[v]);
          zmax_s = std::max(zmax_s, std::fabs(static_cast<double>(zsr[v])));
          zmax_t = std::max(zmax_t, std::fabs(static_cast<double>(ztr[v])));
          es = std::max(es, cs * ssr[v] / tau);
          et = std::max(et, ct * str[v] / tau);
        }
        double first = 0;
        for (std::int64_t v = 0; v < V; ++v) {
          const double ps = std::exp(lps[v]), pt = std::exp(lpt[v]);
          first += std::fabs(ps - pt) * cs * ssr[v] + pt * std::fabs(lpt[v] - lps[v] - kl) * ct * str[v];
        }
        const double C = std::fabs(lse_s) + std::fabs(lse_t) + (zmax_s + zmax_t) / tau + 1;
        const double tau2 = static_cast<double>(tau) * tau;
        // The sensitivities and M are evaluated at the GPU's logits, whose probabilities are
        // within a factor exp(2 (es + et)) of exact: fac covers that and the GEMMs of M.
        const double fac = 1.01 + 2.02 * (es + et);
        tol_loss[t] = fac * tau * first + tau2 * (es + et) * (es + et) * (2 + A + std::fabs(kl)) +
                      tau2 * 4.0 * (V + 16) * kUd * C + 2 * kU * std::fabs(loss.data<float>()[t]);
        REQUIRE(std::max(es, et) < 1e-2);  // the linearization of exp above
        rho[t] = 2.02 * std::max(es, et) + 3 * kU;
        rho_max = std::max(rho_max, rho[t]);
        const double g = std::fabs(static_cast<double>(dloss.data<float>()[t])) * tau;
        float* m = M.data<float>() + t * V;
        for (std::int64_t v = 0; v < V; ++v)
          m[v] = static_cast<float>(fac * g * (std::exp(lps[v]) + std::exp(lpt[v])));
      }
      const Tensor M_g = to_gpu(M);
      Tensor mw_g(Shape{T, Ds}, DType::F32, kGpu, "M|ws|"), mh_g(Shape{V, Ds}, DType::F32, kGpu, "M^T|hs|");
      cuda::gemm_rowmajor(false, false, T, Ds, V, cuda::GemmOperand{M_g.raw(), DType::F32},
                          cuda::GemmOperand{ws_abs_g.raw(), DType::F32}, static_cast<float*>(mw_g.raw()), 0.0f,
                          nullptr);
      cuda::gemm_rowmajor(true, false, V, Ds, T, cuda::GemmOperand{M_g.raw(), DType::F32},
                          cuda::GemmOperand{hs_abs_g.raw(), DType::F32}, static_cast<float*>(mh_g.raw()), 0.0f,
                          nullptr);
      const Tensor MW = on_host(mw_g), MH = on_host(mh_g);

      require_close(name + " loss", loss, loss_g,
                    [&](std::int64_t t) { return tol_loss[static_cast<std::size_t>(t)]; });
      const float* mwp = MW.data<float>();
      const float* mhp = MH.data<float>();
      const float* dws0p = dws0.data<float>();
      require_close(name + " dhs", dhs, dhs_g, [&](std::int64_t i) {
        return 1.01 * (rho[static_cast<std::size_t>(i / Ds)] + 2.0 * (V + 1) * kU) * mwp[i];
      });
      require_close(name + " dws", dws, dws_g, [&](std::int64_t i) {
        return 1.01 * (rho_max + 2.0 * (R + nb + 1) * kU) * mhp[i] + 2.0 * (nb + 1) * kU * std::fabs(dws0p[i]);
      });
      // The skipped row: exactly zero on both sides.
      const Tensor dhs_h = on_host(dhs_g);
      for (std::int64_t d = 0; d < Ds; ++d) REQUIRE(dhs_h.data<float>()[Ds + d] == 0.0f);

      // Determinism: the same launches again.
      Tensor loss2 = to_gpu(nan_tensor(Shape{T}, "loss2"));
      ops::kd_head_forward(hs_g, ws_g, ht_g, wt_g, loss2, opts);
      require_same_bits(name + " loss, second run", on_host(loss_g), loss2);
      Tensor dhs2 = to_gpu(nan_tensor(Shape{T, Ds}, "dhs2")), dws2 = to_gpu(dws0);
      ops::kd_head_backward(dl_g, hs_g, ws_g, ht_g, wt_g, dhs2, dws2, opts);
      require_same_bits(name + " dhs, second run", dhs_h, dhs2);
      require_same_bits(name + " dws, second run", on_host(dws_g), dws2);
      std::printf("  %-64s ok\n", name.c_str());
    }
  }
}
