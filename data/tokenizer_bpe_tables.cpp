// data/tokenizer_bpe_tables.cpp: the lookup structures of the BPE tokenizer: string and
// pair hash maps, the added-token matcher and the bounded encode cache.
//
// Invariant: StringIdMap/PairMap answer exactly what a std::unordered_map would (open
// addressing, load <= 1/2); AddedMatcher::split() reproduces tokenizers'
// AddedVocabulary::find_matches (leftmost-longest, then single_word / lstrip / rstrip).
// Reference: tokenizers/src/tokenizer/added_vocabulary.rs; aho-corasick MatchKind docs.
#include <algorithm>
#include <cstring>

#include "data/regex_program.h"
#include "data/tokenizer_bpe_model.h"
#include "data/tokenizer_unicode.h"

namespace crucible::data::bpe_detail {

std::uint64_t hash_bytes(std::string_view s) {
  constexpr std::uint64_t kMul = 0x9FB21C651E98DF25ull;
  std::uint64_t h = 0x9E3779B97F4A7C15ull ^ (s.size() * 0xFF51AFD7ED558CCDull);
  const char* p = s.data();
  std::size_t n = s.size();
  while (n >= 8) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    h = (h ^ w) * kMul;
    h ^= h >> 29;
    p += 8;
    n -= 8;
  }
  if (n > 0) {
    std::uint64_t w = 0;
    std::memcpy(&w, p, n);
    h = (h ^ w) * kMul;
    h ^= h >> 29;
  }
  h *= kMul;
  return h ^ (h >> 32);
}

// ---- StringIdMap ----

void StringIdMap::reserve(std::size_t n) {
  entries_.reserve(n);
  std::size_t slots = 16;
  while (slots < 2 * n) slots <<= 1;
  if (slots > slots_.size()) rehash(slots);
}

void StringIdMap::rehash(std::size_t slots) {
  slots_.assign(slots, 0);
  mask_ = slots - 1;
  for (std::size_t e = 0; e < entries_.size(); ++e) {
    std::size_t i = entries_[e].hash & mask_;
    while (slots_[i] != 0) i = (i + 1) & mask_;
    slots_[i] = static_cast<std::uint32_t>(e + 1);
  }
}

void StringIdMap::insert(std::string_view key, std::int32_t id) {
  if (2 * (entries_.size() + 1) > slots_.size()) rehash(std::max<std::size_t>(16, slots_.size() * 2));
  const std::uint64_t h = hash_bytes(key);
  std::size_t i = h & mask_;
  for (; slots_[i] != 0; i = (i + 1) & mask_) {
    Entry& e = entries_[slots_[i] - 1];
    if (e.hash == h && e.key == key) {
      e.id = id;
      return;
    }
  }
  entries_.push_back({key, h, id});
  slots_[i] = static_cast<std::uint32_t>(entries_.size());
}

std::optional<std::int32_t> StringIdMap::find(std::string_view key) const {
  if (slots_.empty()) return std::nullopt;
  const std::uint64_t h = hash_bytes(key);
  for (std::size_t i = h & mask_; slots_[i] != 0; i = (i + 1) & mask_) {
    const Entry& e = entries_[slots_[i] - 1];
    if (e.hash == h && e.key == key) return e.id;
  }
  return std::nullopt;
}

// ---- PairMap ----

void PairMap::reserve(std::size_t n) {
  std::size_t slots = 16;
  int bits = 4;
  while (slots < 2 * n) slots <<= 1, ++bits;
  slots_.assign(slots, Slot{});
  mask_ = slots - 1;
  shift_ = 64 - bits;
  size_ = 0;
}

void PairMap::insert(std::int32_t a, std::int32_t b, Value v) {
  if (2 * (size_ + 1) > slots_.size()) {
    std::vector<Slot> old = std::move(slots_);
    reserve(std::max<std::size_t>(16, old.size()));  // doubles: reserve() sizes for 2n
    for (const Slot& s : old)
      if (s.key != kEmpty) insert(static_cast<std::int32_t>(s.key >> 32), static_cast<std::int32_t>(s.key & 0xFFFFFFFFu), s.value);
  }
  const std::uint64_t key = pack(a, b);
  std::size_t i = slot_of(key);
  for (; slots_[i].key != kEmpty; i = (i + 1) & mask_) {
    if (slots_[i].key == key) {
      slots_[i].value = v;  // tokenizers builds a HashMap: a repeated pair keeps the last rank
      return;
    }
  }
  slots_[i] = {key, v};
  ++size_;
}

// ---- AddedMatcher ----

void AddedMatcher::build(std::vector<std::string> patterns, std::vector<const AddedToken*> tokens) {
  nodes_.assign(1, Node{});
  tokens_ = std::move(tokens);
  std::fill(std::begin(first_), std::end(first_), false);
  for (std::size_t t = 0; t < patterns.size(); ++t) {
    const std::string& p = patterns[t];
    if (p.empty()) continue;
    first_[static_cast<unsigned char>(p[0])] = true;
    std::int32_t node = 0;
    for (unsigned char c : p) {
      auto& next = nodes_[node].next;
      auto it = std::lower_bound(next.begin(), next.end(), std::make_pair(c, std::int32_t{-1}));
      if (it != next.end() && it->first == c) {
        node = it->second;
      } else {
        const auto child = static_cast<std::int32_t>(nodes_.size());
        next.insert(it, {c, child});
        nodes_.push_back(Node{});
        node = child;
      }
    }
    if (nodes_[node].token < 0) nodes_[node].token = static_cast<std::int32_t>(t);  // first of equals wins
  }
}

std::size_t AddedMatcher::longest_at(std::string_view text, std::size_t at, std::int32_t& token) const {
  std::int32_t node = 0;
  std::size_t best = 0;
  for (std::size_t i = at; i < text.size(); ++i) {
    const auto& next = nodes_[node].next;
    const unsigned char c = static_cast<unsigned char>(text[i]);
    auto it = std::lower_bound(next.begin(), next.end(), std::make_pair(c, std::int32_t{-1}));
    if (it == next.end() || it->first != c) break;
    node = it->second;
    if (nodes_[node].token >= 0) {
      best = i + 1 - at;
      token = nodes_[node].token;
    }
  }
  return best;
}

namespace {

bool is_word_at_end(std::string_view s) {  // tokenizers: regex \w$
  if (s.empty()) return false;
  const auto* b = reinterpret_cast<const unsigned char*>(s.data());
  return regex_detail::is_word_char(unicode::utf8_decode_before(b, b + s.size()));
}

bool is_word_at_start(std::string_view s) {  // tokenizers: regex ^\w
  if (s.empty()) return false;
  char32_t cp;
  unicode::utf8_decode(reinterpret_cast<const unsigned char*>(s.data()), cp);
  return regex_detail::is_word_char(cp);
}

}  // namespace

void AddedMatcher::split(std::string_view text, std::vector<Split>& out) const {
  const std::size_t n = text.size();
  if (n == 0) return;
  std::size_t start_offset = 0, pos = 0;
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  while (!tokens_.empty() && pos < n) {
    std::size_t len = 0;
    std::int32_t t = -1;
    std::size_t at = pos;
    for (; at < n; ++at)
      if (first_[s[at]] && (len = longest_at(text, at, t)) > 0) break;
    if (len == 0) break;
    const AddedToken& tok = *tokens_[static_cast<std::size_t>(t)];
    std::size_t start = at, stop = at + len;
    pos = stop;  // the search goes on after the match, used or not
    if (tok.single_word) {
      const bool start_space = start == 0 || !is_word_at_end(text.substr(0, start));
      const bool stop_space = stop == n || !is_word_at_start(text.substr(stop));
      if (!start_space || !stop_space) continue;
    }
    if (tok.lstrip) {  // take the whitespace before it, down to the previous piece
      std::size_t b = start;
      while (b > 0) {
        std::size_t q = b - 1;
        while (q > 0 && (s[q] & 0xC0) == 0x80) --q;
        char32_t cp;
        unicode::utf8_decode(s + q, cp);
        if (!unicode::is_space(cp)) break;
        b = q;
      }
      start = std::max(b, start_offset);
    }
    if (tok.rstrip) {  // and the whitespace after it
      while (stop < n) {
        char32_t cp;
        const int l = unicode::utf8_decode(s + stop, cp);
        if (!unicode::is_space(cp)) break;
        stop += static_cast<std::size_t>(l);
      }
      pos = stop;  // NOTE: tokenizers would search again inside the stripped spaces; no real token starts with one
    }
    if (start_offset < start) out.push_back({start_offset, start, nullptr});
    out.push_back({start, stop, &tok});
    start_offset = stop;
  }
  if (start_offset < n) out.push_back({start_offset, n, nullptr});
}

// ---- EncodeCache ----

void EncodeCache::clear() {
  std::fill(slots_.begin(), slots_.end(), 0u);
  entries_.clear();
  keys_.clear();
  ids_.clear();
}

bool EncodeCache::lookup(std::string_view key, std::uint64_t hash, std::vector<std::int32_t>& out) const {
  if (slots_.empty()) return false;
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = hash & mask; slots_[i] != 0; i = (i + 1) & mask) {
    const Entry& e = entries_[slots_[i] - 1];
    if (e.hash == hash && e.key_len == key.size() && std::memcmp(keys_.data() + e.key_at, key.data(), key.size()) == 0) {
      out.insert(out.end(), ids_.begin() + e.ids_at, ids_.begin() + e.ids_at + e.ids_len);
      return true;
    }
  }
  return false;
}

void EncodeCache::insert(std::string_view key, std::uint64_t hash, std::span<const std::int32_t> ids) {
  if (key.size() > kMaxKeyBytes || ids.size() > 0xFFFF) return;
  if (slots_.empty()) slots_.assign(2 * kMaxEntries, 0u);
  if (entries_.size() >= kMaxEntries) clear();  // simplest bound: start over
  const std::size_t mask = slots_.size() - 1;
  std::size_t i = hash & mask;
  for (; slots_[i] != 0; i = (i + 1) & mask) {
    const Entry& e = entries_[slots_[i] - 1];
    if (e.hash == hash && e.key_len == key.size() && std::memcmp(keys_.data() + e.key_at, key.data(), key.size()) == 0)
      return;  // another thread put it there first
  }
  entries_.push_back({hash, static_cast<std::uint32_t>(keys_.size()), static_cast<std::uint32_t>(ids_.size()),
                      static_cast<std::uint16_t>(key.size()), static_cast<std::uint16_t>(ids.size())});
  keys_.append(key);
  ids_.insert(ids_.end(), ids.begin(), ids.end());
  slots_[i] = static_cast<std::uint32_t>(entries_.size());
}

}  // namespace crucible::data::bpe_detail
