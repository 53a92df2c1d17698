// kernels/cuda/moe_routing_cuda.h: host launchers of the DeepSeekMoE routing kernels
// (moe_routing.cu) and of the expert counts, permutation plan and combine
// (moe_permute.cu).
//
// Contracts identical to kernels/moe_routing.h (CPU reference: kernels/cpu/
// moe_routing.cpp). Pointers are device pointers on the current device; shapes and
// parameters are validated by the ops:: layer; values (expert indices, positions) are
// checked inside the kernels, which print the bad value and trap. `stream` is a
// cudaStream_t (nullptr = default stream); launches are asynchronous; every result is
// deterministic (run to run).
#pragma once

#include <cstdint>

namespace crucible::cuda {

// ops::RoutingParams, without the ops:: header (nvcc sees only plain types here).
struct RouteConfig {
  std::int64_t top_k = 1;
  std::int64_t n_group = 1;      // 1 when not group-limited
  std::int64_t topk_group = 1;
  bool sigmoid = true;
  bool norm_topk_prob = true;
  float routed_scaling_factor = 1.0f;
};

// The CUDA twin's largest expert count (one warp holds a token's E scores in shared memory).
constexpr std::int64_t kMaxRouteExperts = 1024;

// logits [T, E]; bias [E] or nullptr -> scores [T, E], topk_idx [T, k] i32, topk_w [T, k].
void moe_route_forward(const float* logits, const float* bias, const RouteConfig& c, float* scores,
                       std::int32_t* topk_idx, float* topk_w, std::int64_t T, std::int64_t E, void* stream);
// dtopk_w [T, k], scores [T, E], topk_idx [T, k] -> dlogits [T, E] (=).
void moe_route_backward(const float* dtopk_w, const float* scores, const std::int32_t* topk_idx,
                        const RouteConfig& c, float* dlogits, std::int64_t T, std::int64_t E, void* stream);

// topk_idx [n] (flattened [T, k]) -> counts [E] (=).
void moe_expert_counts(const std::int32_t* topk_idx, std::int64_t n, std::int64_t E, std::int32_t* counts,
                       void* stream);
// topk_idx [T, k] -> offsets [E + 1], rows [T k], position [T, k] (all =).
void moe_permute_plan(const std::int32_t* topk_idx, std::int64_t T, std::int64_t k, std::int64_t E,
                      std::int32_t* offsets, std::int32_t* rows, std::int32_t* position, void* stream);
// expert_out [N, H], position [T, k], topk_w [T, k] -> y [T, H] (+=).
void moe_unpermute_combine(const float* expert_out, const std::int32_t* position, const float* topk_w, float* y,
                           std::int64_t T, std::int64_t k, std::int64_t H, std::int64_t N, void* stream);
// dy [T, H], expert_out [N, H], position, topk_w [T, k] -> dexpert_out [N, H] (=), dtopk_w [T, k] (=).
void moe_unpermute_combine_backward(const float* dy, const float* expert_out, const std::int32_t* position,
                                    const float* topk_w, float* dexpert_out, float* dtopk_w, std::int64_t T,
                                    std::int64_t k, std::int64_t H, std::int64_t N, void* stream);

}  // namespace crucible::cuda
