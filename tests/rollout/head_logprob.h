// tests/rollout/head_logprob.h: log p(token | final hidden row) through the LM head, in the
// precision of the trainer's head (host tensors): the reference that the KV-cache decoding
// tests (tests/rollout/test_generator.cpp, tests/gpu/test_kv_decode.cpp) hold the cached
// forward's rows to.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "core/tensor.h"
#include "kernels/linear.h"

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

}  // namespace crucible::testing
