// kernels/cpu/kd_head.cpp: CPU reference of logit KD (kernels/kd_head.h): per block of
// `rows` tokens, both heads' logits by one GEMM each, the tempered log-softmax of
// each row in FP64, the KL and its logits gradient; the backward recomputes the block.
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/kd_head_cpu.h"

namespace crucible::cpu {

namespace {

// logits [R, V] = h[r0 : r0 + R] w^T
void block_logits(const Tensor& h, const Tensor& w, std::int64_t r0, std::int64_t R, std::vector<float>& out) {
  const std::int64_t D = h.dim(1), V = w.dim(0);
  out.resize(static_cast<std::size_t>(R * V));
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(R), static_cast<int>(V), static_cast<int>(D),
              1.0f, h.data<float>() + r0 * D, static_cast<int>(D), w.data<float>(), static_cast<int>(D), 0.0f,
              out.data(), static_cast<int>(V));
}

// log softmax(z / tau) of one row, in FP64.
void tempered_log_softmax(const float* z, std::int64_t V, double tau, std::vector<double>& lp) {
  lp.resize(static_cast<std::size_t>(V));
  double m = -INFINITY;
  for (std::int64_t v = 0; v < V; ++v) m = std::max(m, static_cast<double>(z[v]) / tau);
  double s = 0;
  for (std::int64_t v = 0; v < V; ++v) s += std::exp(static_cast<double>(z[v]) / tau - m);
  const double lse = m + std::log(s);
  for (std::int64_t v = 0; v < V; ++v) lp[v] = static_cast<double>(z[v]) / tau - lse;
}

}  // namespace

void kd_head_forward(const Tensor& hs, const Tensor& ws, const Tensor& ht, const Tensor& wt, Tensor& loss,
                     const ops::KdHeadOptions& opts) {
  const std::int64_t T = hs.dim(0), V = ws.dim(0);
  const double tau = opts.temperature;
  std::vector<float> zs, zt;
  std::vector<double> lps, lpt;
  float* out = loss.data<float>();
  for (std::int64_t r0 = 0; r0 < T; r0 += opts.rows) {
    const std::int64_t R = std::min(opts.rows, T - r0);
    block_logits(hs, ws, r0, R, zs);
    block_logits(ht, wt, r0, R, zt);
    for (std::int64_t r = 0; r < R; ++r) {
      tempered_log_softmax(zs.data() + r * V, V, tau, lps);
      tempered_log_softmax(zt.data() + r * V, V, tau, lpt);
      double kl = 0;
      for (std::int64_t v = 0; v < V; ++v) kl += std::exp(lpt[v]) * (lpt[v] - lps[v]);
      out[r0 + r] = static_cast<float>(tau * tau * kl);
    }
  }
}

void kd_head_backward(const Tensor& dloss, const Tensor& hs, const Tensor& ws, const Tensor& ht, const Tensor& wt,
                      Tensor& dhs, Tensor& dws, const ops::KdHeadOptions& opts) {
  const std::int64_t T = hs.dim(0), D = hs.dim(1), V = ws.dim(0);
  const double tau = opts.temperature;
  std::vector<float> zs, zt, dz;
  std::vector<double> lps, lpt;
  const float* dl = dloss.data<float>();
  for (std::int64_t r0 = 0; r0 < T; r0 += opts.rows) {
    const std::int64_t R = std::min(opts.rows, T - r0);
    block_logits(hs, ws, r0, R, zs);
    block_logits(ht, wt, r0, R, zt);
    dz.assign(static_cast<std::size_t>(R * V), 0.0f);
    for (std::int64_t r = 0; r < R; ++r) {
      if (dl[r0 + r] == 0.0f) continue;
      tempered_log_softmax(zs.data() + r * V, V, tau, lps);
      tempered_log_softmax(zt.data() + r * V, V, tau, lpt);
      const double g = static_cast<double>(dl[r0 + r]) * tau;
      for (std::int64_t v = 0; v < V; ++v) dz[r * V + v] = static_cast<float>(g * (std::exp(lps[v]) - std::exp(lpt[v])));
    }
    // dhs[block] = dz ws ; dws += dz^T hs[block]
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(R), static_cast<int>(D), static_cast<int>(V),
                1.0f, dz.data(), static_cast<int>(V), ws.data<float>(), static_cast<int>(D), 0.0f,
                dhs.data<float>() + r0 * D, static_cast<int>(D));
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, static_cast<int>(V), static_cast<int>(D), static_cast<int>(R),
                1.0f, dz.data(), static_cast<int>(V), hs.data<float>() + r0 * D, static_cast<int>(D), 1.0f,
                dws.data<float>(), static_cast<int>(D));
  }
}

}  // namespace crucible::cpu
