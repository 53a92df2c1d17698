// checkpoints/gguf_export.h: ModelWeights -> a GGUF v3 file that llama.cpp and Ollama load.
//
// Supports the dense students: general.architecture "qwen2" and "llama". Tensors are
// renamed HF -> GGUF (token_embd, blk.N.attn_q/k/v/output, attn_norm, ffn_gate/up/down,
// ffn_norm, output_norm, output; qwen2's attn_q/k/v.bias), dims reversed with the
// bytes untouched, and for llama the q/k rows permuted from HF's half-split RoPE layout
// to the interleaved one llama.cpp's NORM rope expects (convert_hf_to_gguf
// LlamaModel.permute). Llama-3 RoPE scaling becomes a rope_freqs.weight tensor of
// per-frequency divisors. 2-D weights take the chosen type (F32, F16, BF16, Q8_0;
// Q8_0 falls back to F16 where ne[0] is not a multiple of 32); 1-D tensors (norms,
// biases, rope_freqs) stay F32 as llama.cpp expects.
// Reference: reference/checkpoint_formats.md §2.7, §4; llama.cpp convert_hf_to_gguf.py,
// conversion/llama.py, src/llama-model.cpp.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "checkpoints/gguf_vocab.h"
#include "checkpoints/gguf_writer.h"
#include "model/weights.h"

namespace crucible::checkpoints {

enum class GgufExportDType : std::uint8_t { F32, F16, BF16, Q8_0 };
const char* gguf_export_dtype_name(GgufExportDType d);  // "f32", "f16", "bf16", "q8_0"

struct GgufExportOptions {
  GgufExportDType dtype = GgufExportDType::F16;
  std::string name;  // general.name; empty: the model config's name
};

// Writes `path` atomically ("<path>.tmp", fsync, rename).
void export_gguf(const ModelWeights& w, const ExportTokenizer& tok, const GgufExportOptions& o,
                 const std::string& path);
// The writer export_gguf() fills (metadata + tensor producers that read `w` when the
// file is written, so `w` must outlive it). For tests and in-memory encoding.
GgufWriter make_gguf_writer(const ModelWeights& w, const GgufVocab& vocab, const GgufExportOptions& o);

// The GGUF name of an HF tensor of a qwen2/llama model ("" when GGUF has none).
std::string gguf_tensor_name(const std::string& hf_name);

// Llama's q/k row permutation, HF half-split -> GGUF interleaved, per head:
//   dst row h*hd + 2j + t  =  src row h*hd + t*hd/2 + j     (t in {0,1}, j < hd/2)
// `rows` = n_head * hd (n_head_kv heads for k), each row `cols` wide (1 for a bias).
void llama_permute_qk(const float* src, float* dst, std::int64_t rows, std::int64_t cols, std::int64_t n_head);
// The inverse (GGUF -> HF).
void llama_unpermute_qk(const float* src, float* dst, std::int64_t rows, std::int64_t cols, std::int64_t n_head);

// rope_freqs.weight for Llama-3 scaling: [head_dim / 2] divisors of the base
// frequencies (1, factor, or the smooth blend), as convert_hf_to_gguf computes them.
std::vector<float> llama3_rope_freq_factors(const ModelConfig& c);

}  // namespace crucible::checkpoints
