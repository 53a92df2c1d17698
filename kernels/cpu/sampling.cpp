// kernels/cpu/sampling.cpp: CPU reference of next-token sampling (kernels/sampling.h).
//
// Invariant: this is the generator's original host sampler, unchanged in every
// operation (stable sort, FP64 exp and sums in candidate order, the walk u S - p_0 -
// p_1 - ...), so a run on the CPU samples the same tokens and log-probs as before the
// op existed. Shapes, dtypes, devices and options are checked by kernels/sampling.cpp.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "kernels/cpu/sampling_cpu.h"

namespace crucible::cpu {

namespace {

// One row of logits [V] and its uniform u in [0, 1) -> the token.
std::int32_t sample_row(const float* logits, std::int64_t V, const ops::SamplingOptions& p, double uniform) {
  if (p.temperature == 0) return static_cast<std::int32_t>(std::max_element(logits, logits + V) - logits);
  std::vector<std::int32_t> order(static_cast<std::size_t>(V));
  std::iota(order.begin(), order.end(), 0);
  // Candidates by descending logit (ties: lower id first) - deterministic.
  std::stable_sort(order.begin(), order.end(), [&](std::int32_t a, std::int32_t b) { return logits[a] > logits[b]; });
  std::int64_t n = V;
  if (p.top_k > 0) n = std::min(n, p.top_k);
  const double mx = logits[order[0]];
  std::vector<double> prob(static_cast<std::size_t>(n));
  double sum = 0;
  for (std::int64_t i = 0; i < n; ++i) sum += (prob[i] = std::exp((logits[order[i]] - mx) / p.temperature));
  if (p.top_p < 1) {  // smallest prefix whose mass reaches top_p
    double acc = 0;
    std::int64_t keep = 0;
    while (keep < n && acc < p.top_p * sum) acc += prob[keep++];
    n = std::max<std::int64_t>(keep, 1);
    sum = acc;
  }
  double u = uniform * sum;
  for (std::int64_t i = 0; i < n; ++i) {
    u -= prob[i];
    if (u < 0) return order[i];
  }
  return order[n - 1];
}

// log softmax of the untempered row at `token`, in FP64.
double log_softmax_at(const float* logits, std::int64_t V, std::int32_t token) {
  double mx = logits[0];
  for (std::int64_t i = 1; i < V; ++i) mx = std::max(mx, static_cast<double>(logits[i]));
  double sum = 0;
  for (std::int64_t i = 0; i < V; ++i) sum += std::exp(logits[i] - mx);
  return logits[token] - mx - std::log(sum);
}

}  // namespace

void sample_tokens(const Tensor& logits, const Tensor& u, const ops::SamplingOptions& opts, Tensor& tokens,
                   Tensor& logprobs) {
  const std::int64_t n = logits.dim(0), V = logits.dim(1);
  const float* l = logits.data<float>();
  const double* uu = u.data<double>();
  std::int32_t* tok = tokens.data<std::int32_t>();
  float* lp = logprobs.data<float>();
  for (std::int64_t i = 0; i < n; ++i) {
    const float* row = l + i * V;
    tok[i] = sample_row(row, V, opts, uu[i]);
    lp[i] = static_cast<float>(log_softmax_at(row, V, tok[i]));
  }
}

}  // namespace crucible::cpu
