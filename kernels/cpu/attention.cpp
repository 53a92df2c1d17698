// kernels/cpu/attention.cpp: CPU reference of causal softmax attention over packed
// sequences (cu_seqlens), GQA groups and d_qk != d_v (MLA), forward and backward.
// Called through ops::attention_* (kernels/attention.cpp), which checks dtypes, shapes
// and devices; here only the values of cu_seqlens are checked. The CUDA twin is
// kernels/cuda/attention_{forward,backward}.cu.
//
// Invariant: token t of sequence b sees keys cu[b] .. t only; masked probabilities are
// exactly zero (never exp(-inf) of a large finite score), so tokens after t and other
// sequences cannot change out[t] by a single bit. Scores and softmax are FP32 (sums in
// double); the backward recomputes P from the saved lse (no [T, T] tensor is kept).
// Reference: FlashAttention-2 (Dao, 2023) Alg. 1-2 for the lse/recompute formulation;
// reference/deepseek_v3_fp8.md §2.1 (MLA "MHA mode": d_qk 192, d_v 128).
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/error.h"
#include "kernels/cpu/attention_cpu.h"

namespace crucible::cpu {

namespace {

// NOTE: query rows are processed in blocks so that one block's scores [kQueryBlock, i1]
// stay in cache and the causal upper triangle beyond the block is never computed.
constexpr std::int64_t kQueryBlock = 64;

struct AttnDims {
  std::int64_t T, Hq, Hkv, group, dqk, dv, n_seq;
};

// Dimensions from the shapes (validated by ops::attention_*), then the values of
// cu_seqlens, which only the backend can read.
AttnDims check_inputs(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& cu_seqlens,
                      const char* op) {
  AttnDims d{};
  d.T = q.dim(0);
  d.Hq = q.dim(1);
  d.dqk = q.dim(2);
  d.Hkv = k.dim(1);
  d.dv = v.dim(2);
  d.group = d.Hq / d.Hkv;
  const std::int32_t* cu = cu_seqlens.data<std::int32_t>();
  d.n_seq = cu_seqlens.numel() - 1;
  CRUCIBLE_CHECK(cu[0] == 0 && cu[d.n_seq] == d.T, op, ": cu_seqlens must run from 0 to T = ", d.T, "; got ",
                 cu[0], " .. ", cu[d.n_seq]);
  for (std::int64_t b = 0; b < d.n_seq; ++b)
    CRUCIBLE_CHECK(cu[b] <= cu[b + 1], op, ": cu_seqlens must be non-decreasing; cu[", b, "] = ", cu[b],
                   " > cu[", b + 1, "] = ", cu[b + 1]);
  return d;
}

std::int64_t max_seq_len(const Tensor& cu_seqlens) {
  const std::int32_t* cu = cu_seqlens.data<std::int32_t>();
  std::int64_t m = 0;
  for (std::int64_t b = 0; b + 1 < cu_seqlens.numel(); ++b) m = std::max<std::int64_t>(m, cu[b + 1] - cu[b]);
  return m;
}

// Row-major matrix views of one (sequence, head) slice: element (i, c) at p[i * ld + c].
struct HeadView {
  const float* q;  // [L, dqk], ld = Hq * dqk
  const float* k;  // [L, dqk], ld = Hkv * dqk
  const float* v;  // [L, dv],  ld = Hkv * dv
  std::int64_t ldq, ldk, ldv;
};

HeadView head_view(const AttnDims& d, const float* q, const float* k, const float* v, std::int64_t t0,
                   std::int64_t h) {
  const std::int64_t g = h / d.group;  // GQA: query head h reads kv head h / group
  return {q + (t0 * d.Hq + h) * d.dqk, k + (t0 * d.Hkv + g) * d.dqk, v + (t0 * d.Hkv + g) * d.dv,
          d.Hq * d.dqk, d.Hkv * d.dqk, d.Hkv * d.dv};
}

// s[rows, cols] = scale * Q[i0 : i0 + rows] K[0 : cols]^T with cols = i0 + rows (causal).
void block_scores(const AttnDims& d, const HeadView& hv, std::int64_t i0, std::int64_t rows, float scale,
                  float* s) {
  const std::int64_t cols = i0 + rows;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows), static_cast<int>(cols),
              static_cast<int>(d.dqk), scale, hv.q + i0 * hv.ldq, static_cast<int>(hv.ldq), hv.k,
              static_cast<int>(hv.ldk), 0.0f, s, static_cast<int>(cols));
}

}  // namespace

void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& cu_seqlens, float scale,
                       Tensor& out, Tensor& lse) {
  const AttnDims d = check_inputs(q, k, v, cu_seqlens, "attention_forward");
  const std::int32_t* cu = cu_seqlens.data<std::int32_t>();
  const float* qp = q.data<float>();
  const float* kp = k.data<float>();
  const float* vp = v.data<float>();
  float* op = out.data<float>();
  float* lp = lse.data<float>();
  const std::int64_t ldo = d.Hq * d.dv;

  std::vector<float> s(static_cast<std::size_t>(kQueryBlock * max_seq_len(cu_seqlens)));  // [rows, cols]
  for (std::int64_t b = 0; b < d.n_seq; ++b) {
    const std::int64_t t0 = cu[b], L = cu[b + 1] - cu[b];
    for (std::int64_t h = 0; h < d.Hq; ++h) {
      const HeadView hv = head_view(d, qp, kp, vp, t0, h);
      float* oh = op + t0 * ldo + h * d.dv;  // [L, dv], ld = Hq * dv
      for (std::int64_t i0 = 0; i0 < L; i0 += kQueryBlock) {
        const std::int64_t rows = std::min(kQueryBlock, L - i0), cols = i0 + rows;
        block_scores(d, hv, i0, rows, scale, s.data());
        for (std::int64_t r = 0; r < rows; ++r) {
          const std::int64_t i = i0 + r;  // keys 0 .. i are visible
          float* row = s.data() + r * cols;
          float m = -std::numeric_limits<float>::infinity();
          for (std::int64_t j = 0; j <= i; ++j) m = std::max(m, row[j]);
          double sum = 0;
          for (std::int64_t j = 0; j <= i; ++j) {
            row[j] = std::exp(row[j] - m);
            sum += row[j];
          }
          const float inv = static_cast<float>(1.0 / sum);
          for (std::int64_t j = 0; j <= i; ++j) row[j] *= inv;
          std::fill(row + i + 1, row + cols, 0.0f);  // causal mask: exactly zero
          lp[(t0 + i) * d.Hq + h] = m + static_cast<float>(std::log(sum));
        }
        // O[i0 : i0 + rows] = P V[0 : cols]
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(rows), static_cast<int>(d.dv),
                    static_cast<int>(cols), 1.0f, s.data(), static_cast<int>(cols), hv.v, static_cast<int>(hv.ldv),
                    0.0f, oh + i0 * ldo, static_cast<int>(ldo));
      }
    }
  }
}

void attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                        const Tensor& lse, const Tensor& cu_seqlens, float scale, Tensor& dq, Tensor& dk,
                        Tensor& dv) {
  const AttnDims d = check_inputs(q, k, v, cu_seqlens, "attention_backward");
  const std::int32_t* cu = cu_seqlens.data<std::int32_t>();
  const float* qp = q.data<float>();
  const float* kp = k.data<float>();
  const float* vp = v.data<float>();
  const float* dop = dout.data<float>();
  const float* op = out.data<float>();
  const float* lp = lse.data<float>();
  float* dqp = dq.data<float>();
  float* dkp = dk.data<float>();
  float* dvp = dv.data<float>();
  const std::int64_t ldo = d.Hq * d.dv;
  // dk, dv sum over the query heads of a GQA group and over query blocks; dq rows are
  // each written once (beta = 0) because every token belongs to exactly one sequence.
  dk.zero();
  dv.zero();

  const std::size_t block = static_cast<std::size_t>(kQueryBlock * max_seq_len(cu_seqlens));
  std::vector<float> p(block);   // [rows, cols] probabilities P
  std::vector<float> ds(block);  // [rows, cols] dP, then dS = P * (dP - D)
  for (std::int64_t b = 0; b < d.n_seq; ++b) {
    const std::int64_t t0 = cu[b], L = cu[b + 1] - cu[b];
    for (std::int64_t h = 0; h < d.Hq; ++h) {
      const HeadView hv = head_view(d, qp, kp, vp, t0, h);
      const std::int64_t g = h / d.group;
      const float* doh = dop + t0 * ldo + h * d.dv;  // [L, dv], ld = Hq * dv
      const float* oh = op + t0 * ldo + h * d.dv;
      float* dqh = dqp + (t0 * d.Hq + h) * d.dqk;     // [L, dqk], ld = Hq * dqk
      float* dkh = dkp + (t0 * d.Hkv + g) * d.dqk;    // [L, dqk], ld = Hkv * dqk
      float* dvh = dvp + (t0 * d.Hkv + g) * d.dv;     // [L, dv],  ld = Hkv * dv
      for (std::int64_t i0 = 0; i0 < L; i0 += kQueryBlock) {
        const std::int64_t rows = std::min(kQueryBlock, L - i0), cols = i0 + rows;
        const int ir = static_cast<int>(rows), ic = static_cast<int>(cols);
        block_scores(d, hv, i0, rows, scale, p.data());
        // dP = dO V^T
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, ir, ic, static_cast<int>(d.dv), 1.0f,
                    doh + i0 * ldo, static_cast<int>(ldo), hv.v, static_cast<int>(hv.ldv), 0.0f, ds.data(), ic);
        for (std::int64_t r = 0; r < rows; ++r) {
          const std::int64_t i = i0 + r;
          const float l = lp[(t0 + i) * d.Hq + h];
          double dsum = 0;  // D_i = rowsum(dO_i * O_i)
          for (std::int64_t c = 0; c < d.dv; ++c)
            dsum += static_cast<double>(doh[i * ldo + c]) * oh[i * ldo + c];
          const float D = static_cast<float>(dsum);
          float* prow = p.data() + r * cols;
          float* dsrow = ds.data() + r * cols;
          for (std::int64_t j = 0; j <= i; ++j) {
            prow[j] = std::exp(prow[j] - l);
            dsrow[j] = prow[j] * (dsrow[j] - D);
          }
          std::fill(prow + i + 1, prow + cols, 0.0f);
          std::fill(dsrow + i + 1, dsrow + cols, 0.0f);
        }
        // dq = scale * dS K;  dk += scale * dS^T Q;  dv += P^T dO
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, ir, static_cast<int>(d.dqk), ic, scale, ds.data(),
                    ic, hv.k, static_cast<int>(hv.ldk), 0.0f, dqh + i0 * hv.ldq, static_cast<int>(hv.ldq));
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, ic, static_cast<int>(d.dqk), ir, scale, ds.data(),
                    ic, hv.q + i0 * hv.ldq, static_cast<int>(hv.ldq), 1.0f, dkh, static_cast<int>(hv.ldk));
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, ic, static_cast<int>(d.dv), ir, 1.0f, p.data(), ic,
                    doh + i0 * ldo, static_cast<int>(ldo), 1.0f, dvh, static_cast<int>(hv.ldv));
      }
    }
  }
}

}  // namespace crucible::cpu
