// checkpoints/gguf_vocab.h: an ExportTokenizer as GGUF's tokenizer.* metadata sees it,
// and the tokenizer facts (bos/eos/pad, template) the HF and GGUF exports share.
//
// GGUF stores a byte-level BPE vocabulary as token strings in tokenizer.json's own
// byte-level form ("Ġthe"), one per id up to the model's vocab_size (ids the tokenizer
// lacks become "[PAD<i>]", type UNUSED), a token type per id (NORMAL 1, CONTROL 3 for
// special added tokens, USER_DEFINED 4 for the others), the merges as "a b" strings,
// and a pre-tokenizer name llama.cpp knows (reference/checkpoint_formats.md §4.4).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "checkpoints/hf_export.h"
#include "core/json.h"
#include "model/model_config.h"

namespace crucible::checkpoints {

// llama.cpp token types (llama_token_type / gguf-py TokenType).
enum class GgufTokenType : std::int32_t { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 };

// tokenizer.ggml.pre for the byte-level tokenizer. A llama.cpp pre-tokenizer regex only
// cuts text into words (unmatched stretches are kept as words too); with no merges every
// word still becomes one token per byte, so the name cannot change the ids. Measured with
// llama.cpp (llama-cpp-python 0.3.36) on 303 random UTF-8 texts: "default", "gpt-2",
// "qwen2", "llama-bpe" and "deepseek-v3" all give ids == bytes and the specials as single
// ids. "gpt-2" is the honest name (byte-level BPE, GPT-2's split) and, unlike an empty
// one, draws no "GENERATION QUALITY WILL BE DEGRADED" warning. test_export_python.cpp
// checks llama.cpp's ids when llama_cpp is importable.
inline constexpr const char* kByteLevelGgufPre = "gpt-2";

// bos/eos/pad after the fallbacks documented in ExportTokenizer, with their texts.
struct ResolvedSpecials {
  std::int64_t bos = -1, eos = -1, pad = -1;  // -1: none
  std::string bos_text, eos_text, pad_text;
  bool add_bos = false;
  std::string chat_template;  // Jinja; empty: none
};
ResolvedSpecials resolve_specials(const ExportTokenizer& tok, const ModelConfig& c);

struct GgufVocab {
  std::string pre;                     // tokenizer.ggml.pre
  std::vector<std::string> tokens;     // [vocab_size]
  std::vector<std::int32_t> types;     // [vocab_size] GgufTokenType values
  std::vector<std::string> merges;     // rank order, "a b"
  ResolvedSpecials specials;
};
// Throws when the tokenizer has more tokens than c.vocab_size or an unknown
// pre-tokenizer (set ExportTokenizer::gguf_pre then).
GgufVocab build_gguf_vocab(const ExportTokenizer& tok, const ModelConfig& c);

// The llama.cpp pre-tokenizer name of a tokenizer.json `pre_tokenizer`: the Qwen2
// split regex -> "qwen2", Llama 3's -> "llama-bpe", DeepSeek-V3's three splits ->
// "deepseek-v3", a bare ByteLevel with its GPT-2 regex -> "gpt-2"; otherwise throws
// naming `source` and asking for ExportTokenizer::gguf_pre.
std::string detect_gguf_pre(const json::Value& pre_tokenizer, const std::string& source);

// Helpers over tokenizer files (errors name the path).
json::Value read_json_file(const std::string& path, const char* what);
// The id of `text` in tokenizer.json (added_tokens first, then model.vocab); -1 if absent.
std::int64_t tokenizer_token_id(const json::Value& tokenizer_json, const std::string& text);
// A special token entry of tokenizer_config.json: "x" or {"content": "x", ...}.
std::string token_content(const json::Value& v);

}  // namespace crucible::checkpoints
