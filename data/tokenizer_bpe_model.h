// data/tokenizer_bpe_model.h: the loaded form of a byte-level BPE tokenizer (internal to
// data/tokenizer_bpe*.cpp): vocabulary hash maps, the merge table, the added-token
// matcher, the pre-tokenizer steps and the encode cache.
//
// Invariant: everything but the cache is immutable once load finishes; the cache is
// guarded by its mutex and only ever holds ids that merging would give.
// Reference: huggingface/tokenizers models/bpe/model.rs, tokenizer/added_vocabulary.rs.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "data/regex.h"

namespace crucible::data::bpe_detail {

std::uint64_t hash_bytes(std::string_view s);

// Open-addressing map from a byte string to an id; the key strings live elsewhere and
// must outlive the map unchanged. insert() of a present key replaces its id.
class StringIdMap {
 public:
  void reserve(std::size_t n);
  void insert(std::string_view key, std::int32_t id);
  std::optional<std::int32_t> find(std::string_view key) const;
  std::size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    std::string_view key;
    std::uint64_t hash;
    std::int32_t id;
  };
  void rehash(std::size_t slots);
  std::vector<std::uint32_t> slots_;  // entry index + 1; 0 = empty
  std::vector<Entry> entries_;
  std::size_t mask_ = 0;
};

// (left id, right id) -> (rank, merged id). Open addressing, linear probing.
class PairMap {
 public:
  struct Value {
    std::uint32_t rank;
    std::int32_t id;
  };
  void reserve(std::size_t n);
  void insert(std::int32_t a, std::int32_t b, Value v);  // a present pair takes the new value
  const Value* find(std::int32_t a, std::int32_t b) const {
    if (slots_.empty()) return nullptr;
    const std::uint64_t key = pack(a, b);
    for (std::size_t i = slot_of(key);; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.key == key) return &s.value;
      if (s.key == kEmpty) return nullptr;
    }
  }
  std::size_t size() const { return size_; }

 private:
  static constexpr std::uint64_t kEmpty = ~0ull;
  struct Slot {
    std::uint64_t key = kEmpty;
    Value value{};
  };
  static std::uint64_t pack(std::int32_t a, std::int32_t b) {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(a)) << 32) | static_cast<std::uint32_t>(b);
  }
  std::size_t slot_of(std::uint64_t key) const { return (key * 0x9E3779B97F4A7C15ull) >> shift_; }
  std::vector<Slot> slots_;
  std::size_t mask_ = 0, size_ = 0;
  int shift_ = 64;
};

struct AddedToken {
  std::string content;
  std::int32_t id = 0;
  bool special = false, lstrip = false, rstrip = false, single_word = false, normalized = false;
};

// Finds added tokens in text: leftmost-longest, non-overlapping (as aho-corasick's
// MatchKind::LeftmostLongest), then the token's single_word / lstrip / rstrip rules as
// tokenizers' AddedVocabulary::find_matches applies them.
class AddedMatcher {
 public:
  // `patterns[i]` is what token `tokens[i]` matches (its content; the loader stores the
  // content of a normalized token in normalized form).
  void build(std::vector<std::string> patterns, std::vector<const AddedToken*> tokens);
  bool empty() const { return tokens_.empty(); }

  struct Split {
    std::size_t begin, end;
    const AddedToken* token;  // nullptr: text between added tokens
  };
  // Appends the pieces of `text` (tokens and the text between them; empty pieces left out).
  void split(std::string_view text, std::vector<Split>& out) const;

 private:
  // The longest pattern starting exactly at `at`; returns its length (0: none).
  std::size_t longest_at(std::string_view text, std::size_t at, std::int32_t& token) const;
  struct Node {
    std::vector<std::pair<unsigned char, std::int32_t>> next;  // sorted by byte
    std::int32_t token = -1;
  };
  std::vector<Node> nodes_;
  std::vector<const AddedToken*> tokens_;
  bool first_[256] = {};
};

// Bounded cache of pre-token bytes -> ids; cleared when full. Not thread-safe by itself.
class EncodeCache {
 public:
  static constexpr std::size_t kMaxKeyBytes = 128;
  static constexpr std::size_t kMaxEntries = 1 << 15;
  bool lookup(std::string_view key, std::uint64_t hash, std::vector<std::int32_t>& out) const;
  void insert(std::string_view key, std::uint64_t hash, std::span<const std::int32_t> ids);

 private:
  struct Entry {
    std::uint64_t hash;
    std::uint32_t key_at, ids_at;
    std::uint16_t key_len, ids_len;
  };
  void clear();
  std::vector<std::uint32_t> slots_;  // entry index + 1
  std::vector<Entry> entries_;
  std::string keys_;
  std::vector<std::int32_t> ids_;
};

enum class SplitBehavior : std::uint8_t { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

struct SplitStep {
  Regex regex;
  SplitBehavior behavior;
  bool invert;
};

enum class IdKind : std::uint8_t { None, Vocab, Added, AddedSpecial };

struct Model {
  std::string source;  // the tokenizer.json path, for messages and name()

  // Ids: the model vocabulary and the added tokens share one id space.
  std::vector<std::string> vocab_tokens;  // vocabulary string per id ("" when none; may be shorter than the id space)
  std::vector<std::string> id_bytes;      // what decode() emits per id (ByteLevel decoder)
  std::vector<IdKind> id_kind;
  std::vector<std::int32_t> id_added;     // index into `added`, or -1
  StringIdMap vocab_map;                  // vocabulary string -> id
  StringIdMap added_map;                  // added token content -> id
  StringIdMap bytes_map;                  // raw bytes -> id, for byte-level vocabulary tokens
  std::int32_t byte_id[256];              // the one-byte token of each byte, or -1
  PairMap merges;
  bool ignore_merges = false;
  std::int32_t unk_id = -1;
  bool fuse_unk = false;

  std::vector<AddedToken> added;
  AddedMatcher raw_added, normalized_added;

  bool nfc = false;                      // normalizer
  std::vector<SplitStep> splits;          // pre-tokenizer, before ByteLevel
  bool prefix_space = false;              // ByteLevel add_prefix_space
  std::optional<Regex> byte_level_regex;  // ByteLevel use_regex: the GPT-2 pattern

  std::optional<std::int32_t> bos, eos;

  mutable std::mutex cache_mutex;
  mutable EncodeCache cache;
};

// The GPT-2 byte <-> printable-code-point table of byte-level BPE.
const std::string& byte_to_unicode(unsigned char b);  // UTF-8 of the code point for byte b
int unicode_to_byte(char32_t cp);                     // -1 when cp stands for no byte

// Bytes a token decodes to: the byte of each code point when all are byte-level code
// points, else the token's own UTF-8 (tokenizers' ByteLevel decoder).
std::string token_bytes(std::string_view token, bool& pure_byte_level);

// Loading (data/tokenizer_bpe_load.cpp).
void load_model(Model& m, std::string_view json_text);
void load_special_names(Model& m, const std::string& tokenizer_config);

}  // namespace crucible::data::bpe_detail
