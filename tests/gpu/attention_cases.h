// tests/gpu/attention_cases.h: the attention shapes shared by tests/gpu/test_attention.cpp,
// bench/gpu/attention.cpp and tools/bench_sdpa.py (STYLE.md principle 13).
//
// DeepSeek-V3 MLA in training ("MHA mode": 128 heads, q/k head dim 192 = 128 nope +
// 64 rope, v head dim 128) and a 16-head slice of it; a Llama/Qwen-style GQA (32 query
// heads over 8 kv heads, d = 128 and d = 64). Tests pack sequences of uneven lengths
// (including 1 and 0, and lengths at tile edges 63/64/65); the benchmark packs 4
// sequences of 4096 tokens, which PyTorch's SDPA sees as a batch of 4.
#pragma once

#include <cstdint>
#include <vector>

namespace crucible::gpu_cases {

struct AttentionCase {
  const char* name;
  std::int64_t Hq, Hkv, dqk, dv;
  std::vector<std::int32_t> lengths;  // packed sequence lengths, in order

  std::vector<std::int32_t> cu_seqlens() const {
    std::vector<std::int32_t> cu{0};
    for (std::int32_t l : lengths) cu.push_back(cu.back() + l);
    return cu;
  }
  std::int64_t tokens() const { return cu_seqlens().back(); }
};

inline const std::vector<AttentionCase> kAttentionTestCases = {
    {"mla 16h 192/128 T=2048", 16, 16, 192, 128, {1, 699, 800, 1, 547}},
    {"mla 128h 192/128 T=512", 128, 128, 192, 128, {300, 1, 211}},
    {"gqa 32/8 d=128 T=2048", 32, 8, 128, 128, {1024, 1, 775, 248}},
    {"gqa 32/8 d=64 T=1000", 32, 8, 64, 64, {1, 62, 1, 64, 65, 0, 807}},
    {"odd 3/1 d=64", 3, 1, 64, 64, {1, 1, 17, 0, 64}},
    {"odd 2/2 192/128", 2, 2, 192, 128, {5}},
    {"odd 6/3 d=128", 6, 3, 128, 128, {130, 33}},
};

inline const std::vector<AttentionCase> kAttentionBenchCases = {
    {"mla_128h_4x4096", 128, 128, 192, 128, {4096, 4096, 4096, 4096}},
    {"mla_16h_4x4096", 16, 16, 192, 128, {4096, 4096, 4096, 4096}},
    {"gqa_32_8_d128_4x4096", 32, 8, 128, 128, {4096, 4096, 4096, 4096}},
};

}  // namespace crucible::gpu_cases
