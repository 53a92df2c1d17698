// data/byte_tokenizer.cpp: ByteTokenizer (bytes + DeepSeek-R1 style specials).
//
// Invariant: decode(encode(s)) == s for every byte string s; specials are recognized
// only as whole tokens (leftmost, longest). Reference: data/byte_tokenizer.h.
#include "data/byte_tokenizer.h"

#include <cstring>

#include "core/error.h"
#include "data/tokenizer_bpe_model.h"
#include "data/tokenizer_unicode.h"

namespace crucible::data {

const std::array<std::string_view, ByteTokenizer::kVocabSize - 256>& ByteTokenizer::special_tokens() {
  static const std::array<std::string_view, kVocabSize - 256> kSpecials = {
      "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>",
      "<think>", "</think>", "<｜pad｜>", "<｜reserved_0｜>", "<｜reserved_1｜>", "<｜reserved_2｜>",
      "<｜reserved_3｜>", "<｜reserved_4｜>", "<｜reserved_5｜>", "<｜reserved_6｜>", "<｜reserved_7｜>",
      "<｜reserved_8｜>"};
  return kSpecials;
}

std::vector<std::int32_t> ByteTokenizer::encode(std::string_view text) const {
  std::vector<std::int32_t> ids;
  ids.reserve(text.size());
  const auto& specials = special_tokens();
  std::size_t i = 0;
  while (i < text.size()) {
    if (text[i] == '<') {  // every special starts with '<'
      std::size_t best_len = 0;
      std::int32_t best = -1;
      for (std::size_t k = 0; k < specials.size(); ++k)
        if (specials[k].size() > best_len && text.substr(i, specials[k].size()) == specials[k]) {
          best_len = specials[k].size();
          best = static_cast<std::int32_t>(256 + k);
        }
      if (best >= 0) {
        ids.push_back(best);
        i += best_len;
        continue;
      }
    }
    ids.push_back(static_cast<unsigned char>(text[i]));
    ++i;
  }
  return ids;
}

std::string ByteTokenizer::decode(std::span<const std::int32_t> ids, bool skip_special) const {
  std::string out;
  out.reserve(ids.size());
  for (std::int32_t id : ids) {
    if (id >= 0 && id < 256) out.push_back(static_cast<char>(id));
    else if (id >= 256 && id < kVocabSize && !skip_special) out += special_tokens()[static_cast<std::size_t>(id - 256)];
    // other ids name no token: skipped, as BpeTokenizer does
  }
  return out;
}

std::optional<std::int32_t> ByteTokenizer::token_id(std::string_view token) const {
  const auto& specials = special_tokens();
  for (std::size_t k = 0; k < specials.size(); ++k)
    if (token == specials[k]) return static_cast<std::int32_t>(256 + k);
  if (token.size() == 1) return static_cast<unsigned char>(token[0]);
  if (token.size() == 2 && (static_cast<unsigned char>(token[0]) & 0xE0) == 0xC0 &&
      unicode::utf8_invalid_at(token) == std::string_view::npos) {  // one 2-byte code point
    char32_t cp;
    unicode::utf8_decode(reinterpret_cast<const unsigned char*>(token.data()), cp);
    const int b = bpe_detail::unicode_to_byte(cp);
    if (b >= 0) return b;
  }
  return std::nullopt;
}

std::string ByteTokenizer::token_text(std::int32_t id) const {
  CRUCIBLE_USER_CHECK(id >= 0 && id < kVocabSize, "token id ", id, " names no token of the byte tokenizer (0..",
                      kVocabSize - 1, ")");
  if (id < 256) return bpe_detail::byte_to_unicode(static_cast<unsigned char>(id));
  return std::string(special_tokens()[static_cast<std::size_t>(id - 256)]);
}

}  // namespace crucible::data
