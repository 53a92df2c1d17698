// kernels/moe_routing.h: DeepSeekMoE routing, forward and backward.
//
// reference/deepseek_v3_fp8.md §3.2 (noaux_tc) and V2's greedy softmax routing:
//   scores = sigmoid(logits) or softmax(logits)            logits = x Wg^T (FP32)
//   selection on scores + bias (bias only for selection), group-limited: groups
//   ranked by the sum of their top-2 biased scores (sigmoid) or their max (softmax
//   group_limited_greedy), top `topk_group` groups kept, top-k experts among them;
//   weights = unbiased scores at the chosen experts, normalized to sum 1 when
//   norm_topk_prob (denominator + 1e-20), times routed_scaling_factor.
// Ties break towards the lower expert index (deterministic).
#pragma once

#include "core/tensor.h"

namespace crucible::ops {

struct RoutingParams {
  std::int64_t top_k = 1;
  std::int64_t n_group = 1;
  std::int64_t topk_group = 1;
  bool sigmoid = true;          // false: softmax scores
  bool group_limited = true;    // false: plain top-k over all experts
  bool norm_topk_prob = true;
  float routed_scaling_factor = 1.0f;
};

// logits [T, E] (FP32), bias [E] or undefined -> scores [T, E] (saved), topk_idx [T, k]
// i32, topk_w [T, k] FP32. All outputs written.
void moe_route_forward(const Tensor& logits, const Tensor& bias, const RoutingParams& p,
                       Tensor& scores, Tensor& topk_idx, Tensor& topk_w);

// dtopk_w [T, k] -> dlogits [T, E] written (selection is piecewise constant: the
// gradient flows through the weights of the chosen experts only).
void moe_route_backward(const Tensor& dtopk_w, const Tensor& scores, const Tensor& topk_idx,
                        const RoutingParams& p, Tensor& dlogits);

}  // namespace crucible::ops
