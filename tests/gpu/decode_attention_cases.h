// tests/gpu/decode_attention_cases.h: the decode attention shapes shared by tests/gpu/
// test_decode_attention.cpp and bench/gpu/decode_attention.cpp (STYLE.md principle 13).
//
// DeepSeek-V3 absorbed MLA (128 heads over one 512-wide latent + 64 rope dims), the
// tiny demo model's MLA (4 heads, 64 + 16), and Llama/Qwen-style GQA (32 query heads
// over 8 kv heads, d = 128 and 64; the tiny models' 4/2 x 24). Tests use uneven
// lengths (0, 1, chunk edges, full capacity); benchmarks a batch of equal lengths.
#pragma once

#include <cstdint>
#include <vector>

namespace crucible::gpu_cases {

struct DecodeCase {
  const char* name;
  bool mla;
  std::int64_t Hq, Hkv;   // GQA heads (MLA: Hkv unused)
  std::int64_t d;         // GQA head dim; MLA: latent width R
  std::int64_t rope;      // MLA rope width P (GQA: 0)
  std::int64_t capacity;  // cache positions per slot
  std::vector<std::int32_t> lengths;  // one query token per entry, slot = index

  std::int64_t max_len() const {
    std::int64_t m = 0;
    for (std::int32_t l : lengths) m = l > m ? l : m;
    return m;
  }
};

inline const std::vector<DecodeCase> kDecodeTestCases = {
    {"mla dsv3 128h 512+64", true, 128, 1, 512, 64, 4096, {1, 4096, 2500, 33, 1000, 0, 257, 3000}},
    {"mla dsv3 128h short", true, 128, 1, 512, 64, 300, {31, 32, 33, 300, 1}},
    {"mla h100-teacher 16h 256+64", true, 16, 1, 256, 64, 1024, {1, 1024, 77, 300, 0, 513}},
    {"mla tiny 4h 64+16", true, 4, 1, 64, 16, 64, {1, 2, 3, 64, 17, 0}},
    {"gqa 32/8 d=128", false, 32, 8, 128, 0, 4096, {4096, 1, 129, 128, 2000, 0, 3071}},
    {"gqa 32/8 d=64", false, 32, 8, 64, 0, 2048, {1, 2048, 127, 513, 900}},
    {"gqa tiny 4/2 d=24", false, 4, 2, 24, 0, 64, {1, 5, 64, 0, 30}},
    {"gqa 28/4 d=128", false, 28, 4, 128, 0, 600, {600, 257, 3}},
};

// Benchmarks: batch B of one token per sequence, all at cache length L.
struct DecodeBenchCase {
  const char* name;
  bool mla;
  std::int64_t Hq, Hkv, d, rope, batch, len;
};

inline const std::vector<DecodeBenchCase> kDecodeBenchCases = {
    {"mla_dsv3_b32_l1k", true, 128, 1, 512, 64, 32, 1024},
    {"mla_dsv3_b64_l1k", true, 128, 1, 512, 64, 64, 1024},
    {"mla_dsv3_b32_l4k", true, 128, 1, 512, 64, 32, 4096},
    {"mla_dsv3_b64_l4k", true, 128, 1, 512, 64, 64, 4096},
    {"mla_dsv3_b128_l4k", true, 128, 1, 512, 64, 128, 4096},
    {"mla_dsv3_b64_l8k", true, 128, 1, 512, 64, 64, 8192},
    {"mla_dsv3_b128_l8k", true, 128, 1, 512, 64, 128, 8192},
    // The h100 teacher's generation: 16 heads over a 256 + 64 latent; a decode step of 32
    // sequences, and a prefill-like batch of 4096 query tokens each over 64 positions.
    {"mla_teacher_b32_l256", true, 16, 1, 256, 64, 32, 256},
    {"mla_teacher_b4096_l64", true, 16, 1, 256, 64, 4096, 64},
    {"gqa_32_8_d128_b64_l4k", false, 32, 8, 128, 0, 64, 4096},
    {"gqa_32_8_d128_b128_l8k", false, 32, 8, 128, 0, 128, 8192},
    {"gqa_32_8_d64_b64_l4k", false, 32, 8, 64, 0, 64, 4096},
};

}  // namespace crucible::gpu_cases
