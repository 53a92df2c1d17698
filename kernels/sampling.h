// kernels/sampling.h: next-token sampling from rows of logits (temperature, top-k,
// top-p) and the sampled token's untempered log-prob: the generator's per-step draw.
//
// Per row l [V] with its uniform u in [0, 1) (drawn by the caller, one per sampled
// token, so the random streams stay with the sequences):
//   greedy (temperature 0)  token = argmax l, the lowest id on ties; u is not read.
//   otherwise  c_0, c_1, ... = ids by descending logit, ties: lower id first;
//              K = min(V, top_k) (top_k = 0: K = V);
//              p_i = exp((l[c_i] - l[c_0]) / temperature) in FP64, i < K;
//              m = the smallest prefix with p_0 + ... + p_{m-1} >= top_p (p_0 + ... +
//              p_{K-1}) when top_p < 1 (K when no prefix reaches it in rounding), else K;
//              token = c_j for the first j < m whose inclusive prefix sum of p exceeds
//              u (p_0 + ... + p_{m-1}); c_{m-1} when none does.
//   logprob    l[token] - max l - log sum_j exp(l_j - max l), in FP64 over the whole
//              row (the untempered distribution the trainer recomputes), to FP32.
// NaN logits give unspecified tokens.
//
// Devices: all tensors on one device. The CPU reference (kernels/cpu/sampling.cpp) is
// the generator's original host sampler, bit for bit: a stable sort, then the prefix
// sums and the walk u S - p_0 - p_1 - ... in sequential FP64. The CUDA twin (kernels/
// cuda/sampling.cu) sorts with CUB's stable segmented radix sort and sums in a fixed
// block-scan order, asynchronously on `stream`, deterministically. Greedy tokens agree
// exactly; a sampled token may differ from the CPU's only where u S lies within the
// FP64 rounding of the two sides' prefix sums (a few ulp of S) of a boundary between two
// candidates, and the log-probs differ by the FP64 sums' order and exp's last ulp
// (tests/gpu/test_sampling.cpp).
#pragma once

#include <cstdint>

#include "core/stream.h"
#include "core/tensor.h"

namespace crucible::ops {

struct SamplingOptions {
  double temperature = 1.0;  // >= 0; 0 = greedy
  double top_p = 1.0;        // (0, 1]; 1 = off
  std::int64_t top_k = 0;    // >= 0; 0 = off
};

// logits [n, V] f32, u [n] f64 in [0, 1) -> tokens [n] i32, logprobs [n] f32.
void sample_tokens(const Tensor& logits, const Tensor& u, const SamplingOptions& opts, Tensor& tokens,
                   Tensor& logprobs, const Stream& stream = Stream());

}  // namespace crucible::ops
