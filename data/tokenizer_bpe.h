// data/tokenizer_bpe.h: byte-level BPE from a Hugging Face tokenizer.json.
//
// Supported (anything else in the file is an Error naming the file and the JSON path):
//   model        BPE with vocab, merges as "a b" strings or ["a", "b"] pairs, ignore_merges,
//                unk_token/fuse_unk; byte_fallback false, no dropout, no subword affixes
//   added_tokens special and not, matched in the text before pre-tokenization with their
//                lstrip / rstrip / single_word / normalized flags; ids by tokenizers' rule
//                (a vocabulary token keeps its id, a new one takes the next; a file that
//                says otherwise gets a warning), normalized ones stored in NFC form
//   normalizer   null, NFC, Sequence of those
//   pre_tokenizer ByteLevel (add_prefix_space, use_regex = the GPT-2 split), or a Sequence of
//                Split (Regex or String pattern; Removed, Isolated, MergedWithPrevious,
//                MergedWithNext, Contiguous; invert) ending in ByteLevel
//   decoder      ByteLevel
//   post_processor is not applied: encode() never adds specials (see bos_id()).
// Invariant: encode() gives the ids of `tokenizers`' encode(text, add_special_tokens=False)
// and decode() its decode(); tests/data/test_tokenizer*.cpp check both on the Qwen3,
// DeepSeek-V3 and Llama 3.1 files. Encoding keeps a bounded cache of pre-token -> ids.
// Reference: huggingface/tokenizers (models/bpe, pre_tokenizers, added_vocabulary.rs).
#pragma once

#include <memory>
#include <string>

#include "data/tokenizer.h"

namespace crucible::data {

namespace bpe_detail {
struct Model;  // data/tokenizer_bpe_model.h
}

class BpeTokenizer final : public Tokenizer {
 public:
  // Reads `tokenizer_json`; `tokenizer_config` (may be empty) names BOS and EOS.
  static std::unique_ptr<BpeTokenizer> load(const std::string& tokenizer_json,
                                            const std::string& tokenizer_config = "");
  // Parses tokenizer.json text; `source` names it in errors.
  static std::unique_ptr<BpeTokenizer> from_json_text(std::string_view text, const std::string& source);
  ~BpeTokenizer() override;

  std::vector<std::int32_t> encode(std::string_view text) const override;
  std::string decode(std::span<const std::int32_t> ids, bool skip_special = false) const override;
  std::int64_t vocab_size() const override;
  std::optional<std::int32_t> token_id(std::string_view token) const override;
  std::string token_text(std::int32_t id) const override;
  std::optional<std::int32_t> bos_id() const override;
  std::optional<std::int32_t> eos_id() const override;
  bool is_special(std::int32_t id) const override;
  std::string name() const override;

 private:
  explicit BpeTokenizer(std::unique_ptr<bpe_detail::Model> m);
  std::unique_ptr<bpe_detail::Model> m_;
};

}  // namespace crucible::data
