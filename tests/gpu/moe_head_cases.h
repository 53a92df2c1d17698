// tests/gpu/moe_head_cases.h: the shapes shared by tests/gpu/test_moe_routing.cpp,
// tests/gpu/test_logprob_head.cpp and bench/gpu/moe_head.cpp (STYLE.md principle 13).
//
// DeepSeek-V3 (671B): 256 routed experts in 8 groups, 4 groups kept, top-8, sigmoid
// scores with the e_score_correction_bias, normalized weights x 2.5, hidden 7168,
// vocabulary 129280; one micro-batch of 4096 tokens for routing and 512 for the head.
// DeepSeek-V2 (group_limited_greedy softmax, x16) and V2-Lite (greedy softmax, 64
// experts, top-6, no renormalization) for the softmax paths; then small odd shapes.
#pragma once

#include <cstdint>

namespace crucible::gpu_cases {

struct RouteCase {
  const char* name;
  std::int64_t tokens, experts, top_k, n_group, topk_group;
  bool sigmoid, group_limited, norm_topk_prob, bias;
  float routed_scaling_factor;
  std::int64_t hidden;  // rows of the permute / combine checks
};

inline constexpr RouteCase kRouteCases[] = {
    {"v3 [4096 x 256] 8 groups, keep 4, top-8", 4096, 256, 8, 8, 4, true, true, true, true, 2.5f, 7168},
    {"v2 [1024 x 160] softmax 8 groups, keep 3, top-6", 1024, 160, 6, 8, 3, false, true, true, false, 16.0f, 512},
    {"v2-lite [1000 x 64] softmax greedy top-6", 1000, 64, 6, 1, 1, false, false, false, false, 1.0f, 130},
    {"odd [7 x 12] 4 groups, keep 2, top-3", 7, 12, 3, 4, 2, true, true, true, true, 1.0f, 7},
    {"odd [5 x 33] greedy sigmoid top-5", 5, 33, 5, 1, 1, true, false, true, false, 1.5f, 33},
    {"odd [9 x 6] groups of one, keep 3, top-2", 9, 6, 2, 6, 3, true, true, true, true, 2.5f, 1},
    {"wide [64 x 1024] 32 groups, keep 8, top-16", 64, 1024, 16, 32, 8, true, true, true, true, 2.5f, 64},
};

struct HeadCase {
  const char* name;
  std::int64_t tokens, hidden, vocab, chunk, top_k;
};

inline constexpr HeadCase kHeadCases[] = {
    {"v3 [512 x 7168] x [129280], chunk 4096", 512, 7168, 129280, 4096, 8},
    {"odd [3 x 17] x [1000], chunk 333", 3, 17, 1000, 333, 5},
    {"odd [37 x 130] x [5003], chunk 4096", 37, 130, 5003, 4096, 20},
    {"odd [1 x 5] x [7], chunk 100", 1, 5, 7, 100, 7},
};

}  // namespace crucible::gpu_cases
