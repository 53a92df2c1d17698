// data/byte_tokenizer.h: a byte-level tokenizer for tiny demos and tests: ids 0..255 are
// the bytes, then 16 special tokens written as DeepSeek-R1 writes them.
//
//   256 <｜begin▁of▁sentence｜> (BOS)   257 <｜end▁of▁sentence｜> (EOS)   258 <｜User｜>
//   259 <｜Assistant｜>   260 <think>   261 </think>   262 <｜pad｜>
//   263..271 <｜reserved_0｜> .. <｜reserved_8｜>                          vocab_size 272
// Invariants: any byte string encodes (no UTF-8 requirement) and decodes back exactly;
// the specials are matched inside the text as whole tokens (the longest at the leftmost
// position); decode writes the bytes as they are, valid UTF-8 or not.
// token_text() of a byte is its GPT-2 byte-level string ("Ġ" for ' '), as in the
// tokenizer.json that checkpoints/ exports for this tokenizer.
#pragma once

#include <array>
#include <string_view>

#include "data/tokenizer.h"

namespace crucible::data {

class ByteTokenizer final : public Tokenizer {
 public:
  static constexpr std::int32_t kBos = 256, kEos = 257, kUser = 258, kAssistant = 259, kThinkOpen = 260,
                                kThinkClose = 261, kPad = 262, kReserved0 = 263, kVocabSize = 272;
  // The special tokens' text, index = id - 256.
  static const std::array<std::string_view, kVocabSize - 256>& special_tokens();

  std::vector<std::int32_t> encode(std::string_view text) const override;
  std::string decode(std::span<const std::int32_t> ids, bool skip_special = false) const override;
  std::int64_t vocab_size() const override { return kVocabSize; }
  // A special's text, a single raw byte, or a byte's GPT-2 byte-level string.
  std::optional<std::int32_t> token_id(std::string_view token) const override;
  std::string token_text(std::int32_t id) const override;
  std::optional<std::int32_t> bos_id() const override { return kBos; }
  std::optional<std::int32_t> eos_id() const override { return kEos; }
  bool is_special(std::int32_t id) const override { return id >= 256 && id < kVocabSize; }
  std::string name() const override { return "byte"; }
};

}  // namespace crucible::data
