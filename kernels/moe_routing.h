// kernels/moe_routing.h: DeepSeekMoE routing (forward and backward), per-expert load
// counts, and token permutation by expert with its weighted un-permute (combine).
//
// reference/deepseek_v3_fp8.md §3.2 (noaux_tc) and V2's greedy softmax routing:
//   scores = sigmoid(logits) or softmax(logits)            logits = x Wg^T (FP32)
//   selection on scores + bias (bias only for selection), group-limited: groups
//   ranked by the sum of their top-2 biased scores (sigmoid) or their max (softmax
//   group_limited_greedy), top `topk_group` groups kept, top-k experts among them;
//   weights = unbiased scores at the chosen experts, normalized to sum 1 when
//   norm_topk_prob (denominator + 1e-20), times routed_scaling_factor.
// Ties break towards the lower expert index (deterministic).
//
// Devices: every op runs on the device of its tensors (all on one). The CPU reference
// is kernels/cpu/moe_routing.cpp; the CUDA twin kernels/cuda/{moe_routing,moe_permute}.cu
// runs asynchronously on `stream` and is deterministic (no float atomics).
// tests/gpu/test_moe_routing.cpp states how closely the twins agree: the same experts
// in the same order; the backward, counts, permutation and combine bit for bit.
// Gradient contract: activation gradients written (=).
#pragma once

#include "core/stream.h"
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
// i32 (best first by biased score), topk_w [T, k] FP32. All outputs written.
// The CUDA twin takes E <= 1024.
void moe_route_forward(const Tensor& logits, const Tensor& bias, const RoutingParams& p,
                       Tensor& scores, Tensor& topk_idx, Tensor& topk_w, const Stream& stream = Stream());

// dtopk_w [T, k] -> dlogits [T, E] written (selection is piecewise constant: the
// gradient flows through the weights of the chosen experts only).
void moe_route_backward(const Tensor& dtopk_w, const Tensor& scores, const Tensor& topk_idx,
                        const RoutingParams& p, Tensor& dlogits, const Stream& stream = Stream());

// Tokens routed to each expert: counts [E] i32 = #{(t, j) : topk_idx[t, j] == e}
// (the load the aux-loss-free bias update balances). topk_idx [T, k] i32 in [0, E).
void moe_expert_counts(const Tensor& topk_idx, Tensor& counts, const Stream& stream = Stream());

// Expert-contiguous order of the T k (token, slot) pairs: expert by expert, and within
// an expert by ascending token (deterministic). topk_idx [T, k] i32 in [0, E) ->
//   offsets  [E + 1] i32: expert e owns permuted rows [offsets[e], offsets[e + 1])
//   rows     [T k] i32:   the token of permuted row i (gather_rows(x, rows, x_perm)
//                         builds the experts' inputs [T k, H])
//   position [T, k] i32:  the permuted row of (t, j)
// All written. An expert chosen twice by one token keeps slot order.
void moe_permute_plan(const Tensor& topk_idx, Tensor& offsets, Tensor& rows, Tensor& position,
                      const Stream& stream = Stream());

// Weighted un-permute: y[t] += sum over the token's k slots, in ascending position
// (= ascending expert) order, of topk_w[t, j] * expert_out[position[t, j]], each term
// rounded and added one at a time (the order of model/moe.cpp's per-expert scatter-add).
// expert_out [T k, H], position [T, k] i32, topk_w [T, k], y [T, H] (+=).
void moe_unpermute_combine(const Tensor& expert_out, const Tensor& position, const Tensor& topk_w, Tensor& y,
                           const Stream& stream = Stream());

// Its backward: dexpert_out[position[t, j]] = topk_w[t, j] * dy[t] (=) and
// dtopk_w[t, j] = <dy[t], expert_out[position[t, j]]> (=, accumulated in FP64).
void moe_unpermute_combine_backward(const Tensor& dy, const Tensor& expert_out, const Tensor& position,
                                    const Tensor& topk_w, Tensor& dexpert_out, Tensor& dtopk_w,
                                    const Stream& stream = Stream());

}  // namespace crucible::ops
