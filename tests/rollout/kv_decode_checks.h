// tests/rollout/kv_decode_checks.h: what the KV-cache decoding tests (tests/rollout/
// test_generator.cpp, tests/gpu/test_kv_decode.cpp) share: the log-prob of a token from a
// final hidden row through the LM head (the trainer's head precision, host tensors), and
// a fixed prefill-then-decode schedule over two sequences through rollout::forward_cached.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include <vector>

#include "core/tensor.h"
#include "kernels/linear.h"
#include "model/transformer.h"
#include "rollout/cached_forward.h"

namespace crucible::testing {

inline float head_logprob(const Tensor& hf_row, const Tensor& head, std::int32_t token, bool bf16_head) {
  const std::int64_t V = head.dim(0);
  Tensor logits(Shape{1, V}, DType::F32);
  ops::gemm_nt(hf_row, head, logits, 0.0f, bf16_head ? ops::GemmPrecision::Bf16 : ops::GemmPrecision::Fp32);
  const float* l = logits.data<float>();
  double mx = l[0];
  for (std::int64_t i = 1; i < V; ++i) mx = std::max(mx, double(l[i]));
  double sum = 0;
  for (std::int64_t i = 0; i < V; ++i) sum += std::exp(l[i] - mx);
  return static_cast<float>(l[token] - mx - std::log(sum));
}

// Prefills 4 tokens of a and 2 of b into a fresh cache of `cache_dtype` (2 slots of 16),
// then decodes one token per step; returns the log-prob of every next token of a (8 of
// them for 12 tokens), then of b (7 for 9): the full forward's positions 3..10 and 13..19.
inline std::vector<float> decode_logprobs(Transformer& model, DType cache_dtype, const std::vector<std::int32_t>& a,
                                          const std::vector<std::int32_t>& b) {
  rollout::KvCache cache(model.config(), 2, 16, model.device(), cache_dtype);
  const Tensor head = model.head_weight().to(Device::cpu());
  const bool bf16_head = model.head_options().bf16;
  std::vector<float> got_a, got_b;
  Tensor hf = rollout::forward_cached(model, cache, {{0, {a.begin(), a.begin() + 4}}, {1, {b.begin(), b.begin() + 2}}})
                  .to(Device::cpu());
  got_a.push_back(head_logprob(hf.slice(3, 4), head, a[4], bf16_head));
  got_b.push_back(head_logprob(hf.slice(5, 6), head, b[2], bf16_head));
  std::size_t ia = 4, ib = 2;
  while (ia + 1 < a.size()) {
    std::vector<rollout::Chunk> step{{0, {a[ia]}}};
    if (ib + 1 < b.size()) step.push_back({1, {b[ib]}});
    hf = rollout::forward_cached(model, cache, step).to(Device::cpu());
    got_a.push_back(head_logprob(hf.slice(0, 1), head, a[ia + 1], bf16_head));
    if (step.size() == 2) got_b.push_back(head_logprob(hf.slice(1, 2), head, b[ib + 1], bf16_head)), ++ib;
    ++ia;
  }
  got_a.insert(got_a.end(), got_b.begin(), got_b.end());
  return got_a;
}

}  // namespace crucible::testing
