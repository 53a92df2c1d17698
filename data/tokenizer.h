// data/tokenizer.h: the tokenizer interface of crucible and the loader.
//
// Two implementations: BpeTokenizer (data/tokenizer_bpe.h), a byte-level BPE read from a
// Hugging Face tokenizer.json that gives the same ids as Hugging Face `tokenizers`, and
// ByteTokenizer (data/byte_tokenizer.h), bytes plus a few specials for tiny demos.
// Invariants: encode() adds no BOS/EOS (call bos_id()/eos_id() and add them yourself);
// added and special tokens written inside the text are matched as tokens; for valid
// UTF-8 text, decode(encode(text)) == text. Tokenizers are immutable after loading and
// safe to use from several threads at once.
// Reference: huggingface/tokenizers (tokenizer.json format), checkpoint_formats.md §3.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace crucible::data {

class Tokenizer {
 public:
  virtual ~Tokenizer();

  // Token ids of `text` (valid UTF-8; invalid UTF-8 is an Error naming the byte offset).
  // No BOS is added; special and added tokens inside the text are matched.
  virtual std::vector<std::int32_t> encode(std::string_view text) const = 0;

  // The text of `ids`. skip_special leaves out special tokens. Ids that name no token are
  // skipped (as `tokenizers` does: models pad their embedding past the vocabulary); byte
  // sequences that are not valid UTF-8 come out as BpeTokenizer's U+FFFD replacements or,
  // for ByteTokenizer, as the raw bytes.
  virtual std::string decode(std::span<const std::int32_t> ids, bool skip_special = false) const = 0;

  // One past the largest id (ids are 0..vocab_size()-1; the embedding may be larger).
  virtual std::int64_t vocab_size() const = 0;
  // The id of a token given by its vocabulary string ("Ġthe", "<|im_end|>").
  virtual std::optional<std::int32_t> token_id(std::string_view token) const = 0;
  // The raw token string as the vocabulary spells it; an Error for an id with no token.
  virtual std::string token_text(std::int32_t id) const = 0;

  virtual std::optional<std::int32_t> bos_id() const;
  virtual std::optional<std::int32_t> eos_id() const;
  virtual bool is_special(std::int32_t id) const;
  virtual std::string name() const;
};

// "byte" -> ByteTokenizer; a directory -> BpeTokenizer from dir/tokenizer.json, with BOS
// and EOS named by dir/tokenizer_config.json (bos_token / eos_token, strings or
// {"content": ...} objects) when that file exists; a path to a tokenizer.json file ->
// BpeTokenizer from it (and a tokenizer_config.json beside it, if any).
// Errors name the path and what is wrong.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path_or_dir);

}  // namespace crucible::data
