// kernels/cpu/logprob_head.cpp: CPU reference of the fused, vocab-chunked LM head:
// per-token log-probs (+ entropy) of h W^T, their backward, and top-k next tokens.
//
// Invariant: at most [T, chunk] logits exist at any time. The forward keeps, per row, a
// running max m and running sums relative to it (online log-sum-exp, Milakov & Gimelshein
// 2018), so the result depends on the chunk size only through the FP32 rounding of the
// final lse; the backward recomputes each chunk's logits and p = exp(logit - lse).
// Shapes, dtypes and devices are checked by kernels/logprob_head.cpp; target ids here.
// Reference: DESIGN.md §3 (losses never materialize [tokens x vocab] logits).
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/numerics.h"
#include "kernels/cpu/logprob_head_cpu.h"

namespace crucible::cpu {

using ops::LogprobHeadOptions;

namespace {

struct HeadDims {
  std::int64_t T, D, V, chunk;
};

HeadDims head_dims(const Tensor& h, const Tensor& w, const LogprobHeadOptions& opts) {
  return HeadDims{h.dim(0), h.dim(1), w.dim(0), std::min(opts.chunk, w.dim(0))};
}

void check_targets(const Tensor& targets, const HeadDims& d, const char* op) {
  const std::int32_t* tg = targets.data<std::int32_t>();
  for (std::int64_t t = 0; t < d.T; ++t)
    CRUCIBLE_CHECK(tg[t] >= 0 && tg[t] < d.V, op, ": target of row ", t, " is token id ", tg[t],
                   ", outside the vocabulary [0, ", d.V, ")");
}

// logits[T, n] = h[T, D] wc[n, D]^T  (wc: the chunk's rows of w)
void chunk_logits(const HeadDims& d, const float* h, const float* wc, std::int64_t n, float* logits) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(d.T), static_cast<int>(n),
              static_cast<int>(d.D), 1.0f, h, static_cast<int>(d.D), wc, static_cast<int>(d.D), 0.0f,
              logits, static_cast<int>(n));
}

// The GEMM operand of `n` floats at p: itself, or (bf16) a copy in `buf` rounded to
// BF16 (RNE) and back, so that FP32 GEMMs multiply exactly the BF16 values.
const float* operand(const float* p, std::int64_t n, bool bf16, std::vector<float>& buf) {
  if (!bf16) return p;
  buf.resize(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) buf[i] = bf16_to_f32(f32_to_bf16(p[i]));
  return buf.data();
}

// The logits of chunk [c0, c0 + n), h already an operand (see above).
void chunk_logits_of(const HeadDims& d, const float* h, const float* w, std::int64_t c0, std::int64_t n,
                     bool bf16, std::vector<float>& wbuf, float* logits) {
  chunk_logits(d, h, operand(w + c0 * d.D, n * d.D, bf16, wbuf), n, logits);
}

// Online log-sum-exp of one row, relative to the running max m:
//   sum = Σ exp(l - m),  xsum = Σ exp(l - m) (l - m)   (entropy = log sum - xsum / sum).
// Keeping xsum relative to m avoids the cancellation of lse - Σ p l for large logits.
struct OnlineLse {
  float m = -std::numeric_limits<float>::infinity();
  double sum = 0, xsum = 0;

  void add(const float* l, std::int64_t n, bool entropy) {
    float cm = m;
    for (std::int64_t j = 0; j < n; ++j) cm = std::max(cm, l[j]);
    if (cm > m) {  // rescale to the new max: exp(l - cm) = exp(l - m) exp(m - cm)
      if (sum > 0) {
        const double delta = static_cast<double>(m) - cm, a = std::exp(delta);
        xsum = a * (xsum + delta * sum);
        sum *= a;
      }
      m = cm;
    }
    for (std::int64_t j = 0; j < n; ++j) {
      const float x = l[j] - m;
      const float e = std::exp(x);
      sum += e;
      if (entropy) xsum += static_cast<double>(e) * x;
    }
  }
  float lse() const { return m + static_cast<float>(std::log(sum)); }
  float entropy() const { return static_cast<float>(std::log(sum) - xsum / sum); }
};

// Top-k candidates of one row; `better` is the output order (higher logit, then lower id).
struct Cand {
  float logit;
  std::int32_t id;
};
bool better(const Cand& a, const Cand& b) { return a.logit > b.logit || (a.logit == b.logit && a.id < b.id); }

}  // namespace

void logprob_head_forward(const Tensor& h, const Tensor& w, const Tensor& targets, Tensor& logp, Tensor& lse,
                          Tensor& entropy, const LogprobHeadOptions& opts) {
  const HeadDims d = head_dims(h, w, opts);
  check_targets(targets, d, "logprob_head_forward");
  if (d.T == 0) return;
  std::vector<float> hbuf, wbuf;
  const float* hp = operand(h.data<float>(), d.T * d.D, opts.bf16, hbuf);
  const float* wp = w.data<float>();
  const std::int32_t* tg = targets.data<std::int32_t>();

  std::vector<OnlineLse> run(static_cast<std::size_t>(d.T));
  std::vector<float> target_logit(static_cast<std::size_t>(d.T));
  std::vector<float> logits(static_cast<std::size_t>(d.T * d.chunk));  // [T, chunk]
  for (std::int64_t c0 = 0; c0 < d.V; c0 += d.chunk) {
    const std::int64_t n = std::min(d.chunk, d.V - c0);
    chunk_logits_of(d, hp, wp, c0, n, opts.bf16, wbuf, logits.data());
    for (std::int64_t t = 0; t < d.T; ++t) {
      const float* row = logits.data() + t * n;
      run[t].add(row, n, opts.entropy);
      if (tg[t] >= c0 && tg[t] < c0 + n) target_logit[t] = row[tg[t] - c0];
    }
  }
  float* lp = logp.data<float>();
  float* lsep = lse.data<float>();
  for (std::int64_t t = 0; t < d.T; ++t) {
    lsep[t] = run[t].lse();
    lp[t] = target_logit[t] - lsep[t];
  }
  if (opts.entropy) {
    float* ep = entropy.data<float>();
    for (std::int64_t t = 0; t < d.T; ++t) ep[t] = run[t].entropy();
  }
}

void logprob_head_backward(const Tensor& dlogp, const Tensor& h, const Tensor& w, const Tensor& targets,
                           const Tensor& lse, Tensor& dh, Tensor& dw, const LogprobHeadOptions& opts) {
  const HeadDims d = head_dims(h, w, opts);
  check_targets(targets, d, "logprob_head_backward");
  if (d.T == 0) return;
  std::vector<float> hbuf, wbuf, gbuf;
  const float* hp = operand(h.data<float>(), d.T * d.D, opts.bf16, hbuf);
  const float* wp = w.data<float>();
  const float* gp = dlogp.data<float>();
  const float* lsep = lse.data<float>();
  const std::int32_t* tg = targets.data<std::int32_t>();
  float* dhp = dh.data<float>();
  float* dwp = dw.data<float>();

  // Per chunk: grad_logits[t, j] = dlogp[t] (onehot(target)[j] - p[t, j]).
  std::vector<float> g(static_cast<std::size_t>(d.T * d.chunk));  // [T, chunk]
  for (std::int64_t c0 = 0; c0 < d.V; c0 += d.chunk) {
    const std::int64_t n = std::min(d.chunk, d.V - c0);
    const float* wc = operand(wp + c0 * d.D, n * d.D, opts.bf16, wbuf);
    chunk_logits(d, hp, wc, n, g.data());
    for (std::int64_t t = 0; t < d.T; ++t) {
      float* row = g.data() + t * n;
      for (std::int64_t j = 0; j < n; ++j) row[j] = -gp[t] * std::exp(row[j] - lsep[t]);
      if (tg[t] >= c0 && tg[t] < c0 + n) row[tg[t] - c0] += gp[t];
    }
    const float* gc = operand(g.data(), d.T * n, opts.bf16, gbuf);
    const int iT = static_cast<int>(d.T), iD = static_cast<int>(d.D), in = static_cast<int>(n);
    // dh (=, then +=) grad_logits w_chunk;  dw_chunk += grad_logits^T h
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, iT, iD, in, 1.0f, gc, in, wc, iD,
                c0 == 0 ? 0.0f : 1.0f, dhp, iD);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, in, iD, iT, 1.0f, gc, in, hp, iD, 1.0f,
                dwp + c0 * d.D, iD);
  }
}

void logprob_head_topk(const Tensor& h, const Tensor& w, std::int64_t k, Tensor& ids, Tensor& logp,
                       const LogprobHeadOptions& opts) {
  const HeadDims d = head_dims(h, w, opts);
  if (k == 0 || d.T == 0) return;
  std::vector<float> hbuf, wbuf;
  const float* hp = operand(h.data<float>(), d.T * d.D, opts.bf16, hbuf);
  const float* wp = w.data<float>();

  // One heap per row of the k best so far, the worst on top (heap order = `better`).
  std::vector<std::vector<Cand>> heap(static_cast<std::size_t>(d.T));
  for (auto& hh : heap) hh.reserve(static_cast<std::size_t>(k));
  std::vector<OnlineLse> run(static_cast<std::size_t>(d.T));
  std::vector<float> logits(static_cast<std::size_t>(d.T * d.chunk));  // [T, chunk]
  for (std::int64_t c0 = 0; c0 < d.V; c0 += d.chunk) {
    const std::int64_t n = std::min(d.chunk, d.V - c0);
    chunk_logits_of(d, hp, wp, c0, n, opts.bf16, wbuf, logits.data());
    for (std::int64_t t = 0; t < d.T; ++t) {
      const float* row = logits.data() + t * n;
      run[t].add(row, n, false);
      std::vector<Cand>& hh = heap[t];
      for (std::int64_t j = 0; j < n; ++j) {
        const Cand c{row[j], static_cast<std::int32_t>(c0 + j)};
        if (static_cast<std::int64_t>(hh.size()) < k) {
          hh.push_back(c);
          std::push_heap(hh.begin(), hh.end(), better);
        } else if (better(c, hh.front())) {
          std::pop_heap(hh.begin(), hh.end(), better);
          hh.back() = c;
          std::push_heap(hh.begin(), hh.end(), better);
        }
      }
    }
  }
  std::int32_t* ip = ids.data<std::int32_t>();
  float* lp = logp.data<float>();
  for (std::int64_t t = 0; t < d.T; ++t) {
    std::vector<Cand>& hh = heap[t];
    std::sort_heap(hh.begin(), hh.end(), better);  // best first
    const float l = run[t].lse();
    for (std::int64_t j = 0; j < k; ++j) {
      ip[t * k + j] = hh[j].id;
      lp[t * k + j] = hh[j].logit - l;
    }
  }
}

}  // namespace crucible::cpu
