// tests/gpu/elementwise_cases.h: the shapes shared by tests/gpu/test_elementwise.cpp,
// tests/gpu/test_adamw.cpp and bench/gpu/elementwise.cpp (STYLE.md principle 13).
//
// DeepSeek-V3 (671B) at one micro-batch of 4096 tokens: hidden 7168, q_lora_rank
// 1536, kv_lora_rank 512, 128 heads, decoupled RoPE dims 64 (interleaved; the model
// rotates them in a compact [T, heads, 64] tensor, model/mla_attention.cpp), dense
// MLP intermediate 18432, routed-expert intermediate 2048, vocabulary 129280. A
// Qwen2.5-7B-style student for the half-split RoPE (28 heads of 128). Then small odd
// shapes that hit the scalar and tail paths.
#pragma once

#include <cstdint>

namespace crucible::gpu_cases {

constexpr std::int64_t kTokens = 4096;
constexpr std::int64_t kHidden = 7168, kQLora = 1536, kKvLora = 512;
constexpr std::int64_t kHeads = 128, kRopeDim = 64;
constexpr std::int64_t kDenseInter = 18432, kExpertInter = 2048;
constexpr std::int64_t kVocab = 129280;

struct RowsCase {  // [rows, cols]
  const char* name;
  std::int64_t rows, cols;
};

// RMSNorm: [tokens, D].
inline constexpr RowsCase kRmsNormCases[] = {{"hidden [4096, 7168]", kTokens, kHidden},
                                             {"q_a_norm [4096, 1536]", kTokens, kQLora},
                                             {"kv_a_norm [4096, 512]", kTokens, kKvLora},
                                             {"odd [3, 7]", 3, 7},
                                             {"odd [37, 130]", 37, 130},
                                             {"odd [1, 1]", 1, 1}};

// SwiGLU: [tokens, intermediate].
inline constexpr RowsCase kSwiGluCases[] = {{"dense mlp [4096, 18432]", kTokens, kDenseInter},
                                            {"expert [4096, 2048]", kTokens, kExpertInter},
                                            {"odd [3, 7]", 3, 7},
                                            {"odd [5, 1001]", 5, 1001}};

struct EmbeddingCase {
  const char* name;
  std::int64_t tokens, vocab, dim;
};
inline constexpr EmbeddingCase kEmbeddingCases[] = {{"v3 [4096] x [129280, 7168]", kTokens, kVocab, kHidden},
                                                    {"odd [3] x [5, 7]", 3, 5, 7},
                                                    {"odd [33] x [4, 130]", 33, 4, 130}};

struct RopeCase {
  const char* name;
  std::int64_t tokens, heads, dim, rot;
  bool interleaved;
};
inline constexpr RopeCase kRopeCases[] = {
    {"mla q_pe [4096, 128, 64] interleaved", kTokens, kHeads, kRopeDim, kRopeDim, true},
    {"mla k_pe [4096, 1, 64] interleaved", kTokens, 1, kRopeDim, kRopeDim, true},
    {"qwen q [4096, 28, 128] half-split", kTokens, 28, 128, 128, false},
    {"partial [64, 4, 192] rot 64 interleaved", 64, 4, 192, 64, true},
    {"odd [3, 5, 7] rot 4 half-split", 3, 5, 7, 4, false},
    {"odd [3, 5, 7] rot 6 interleaved", 3, 5, 7, 6, true}};

struct AdamWCase {
  const char* name;
  std::int64_t n;
  std::int64_t offset;  // elements into a larger buffer (1: unaligned, scalar path)
};
inline constexpr AdamWCase kAdamWCases[] = {{"expert w [2048 x 7168]", kExpertInter* kHidden, 0},
                                            {"dense w [18432 x 7168]", kDenseInter* kHidden, 0},
                                            {"norm [7168]", kHidden, 0},
                                            {"odd [1001]", 1001, 0},
                                            {"odd [7] unaligned", 7, 1},
                                            {"[4099] unaligned", 4099, 1}};

}  // namespace crucible::gpu_cases
