// data/tokenizer_bpe.cpp: BpeTokenizer: the encode pipeline, the BPE merge loop, decode.
//
// encode: added tokens (raw) -> NFC per piece -> added tokens (normalized) -> Split steps
// -> ByteLevel (prefix space, GPT-2 split) -> BPE per pre-token (cache first). BPE works on
// token ids: each byte starts as its one-byte token and the lowest-ranked adjacent pair
// merges first, the leftmost on ties, as tokenizers' Word::merge_all does with its heap.
// Short words use a linear scan; long ones the heap with a linked list.
// Invariant: same ids as `tokenizers` encode(text, add_special_tokens=False); decode is
// its ByteLevel decoder followed by a lossy UTF-8 conversion (U+FFFD per maximal
// ill-formed subsequence, as Rust's String::from_utf8_lossy).
// Reference: tokenizers/src/models/bpe/{model.rs, word.rs}, tokenizer/mod.rs (decode),
// normalizer.rs (NormalizedString::split behaviors).
#include "data/tokenizer_bpe.h"

#include <fstream>
#include <queue>
#include <sstream>

#include "core/error.h"
#include "data/tokenizer_bpe_model.h"
#include "data/tokenizer_unicode.h"

namespace crucible::data {

using bpe_detail::AddedMatcher;
using bpe_detail::IdKind;
using bpe_detail::Model;
using bpe_detail::SplitBehavior;

namespace {

constexpr std::size_t kHeapMergeThreshold = 48;  // symbols; below it a linear scan is faster
constexpr std::uint32_t kNoRank = 0xFFFFFFFFu;

struct Piece {
  std::size_t begin, end;
  bool is_match;
};

// Working memory of one encode() call.
struct EncodeState {
  RegexScratch scratch;
  std::vector<RegexMatch> matches;
  std::vector<AddedMatcher::Split> raw_splits, norm_splits;
  std::string normalized, prefixed;
  std::vector<std::pair<std::size_t, std::size_t>> spans, next_spans;
  std::vector<Piece> pieces;
  std::vector<std::int32_t> symbols;
  std::vector<bpe_detail::PairMap::Value> pairs;
};

// NormalizedString::split: matches (flagged, inverted if asked) become pieces by behavior.
void split_by_behavior(std::vector<Piece>& p, SplitBehavior b, bool invert,
                       std::vector<std::pair<std::size_t, std::size_t>>& out, std::size_t base) {
  if (invert)
    for (Piece& x : p) x.is_match = !x.is_match;
  auto emit = [&](std::size_t s, std::size_t e) {
    if (e > s) out.push_back({base + s, base + e});
  };
  switch (b) {
    case SplitBehavior::Removed:
      for (const Piece& x : p)
        if (!x.is_match) emit(x.begin, x.end);
      return;
    case SplitBehavior::Isolated:
      for (const Piece& x : p) emit(x.begin, x.end);
      return;
    case SplitBehavior::MergedWithPrevious:
    case SplitBehavior::Contiguous: {
      std::vector<std::pair<std::size_t, std::size_t>> acc;
      bool prev_match = false;
      for (const Piece& x : p) {
        const bool merge = b == SplitBehavior::MergedWithPrevious ? (x.is_match && !prev_match) : (x.is_match == prev_match);
        if (merge && !acc.empty()) acc.back().second = x.end;
        else acc.push_back({x.begin, x.end});
        prev_match = x.is_match;
      }
      for (const auto& [s, e] : acc) emit(s, e);
      return;
    }
    case SplitBehavior::MergedWithNext: {
      std::vector<std::pair<std::size_t, std::size_t>> acc;
      bool prev_match = false;
      for (auto it = p.rbegin(); it != p.rend(); ++it) {
        if (it->is_match && !prev_match && !acc.empty()) acc.back().first = it->begin;
        else acc.push_back({it->begin, it->end});
        prev_match = it->is_match;
      }
      for (auto it = acc.rbegin(); it != acc.rend(); ++it) emit(it->first, it->second);
      return;
    }
  }
}

// Pattern::find_matches: the text as alternating non-match / match pieces.
void matches_to_pieces(const std::vector<RegexMatch>& ms, std::size_t n, std::vector<Piece>& out) {
  out.clear();
  std::size_t prev = 0;
  for (const RegexMatch& m : ms) {
    if (prev != m.begin) out.push_back({prev, m.begin, false});
    out.push_back({m.begin, m.end, true});
    prev = m.end;
  }
  if (prev != n) out.push_back({prev, n, false});
}

class BpeEncoder {
 public:
  BpeEncoder(const Model& m, EncodeState& st, std::vector<std::int32_t>& ids) : m_(m), st_(st), ids_(ids) {}

  void encode(std::string_view text) {
    st_.raw_splits.clear();
    if (m_.raw_added.empty()) st_.raw_splits.push_back({0, text.size(), nullptr});
    else m_.raw_added.split(text, st_.raw_splits);
    for (const AddedMatcher::Split& s : st_.raw_splits) {
      if (s.token) {
        ids_.push_back(s.token->id);
        continue;
      }
      std::string_view seg = text.substr(s.begin, s.end - s.begin);
      if (m_.nfc && !unicode::nfc_quick_check(seg)) {
        st_.normalized.clear();
        unicode::nfc_append(seg, st_.normalized);
        seg = st_.normalized;
      }
      if (m_.normalized_added.empty()) {
        pre_tokenize(seg);
        continue;
      }
      st_.norm_splits.clear();
      m_.normalized_added.split(seg, st_.norm_splits);
      for (const AddedMatcher::Split& t : st_.norm_splits) {
        if (t.token) ids_.push_back(t.token->id);
        else pre_tokenize(seg.substr(t.begin, t.end - t.begin));
      }
    }
  }

 private:
  void pre_tokenize(std::string_view text) {
    if (text.empty()) return;
    auto& spans = st_.spans;
    spans.assign(1, {0, text.size()});
    for (const bpe_detail::SplitStep& step : m_.splits) {
      st_.next_spans.clear();
      for (const auto& [b, e] : spans) {
        const std::string_view sub = text.substr(b, e - b);
        st_.matches.clear();
        step.regex.find_all(sub, st_.matches, st_.scratch);
        matches_to_pieces(st_.matches, sub.size(), st_.pieces);
        split_by_behavior(st_.pieces, step.behavior, step.invert, st_.next_spans, b);
      }
      spans.swap(st_.next_spans);
    }
    for (const auto& [b, e] : spans) byte_level(text.substr(b, e - b));
  }

  void byte_level(std::string_view word) {
    if (m_.prefix_space && word.front() != ' ') {
      st_.prefixed.assign(1, ' ');
      st_.prefixed.append(word);
      word = st_.prefixed;
    }
    if (!m_.byte_level_regex) {
      bpe(word);
      return;
    }
    std::vector<RegexMatch> ms;  // rare configuration (GPT-2 style): no reuse needed
    m_.byte_level_regex->find_all(word, ms, st_.scratch);
    std::vector<Piece> pieces;
    matches_to_pieces(ms, word.size(), pieces);
    for (const Piece& p : pieces)
      if (p.end > p.begin) bpe(word.substr(p.begin, p.end - p.begin));
  }

  void bpe(std::string_view word) {
    if (m_.ignore_merges) {  // a whole pre-token in the vocabulary is one token
      if (auto id = m_.bytes_map.find(word)) {
        ids_.push_back(*id);
        return;
      }
    }
    const bool cacheable = word.size() <= bpe_detail::EncodeCache::kMaxKeyBytes;
    std::uint64_t h = 0;
    if (cacheable) {
      h = bpe_detail::hash_bytes(word);
      std::unique_lock<std::mutex> lock(m_.cache_mutex, std::try_to_lock);  // busy: compute instead
      if (lock.owns_lock() && m_.cache.lookup(word, h, ids_)) return;
    }
    const std::size_t first = ids_.size();
    merge_word(word);
    if (cacheable) {
      std::unique_lock<std::mutex> lock(m_.cache_mutex, std::try_to_lock);
      if (lock.owns_lock())
        m_.cache.insert(word, h, std::span<const std::int32_t>(ids_.data() + first, ids_.size() - first));
    }
  }

  // The initial symbols: one per byte (tokenizers' merge_word over the byte-level chars;
  // a byte with no token becomes unk, fused if asked, or is dropped without an unk).
  void initial_symbols(std::string_view word) {
    auto& sym = st_.symbols;
    sym.clear();
    bool last_unk = false;
    for (unsigned char b : word) {
      const std::int32_t id = m_.byte_id[b];
      if (id >= 0) {
        sym.push_back(id);
        last_unk = false;
      } else if (m_.unk_id >= 0) {
        if (!(m_.fuse_unk && last_unk)) sym.push_back(m_.unk_id);
        last_unk = true;
      }
    }
  }

  bpe_detail::PairMap::Value pair_value(std::int32_t a, std::int32_t b) const {
    const auto* v = m_.merges.find(a, b);
    return v ? *v : bpe_detail::PairMap::Value{kNoRank, -1};
  }

  void merge_word(std::string_view word) {
    initial_symbols(word);
    auto& sym = st_.symbols;
    if (sym.size() >= kHeapMergeThreshold) {
      merge_with_heap();
      return;
    }
    auto& pairs = st_.pairs;  // pairs[i]: the merge of sym[i] and sym[i + 1]
    pairs.clear();
    for (std::size_t i = 0; i + 1 < sym.size(); ++i) pairs.push_back(pair_value(sym[i], sym[i + 1]));
    while (!pairs.empty()) {
      std::size_t best = 0;
      for (std::size_t i = 1; i < pairs.size(); ++i)
        if (pairs[i].rank < pairs[best].rank) best = i;
      if (pairs[best].rank == kNoRank) break;
      sym[best] = pairs[best].id;
      sym.erase(sym.begin() + static_cast<std::ptrdiff_t>(best) + 1);
      pairs.erase(pairs.begin() + static_cast<std::ptrdiff_t>(best));
      if (best > 0) pairs[best - 1] = pair_value(sym[best - 1], sym[best]);
      if (best < pairs.size()) pairs[best] = pair_value(sym[best], sym[best + 1]);
    }
    ids_.insert(ids_.end(), sym.begin(), sym.end());
  }

  // tokenizers' Word::merge_all: a min-heap on (rank, position) over a linked list.
  void merge_with_heap() {
    const auto& sym = st_.symbols;
    const std::size_t n = sym.size();
    std::vector<std::int32_t> id(sym.begin(), sym.end()), prev(n), next(n);
    std::vector<bool> alive(n, true);
    for (std::size_t i = 0; i < n; ++i) {
      prev[i] = static_cast<std::int32_t>(i) - 1;
      next[i] = i + 1 < n ? static_cast<std::int32_t>(i + 1) : -1;
    }
    struct Entry {
      std::uint32_t rank;
      std::int32_t pos, new_id;
      bool operator>(const Entry& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
    };
    std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> heap;
    auto push = [&](std::int32_t pos) {
      const std::int32_t nx = next[static_cast<std::size_t>(pos)];
      if (nx < 0) return;
      const auto v = pair_value(id[static_cast<std::size_t>(pos)], id[static_cast<std::size_t>(nx)]);
      if (v.rank != kNoRank) heap.push({v.rank, pos, v.id});
    };
    for (std::size_t i = 0; i + 1 < n; ++i) push(static_cast<std::int32_t>(i));
    while (!heap.empty()) {
      const Entry top = heap.top();
      heap.pop();
      const auto pos = static_cast<std::size_t>(top.pos);
      if (!alive[pos] || next[pos] < 0) continue;
      const auto nx = static_cast<std::size_t>(next[pos]);
      const auto v = pair_value(id[pos], id[nx]);
      if (v.rank == kNoRank || v.id != top.new_id) continue;  // stale: the pair changed
      id[pos] = top.new_id;
      alive[nx] = false;
      next[pos] = next[nx];
      if (next[nx] >= 0) prev[static_cast<std::size_t>(next[nx])] = top.pos;
      if (prev[pos] >= 0) push(prev[pos]);
      push(top.pos);
    }
    for (std::int32_t i = 0; i >= 0; i = next[static_cast<std::size_t>(i)]) ids_.push_back(id[static_cast<std::size_t>(i)]);
  }

  const Model& m_;
  EncodeState& st_;
  std::vector<std::int32_t>& ids_;
};

}  // namespace

BpeTokenizer::BpeTokenizer(std::unique_ptr<Model> m) : m_(std::move(m)) {}
BpeTokenizer::~BpeTokenizer() = default;

std::unique_ptr<BpeTokenizer> BpeTokenizer::from_json_text(std::string_view text, const std::string& source) {
  auto m = std::make_unique<Model>();
  m->source = source;
  bpe_detail::load_model(*m, text);
  return std::unique_ptr<BpeTokenizer>(new BpeTokenizer(std::move(m)));
}

std::unique_ptr<BpeTokenizer> BpeTokenizer::load(const std::string& tokenizer_json, const std::string& tokenizer_config) {
  std::ifstream in(tokenizer_json, std::ios::binary);
  CRUCIBLE_USER_CHECK(in.good(), "cannot open tokenizer file '", tokenizer_json, "'");
  std::ostringstream buf;
  buf << in.rdbuf();
  CRUCIBLE_USER_CHECK(!in.bad(), "cannot read tokenizer file '", tokenizer_json, "'");
  auto tok = from_json_text(buf.str(), tokenizer_json);
  if (!tokenizer_config.empty()) bpe_detail::load_special_names(*tok->m_, tokenizer_config);
  return tok;
}

std::vector<std::int32_t> BpeTokenizer::encode(std::string_view text) const {
  const std::size_t bad = unicode::utf8_invalid_at(text);
  CRUCIBLE_USER_CHECK(bad == std::string_view::npos, "tokenizer encode: the text is not valid UTF-8 (byte ", bad,
                      " of ", text.size(), ")");
  std::vector<std::int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  EncodeState st;
  BpeEncoder(*m_, st, ids).encode(text);
  return ids;
}

std::string BpeTokenizer::decode(std::span<const std::int32_t> ids, bool skip_special) const {
  std::string bytes;
  const auto n = static_cast<std::int64_t>(m_->id_kind.size());
  for (std::int32_t id : ids) {
    if (id < 0 || id >= n) continue;  // no such token: skipped, as tokenizers does
    const IdKind k = m_->id_kind[static_cast<std::size_t>(id)];
    if (k == IdKind::None || (skip_special && k == IdKind::AddedSpecial)) continue;
    bytes += m_->id_bytes[static_cast<std::size_t>(id)];
  }
  return unicode::utf8_lossy(std::move(bytes));
}

std::int64_t BpeTokenizer::vocab_size() const { return static_cast<std::int64_t>(m_->id_kind.size()); }

std::optional<std::int32_t> BpeTokenizer::token_id(std::string_view token) const {
  if (auto id = m_->added_map.find(token)) return id;
  return m_->vocab_map.find(token);
}

std::string BpeTokenizer::token_text(std::int32_t id) const {
  CRUCIBLE_USER_CHECK(id >= 0 && id < vocab_size() && m_->id_kind[static_cast<std::size_t>(id)] != IdKind::None,
                      "token id ", id, " names no token of ", m_->source);
  const std::int32_t a = m_->id_added[static_cast<std::size_t>(id)];
  return a >= 0 ? m_->added[static_cast<std::size_t>(a)].content : m_->vocab_tokens[static_cast<std::size_t>(id)];
}

std::optional<std::int32_t> BpeTokenizer::bos_id() const { return m_->bos; }
std::optional<std::int32_t> BpeTokenizer::eos_id() const { return m_->eos; }

bool BpeTokenizer::is_special(std::int32_t id) const {
  return id >= 0 && id < vocab_size() && m_->id_kind[static_cast<std::size_t>(id)] == IdKind::AddedSpecial;
}

std::string BpeTokenizer::name() const { return "bpe:" + m_->source; }

}  // namespace crucible::data
