// checkpoints/hf_export.h: ModelWeights -> a Hugging Face model directory.
//
// The directory holds what transformers and vLLM load (reference/checkpoint_formats.md
// §1-§3, §6): model.safetensors (or shards + model.safetensors.index.json), config.json
// (v4 keys), generation_config.json, tokenizer.json, tokenizer_config.json (with the
// chat template) and special_tokens_map.json. It is written into a temporary sibling
// directory and renamed into place: a failed export never leaves a half directory at
// out_dir, and an existing out_dir is replaced only when the new one is complete.
//
// The tokenizer is described by plain data (ExportTokenizer) so that this layer does
// not depend on how data/ represents tokenizers: either the original HF files of a
// BPE tokenizer, copied, or a byte-level tokenizer (256 byte tokens + specials) for
// which an equivalent tokenizer.json is synthesized.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/json.h"
#include "model/weights.h"

namespace crucible::data {
class Tokenizer;
}

namespace crucible::checkpoints {

struct ExportSpecialToken {
  std::int64_t id = -1;
  std::string text;     // raw text, e.g. "<｜end▁of▁sentence｜>"
  bool special = true;  // HF added_tokens "special"; GGUF CONTROL (3) if set, else USER_DEFINED (4)
};

struct ExportTokenizer {
  // An original tokenizer.json to copy (BPE from HF files). Empty: the byte-level
  // tokenizer below is synthesized (ids 0..255 are the bytes, id = byte value).
  std::string tokenizer_json_path;
  // Optional original tokenizer_config.json (copied, then chat_template,
  // model_max_length and add_bos_token are updated where set here).
  std::string tokenizer_config_path;
  // Byte-level only: the special tokens (ids >= 256, unique ids and texts).
  std::vector<ExportSpecialToken> specials;
  // -1: taken from the original tokenizer_config.json (HF files) or the model config.
  std::int64_t bos_id = -1;
  std::int64_t eos_id = -1;
  std::int64_t pad_id = -1;
  std::vector<std::int64_t> extra_eos_ids;  // more stop ids (generation_config eos list)
  bool add_bos_token = false;  // tokenizer prepends BOS when encoding with special tokens
  std::string chat_template;   // Jinja; empty: the original's (HF files) or none
  std::int64_t model_max_length = 0;  // 0: the model's max_position_embeddings
  // GGUF tokenizer.ggml.pre; empty: detected from tokenizer.json (byte-level: "gpt-2").
  std::string gguf_pre;

  bool byte_level() const { return tokenizer_json_path.empty(); }
  // Throws naming the first bad field (duplicate ids/texts, ids < 256, missing files).
  void validate() const;
};

// The ExportTokenizer of a loaded data::Tokenizer. ByteTokenizer: the byte-level
// description (ids >= 256 with their texts, bos/eos, pad "<｜pad｜>" when present).
// Any other (BpeTokenizer): `source` is the directory or tokenizer.json it was loaded
// from; its tokenizer.json (and tokenizer_config.json beside it) are copied.
// chat_template: Jinja, e.g. data::chat_template_source(ChatFormat::R1, {.think_prefill = true}).
ExportTokenizer export_tokenizer_for(const data::Tokenizer& t, const std::string& source, std::string chat_template);

// GPT-2's bytes_to_unicode: the UTF-8 text of the printable code point standing for
// byte b in byte-level BPE vocabularies ("Ġ" for ' ', "Ċ" for '\n', "!" for '!').
std::string gpt2_byte_to_unicode(std::uint8_t b);

// The tokenizer.json of a byte-level tokenizer: BPE over the 256 byte strings at ids
// 0..255 (byte order), no merges, ByteLevel pre-tokenizer (no regex) and decoder, the
// specials as added tokens; with add_bos_token a TemplateProcessing post-processor
// prepends BOS. Python `tokenizers` encodes text to exactly its UTF-8 bytes.
json::Value byte_level_tokenizer_json(const ExportTokenizer& tok);

enum class HfExportDType : std::uint8_t {
  F32,   // every tensor FP32, exact
  BF16,  // every tensor BF16, round-to-nearest-even
  FP8,   // deepseek_v3 only: FP8 linear layers (ParamSpec.fp8) as E4M3 with 128x128
         // weight_scale_inv blocks, the rest BF16 (the DeepSeek-V3 checkpoint layout)
};
const char* hf_export_dtype_name(HfExportDType d);  // "f32", "bf16", "fp8"

struct HfExportOptions {
  HfExportDType dtype = HfExportDType::BF16;
  std::uint64_t max_shard_bytes = 5'000'000'000;  // HF's default shard cap
  bool overwrite = false;  // replace an existing out_dir (as a whole) instead of failing
  // generation_config.json sampling defaults (R1-Distill's).
  bool do_sample = true;
  double temperature = 0.6;
  double top_p = 0.95;
  std::int64_t max_new_tokens = 0;  // 0: not written

  void validate() const;
};

// Writes the directory described in the header comment. Tied embeddings write no
// lm_head. Weights may live on any device (copied to the host tensor by tensor).
void export_hf(const ModelWeights& w, const ExportTokenizer& tok, const HfExportOptions& o,
               const std::string& out_dir);

// Replaces `out_dir` by a directory that `fill` writes into a fresh temporary
// sibling: if `fill` throws, the temporary is removed and out_dir is untouched.
// An existing out_dir is an error unless `overwrite`. (Also used by the GGUF/Ollama export.)
void write_directory_atomically(const std::string& out_dir, bool overwrite,
                                const std::function<void(const std::string& tmp_dir)>& fill);

}  // namespace crucible::checkpoints
