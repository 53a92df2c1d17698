// kernels/cpu/moe_routing_cpu.h: the CPU reference of DeepSeekMoE routing, expert
// counts, permutation and combine (contracts in kernels/moe_routing.h).
//
// Called through the ops:: functions, which validate dtypes, shapes, devices and the
// routing parameters first; these take CPU tensors only and check what needs their
// values (expert indices in range), throwing with the offending value.
#pragma once

#include "core/tensor.h"
#include "kernels/moe_routing.h"

namespace crucible::cpu {

void moe_route_forward(const Tensor& logits, const Tensor& bias, const ops::RoutingParams& p, Tensor& scores,
                       Tensor& topk_idx, Tensor& topk_w);
void moe_route_backward(const Tensor& dtopk_w, const Tensor& scores, const Tensor& topk_idx,
                        const ops::RoutingParams& p, Tensor& dlogits);
void moe_expert_counts(const Tensor& topk_idx, Tensor& counts);
void moe_permute_plan(const Tensor& topk_idx, Tensor& offsets, Tensor& rows, Tensor& position);
void moe_unpermute_combine(const Tensor& expert_out, const Tensor& position, const Tensor& topk_w, Tensor& y);
void moe_unpermute_combine_backward(const Tensor& dy, const Tensor& expert_out, const Tensor& position,
                                    const Tensor& topk_w, Tensor& dexpert_out, Tensor& dtopk_w);

}  // namespace crucible::cpu
