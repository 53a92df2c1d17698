// data/tokenizer_bpe_load.cpp: tokenizer.json (+ tokenizer_config.json) -> bpe_detail::Model.
//
// Reads the document once with core/json and builds hash maps for the vocabulary, the
// byte-level token bytes and the merges (json objects look keys up linearly). Every
// problem is an Error "<file>: <json path> (line N): <what>"; every field the file may
// carry is either understood or rejected by name, never silently ignored when it would
// change the ids (truncation, padding, dropout, byte_fallback, other normalizers ...).
// Invariant: ids, added-token ids and merge ranks are exactly those `tokenizers` derives
// from the same file (added tokens get ids by its assignment rule, whatever the file says).
// Reference: tokenizers/src/models/bpe/serialization.rs, tokenizer/serialization.rs,
// tokenizer/added_vocabulary.rs (add_tokens), checkpoint_formats.md §3.
#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>

#include "core/error.h"
#include "core/json.h"
#include "core/log.h"
#include "data/tokenizer_bpe_model.h"
#include "data/tokenizer_unicode.h"

namespace crucible::data::bpe_detail {

namespace {

constexpr std::int64_t kMaxId = (1 << 24) - 1;  // 16.7M ids: far above any real vocabulary

// GPT-2 bytes_to_unicode: printable bytes stand for themselves, the others for 256 + n.
struct ByteTable {
  std::string text[256];
  int byte_of[512];  // code point (< 512) -> byte, or -1
  ByteTable() {
    std::fill(std::begin(byte_of), std::end(byte_of), -1);
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      const char32_t cp = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + n++);
      unicode::utf8_append(text[b], cp);
      byte_of[cp] = b;
    }
  }
};
const ByteTable& byte_table() {
  static const ByteTable t;
  return t;
}

// Path-aware accessors: errors name the file, the JSON path and the line.
class Reader {
 public:
  explicit Reader(const std::string& source) : source_(source) {}

  [[noreturn]] void fail(const std::string& path, const json::Value* at, const std::string& what) const {
    std::string where = path;
    if (at && at->line() > 0) where += " (line " + std::to_string(at->line()) + ")";
    ::crucible::fail(::crucible::detail::concat(source_, ": ", where, ": ", what), __FILE__, __LINE__);
  }
  const json::Object& object(const json::Value& v, const std::string& path) const {
    if (!v.is_object()) fail(path, &v, "expected an object, found " + std::string(json::kind_name(v.kind())));
    return v.as_object();
  }
  const json::Array& array(const json::Value& v, const std::string& path) const {
    if (!v.is_array()) fail(path, &v, "expected an array, found " + std::string(json::kind_name(v.kind())));
    return v.as_array();
  }
  const std::string& string(const json::Value& v, const std::string& path) const {
    if (!v.is_string()) fail(path, &v, "expected a string, found " + std::string(json::kind_name(v.kind())));
    return v.as_string();
  }
  bool boolean(const json::Value& v, const std::string& path) const {
    if (!v.is_bool()) fail(path, &v, "expected true or false, found " + std::string(json::kind_name(v.kind())));
    return v.as_bool();
  }
  std::int64_t id(const json::Value& v, const std::string& path) const {
    if (!v.is_integer() || v.as_int64() < 0 || v.as_int64() > kMaxId)
      fail(path, &v, "expected a token id (an integer 0.." + std::to_string(kMaxId) + ")");
    return v.as_int64();
  }
  const json::Value& member(const json::Value& obj, std::string_view key, const std::string& path) const {
    object(obj, path);
    const json::Value* v = obj.find(key);
    if (!v) fail(path, &obj, "missing key '" + std::string(key) + "'");
    return *v;
  }
  // Optional bool: missing or null gives `dflt`.
  bool flag(const json::Value& obj, std::string_view key, const std::string& path, bool dflt) const {
    const json::Value* v = obj.find(key);
    if (!v || v->is_null()) return dflt;
    return boolean(*v, path + "." + std::string(key));
  }
  std::string type_of(const json::Value& obj, const std::string& path) const {
    return string(member(obj, "type", path), path + ".type");
  }

 private:
  const std::string& source_;
};

void load_vocab(Model& m, const Reader& r, const json::Value& model) {
  const json::Object& vocab = r.object(r.member(model, "vocab", "model"), "model.vocab");
  std::int64_t max_id = -1;
  for (const auto& [tok, v] : vocab) max_id = std::max(max_id, r.id(v, "model.vocab[\"" + tok + "\"]"));
  // Ids index dense tables; real vocabularies number their tokens 0..n-1.
  if (max_id >= 2 * static_cast<std::int64_t>(vocab.size()) + 1024)
    r.fail("model.vocab", &r.member(model, "vocab", "model"),
           "ids are too sparse (largest id " + std::to_string(max_id) + " for " + std::to_string(vocab.size()) + " tokens)");
  m.vocab_tokens.assign(static_cast<std::size_t>(max_id + 1), std::string());
  std::vector<bool> used(static_cast<std::size_t>(max_id + 1), false);
  for (const auto& [tok, v] : vocab) {
    const std::size_t id = static_cast<std::size_t>(v.as_int64());
    if (used[id]) r.fail("model.vocab[\"" + tok + "\"]", &v, "id " + std::to_string(id) + " is given to two tokens");
    used[id] = true;
    m.vocab_tokens[id] = tok;
  }
}

void load_merges(Model& m, const Reader& r, const json::Value& model) {
  const json::Array& merges = r.array(r.member(model, "merges", "model"), "model.merges");
  m.merges.reserve(merges.size());
  std::string joined;
  std::uint32_t rank = 0;
  for (std::size_t i = 0; i < merges.size(); ++i) {
    const std::string path = "model.merges[" + std::to_string(i) + "]";
    const json::Value& e = merges[i];
    std::string_view a, b;
    if (e.is_string()) {  // legacy "a b" (a "#version" line is skipped, as tokenizers does)
      const std::string& s = e.as_string();
      if (s.rfind("#version", 0) == 0) continue;
      const std::size_t sp = s.find(' ');
      if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
        r.fail(path, &e, "a merge string must be two tokens separated by one space");
      a = std::string_view(s).substr(0, sp);
      b = std::string_view(s).substr(sp + 1);
    } else if (e.is_array()) {
      const json::Array& pair = e.as_array();
      if (pair.size() != 2) r.fail(path, &e, "a merge pair must have two tokens");
      a = r.string(pair[0], path + "[0]");
      b = r.string(pair[1], path + "[1]");
    } else {
      r.fail(path, &e, "expected a merge (\"a b\" or [\"a\", \"b\"])");
    }
    const auto ia = m.vocab_map.find(a), ib = m.vocab_map.find(b);
    if (!ia) r.fail(path, &e, "token '" + std::string(a) + "' is not in model.vocab");
    if (!ib) r.fail(path, &e, "token '" + std::string(b) + "' is not in model.vocab");
    joined.assign(a);
    joined.append(b);
    const auto merged = m.vocab_map.find(joined);
    if (!merged) r.fail(path, &e, "the merged token '" + joined + "' is not in model.vocab");
    m.merges.insert(*ia, *ib, {rank++, *merged});
  }
}

void load_model_section(Model& m, const Reader& r, const json::Value& root) {
  const json::Value& model = r.member(root, "model", "<root>");
  r.object(model, "model");
  if (const json::Value* t = model.find("type")) {
    const std::string& type = r.string(*t, "model.type");
    if (type != "BPE") r.fail("model.type", t, "'" + type + "' is not supported (only BPE)");
  }
  if (const json::Value* d = model.find("dropout"); d && !d->is_null()) {
    if (!d->is_number() || d->as_double() != 0.0) r.fail("model.dropout", d, "BPE dropout is not supported");
  }
  if (r.flag(model, "byte_fallback", "model", false))
    r.fail("model.byte_fallback", model.find("byte_fallback"), "byte_fallback is not supported");
  for (const char* affix : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const json::Value* v = model.find(affix);
    if (v && !v->is_null() && !r.string(*v, std::string("model.") + affix).empty())
      r.fail(std::string("model.") + affix, v, "a non-empty subword affix is not supported");
  }
  m.ignore_merges = r.flag(model, "ignore_merges", "model", false);
  m.fuse_unk = r.flag(model, "fuse_unk", "model", false);
  load_vocab(m, r, model);
  m.vocab_map.reserve(m.vocab_tokens.size());
  for (std::size_t id = 0; id < m.vocab_tokens.size(); ++id)
    if (!m.vocab_tokens[id].empty()) m.vocab_map.insert(m.vocab_tokens[id], static_cast<std::int32_t>(id));
  if (const json::Value* u = model.find("unk_token"); u && !u->is_null()) {
    const std::string& unk = r.string(*u, "model.unk_token");
    const auto id = m.vocab_map.find(unk);
    if (!id) r.fail("model.unk_token", u, "'" + unk + "' is not in model.vocab");
    m.unk_id = *id;
  }
  load_merges(m, r, model);
}

void load_added_tokens(Model& m, const Reader& r, const json::Value& root) {
  const json::Value* list = root.find("added_tokens");
  if (!list || list->is_null()) return;
  const json::Array& arr = r.array(*list, "added_tokens");
  m.added.reserve(arr.size());  // no reallocation: added_map keeps views of the contents
  std::int64_t max_added = -1;
  int moved = 0;
  std::string first_moved;
  for (std::size_t i = 0; i < arr.size(); ++i) {
    const std::string path = "added_tokens[" + std::to_string(i) + "]";
    const json::Value& e = arr[i];
    r.object(e, path);
    AddedToken t;
    t.content = r.string(r.member(e, "content", path), path + ".content");
    const std::int64_t id = r.id(r.member(e, "id", path), path + ".id");
    t.special = r.flag(e, "special", path, false);
    t.lstrip = r.flag(e, "lstrip", path, false);
    t.rstrip = r.flag(e, "rstrip", path, false);
    t.single_word = r.flag(e, "single_word", path, false);
    t.normalized = r.flag(e, "normalized", path, true);
    if (t.content.empty()) continue;  // tokenizers ignores empty added tokens
    if (t.normalized && m.nfc && !unicode::nfc_quick_check(t.content)) {
      std::string n;  // a normalized token is stored (and decodes) in its normalized form
      unicode::nfc_append(t.content, n);
      t.content = std::move(n);
    }
    // tokenizers assigns the id itself: an existing added or vocabulary token keeps its id,
    // a new one gets the next id after the vocabulary; the id in the file is only compared
    // (a warning), and so it is here.
    std::int64_t expect;
    if (std::optional<std::int32_t> prev = m.added_map.find(t.content)) {
      expect = *prev;
    } else if (std::optional<std::int32_t> v = m.vocab_map.find(t.content)) {
      expect = *v;
    } else {
      const std::int64_t n = m.vocab_map.size();
      expect = max_added < 0 ? n : (max_added >= n || n == 0 ? max_added + 1 : n);
    }
    if (id != expect && moved++ == 0)
      first_moved = detail::concat(path, ".id: '", t.content, "' has id ", id, " in the file, ", expect, " here");
    if (expect > kMaxId) r.fail(path + ".id", &e, "too many added tokens");
    t.id = static_cast<std::int32_t>(expect);
    max_added = std::max(max_added, expect);
    if (m.added_map.find(t.content)) {
      // the same content again: the later entry's flags win, as tokenizers overwrites it
      for (AddedToken& old : m.added)
        if (old.content == t.content) {
          old.special = t.special, old.lstrip = t.lstrip, old.rstrip = t.rstrip;
          old.single_word = t.single_word, old.normalized = t.normalized;
        }
      continue;
    }
    m.added.push_back(std::move(t));
    m.added_map.insert(m.added.back().content, m.added.back().id);
  }
  if (moved > 0 && log_enabled(LogLevel::Warn))
    log_line(LogLevel::Warn, detail::concat(m.source, ": ", moved, " added token(s) get other ids than the file gives, as in "
                                            "Hugging Face tokenizers (first: ", first_moved, ")"));
}

bool load_normalizer(const Reader& r, const json::Value& n, const std::string& path) {
  if (n.is_null()) return false;
  const std::string type = r.type_of(n, path);
  if (type == "NFC") return true;
  if (type == "Sequence") {
    const json::Array& list = r.array(r.member(n, "normalizers", path), path + ".normalizers");
    bool nfc = false;
    for (std::size_t i = 0; i < list.size(); ++i)
      nfc |= load_normalizer(r, list[i], path + ".normalizers[" + std::to_string(i) + "]");
    return nfc;
  }
  r.fail(path + ".type", &n, "normalizer '" + type + "' is not supported (supported: NFC, Sequence)");
}

void flatten_pre_tokenizers(const Reader& r, const json::Value& p, const std::string& path,
                            std::vector<std::pair<const json::Value*, std::string>>& out) {
  if (r.type_of(p, path) == "Sequence") {
    const json::Array& list = r.array(r.member(p, "pretokenizers", path), path + ".pretokenizers");
    for (std::size_t i = 0; i < list.size(); ++i)
      flatten_pre_tokenizers(r, list[i], path + ".pretokenizers[" + std::to_string(i) + "]", out);
  } else {
    out.push_back({&p, path});
  }
}

void load_pre_tokenizer(Model& m, const Reader& r, const json::Value& root) {
  const json::Value* p = root.find("pre_tokenizer");
  if (!p || p->is_null())
    r.fail("pre_tokenizer", p, "a byte-level BPE needs a ByteLevel pre_tokenizer (found none)");
  std::vector<std::pair<const json::Value*, std::string>> steps;
  flatten_pre_tokenizers(r, *p, "pre_tokenizer", steps);
  for (std::size_t i = 0; i < steps.size(); ++i) {
    const json::Value& s = *steps[i].first;
    const std::string& path = steps[i].second;
    const std::string type = r.type_of(s, path);
    const bool last = i + 1 == steps.size();
    if (type == "ByteLevel") {
      if (!last) r.fail(path, &s, "ByteLevel must be the last pre-tokenizer");
      m.prefix_space = r.boolean(r.member(s, "add_prefix_space", path), path + ".add_prefix_space");
      r.boolean(r.member(s, "trim_offsets", path), path + ".trim_offsets");  // offsets only
      if (r.flag(s, "use_regex", path, true))
        m.byte_level_regex.emplace(
            R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)");
    } else if (type == "Split") {
      if (last) r.fail(path, &s, "a byte-level BPE needs ByteLevel as the last pre-tokenizer");
      const json::Value& pat = r.member(s, "pattern", path);
      r.object(pat, path + ".pattern");
      const std::string behavior = r.string(r.member(s, "behavior", path), path + ".behavior");
      const bool invert = r.boolean(r.member(s, "invert", path), path + ".invert");
      SplitBehavior b;
      if (behavior == "Removed") b = SplitBehavior::Removed;
      else if (behavior == "Isolated") b = SplitBehavior::Isolated;
      else if (behavior == "MergedWithPrevious") b = SplitBehavior::MergedWithPrevious;
      else if (behavior == "MergedWithNext") b = SplitBehavior::MergedWithNext;
      else if (behavior == "Contiguous") b = SplitBehavior::Contiguous;
      else r.fail(path + ".behavior", &s, "unknown split behavior '" + behavior + "'");
      const json::Value* re = pat.find("Regex");
      const json::Value* lit = pat.find("String");
      if (!re == !lit || pat.size() != 1) r.fail(path + ".pattern", &pat, "expected {\"Regex\": ...} or {\"String\": ...}");
      try {
        m.splits.push_back({re ? Regex(r.string(*re, path + ".pattern.Regex"))
                               : Regex::literal(r.string(*lit, path + ".pattern.String")),
                            b, invert});
      } catch (const Error& e) {
        r.fail(path + ".pattern", &pat, e.what());
      }
    } else {
      r.fail(path + ".type", &s, "pre-tokenizer '" + type + "' is not supported (supported: Sequence, Split, ByteLevel)");
    }
  }
}

void load_decoder(const Reader& r, const json::Value& root) {
  const json::Value* d = root.find("decoder");
  if (!d || d->is_null()) r.fail("decoder", d, "a byte-level BPE needs the ByteLevel decoder (found none)");
  const std::string type = r.type_of(*d, "decoder");
  if (type != "ByteLevel") r.fail("decoder.type", d, "decoder '" + type + "' is not supported (only ByteLevel)");
}

// Fills the per-id tables once the vocabulary and the added tokens are known.
void build_id_tables(Model& m) {
  std::int64_t n = static_cast<std::int64_t>(m.vocab_tokens.size());
  for (const AddedToken& t : m.added) n = std::max<std::int64_t>(n, t.id + 1);
  // vocab_tokens keeps its size: vocab_map holds views of its strings.
  m.id_bytes.assign(static_cast<std::size_t>(n), std::string());
  m.id_kind.assign(static_cast<std::size_t>(n), IdKind::None);
  m.id_added.assign(static_cast<std::size_t>(n), -1);
  std::vector<bool> pure(static_cast<std::size_t>(n), false);
  for (std::size_t id = 0; id < m.vocab_tokens.size(); ++id) {
    if (m.vocab_tokens[id].empty()) continue;
    bool is_pure;
    m.id_bytes[id] = token_bytes(m.vocab_tokens[id], is_pure);
    m.id_kind[id] = IdKind::Vocab;
    pure[id] = is_pure;
  }
  for (std::size_t i = 0; i < m.added.size(); ++i) {
    const AddedToken& t = m.added[i];
    bool is_pure;
    m.id_bytes[t.id] = token_bytes(t.content, is_pure);
    m.id_kind[t.id] = t.special ? IdKind::AddedSpecial : IdKind::Added;
    m.id_added[t.id] = static_cast<std::int32_t>(i);
  }
  m.bytes_map.reserve(m.vocab_map.size());
  for (std::size_t id = 0; id < m.vocab_tokens.size(); ++id)
    if (pure[id] && !m.vocab_tokens[id].empty()) m.bytes_map.insert(m.id_bytes[id], static_cast<std::int32_t>(id));
  for (int b = 0; b < 256; ++b) {
    const auto id = m.vocab_map.find(byte_table().text[b]);
    m.byte_id[b] = id ? *id : -1;
  }
}

void build_added_matchers(Model& m) {
  std::vector<std::string> raw_patterns, norm_patterns;
  std::vector<const AddedToken*> raw_tokens, norm_tokens;
  // Special tokens first, then the others (tokenizers' order; it only matters for ties).
  for (int pass = 0; pass < 2; ++pass)
    for (const AddedToken& t : m.added) {
      if (t.special != (pass == 0)) continue;
      if (t.normalized) {  // the content is already normalized
        norm_patterns.push_back(t.content);
        norm_tokens.push_back(&t);
      } else {
        raw_patterns.push_back(t.content);
        raw_tokens.push_back(&t);
      }
    }
  m.raw_added.build(std::move(raw_patterns), std::move(raw_tokens));
  m.normalized_added.build(std::move(norm_patterns), std::move(norm_tokens));
}

std::optional<std::int32_t> special_from_config(const Model& m, const Reader& r, const json::Value& cfg, const char* key) {
  const json::Value* v = cfg.find(key);
  if (!v || v->is_null()) return std::nullopt;
  const std::string& content =
      v->is_object() ? r.string(r.member(*v, "content", key), std::string(key) + ".content") : r.string(*v, key);
  if (auto id = m.added_map.find(content)) return id;
  if (auto id = m.vocab_map.find(content)) return id;
  r.fail(key, v, "'" + content + "' is not a token of " + m.source);
}

}  // namespace

const std::string& byte_to_unicode(unsigned char b) { return byte_table().text[b]; }

int unicode_to_byte(char32_t cp) { return cp < 512 ? byte_table().byte_of[cp] : -1; }

std::string token_bytes(std::string_view token, bool& pure_byte_level) {
  std::string out;
  const auto* p = reinterpret_cast<const unsigned char*>(token.data());
  const auto* end = p + token.size();
  while (p < end) {
    char32_t cp;
    p += unicode::utf8_decode(p, cp);
    const int b = unicode_to_byte(cp);
    if (b < 0) {
      pure_byte_level = false;
      return std::string(token);
    }
    out.push_back(static_cast<char>(b));
  }
  pure_byte_level = true;
  return out;
}

void load_model(Model& m, std::string_view json_text) {
  const json::Value root = json::parse(json_text, m.source);
  const Reader r(m.source);
  r.object(root, "<root>");
  for (const char* key : {"truncation", "padding"}) {
    const json::Value* v = root.find(key);
    if (v && !v->is_null()) r.fail(key, v, std::string(key) + " is not supported (set it to null)");
  }
  load_model_section(m, r, root);
  const json::Value* norm = root.find("normalizer");
  m.nfc = norm ? load_normalizer(r, *norm, "normalizer") : false;
  load_added_tokens(m, r, root);
  load_pre_tokenizer(m, r, root);
  load_decoder(r, root);
  if (const json::Value* pp = root.find("post_processor"); pp && !pp->is_null())
    r.object(*pp, "post_processor");  // not applied: encode() adds no special tokens
  build_id_tables(m);
  build_added_matchers(m);
}

void load_special_names(Model& m, const std::string& tokenizer_config) {
  const json::Value cfg = json::parse_file(tokenizer_config);
  const Reader r(tokenizer_config);
  r.object(cfg, "<root>");
  m.bos = special_from_config(m, r, cfg, "bos_token");
  m.eos = special_from_config(m, r, cfg, "eos_token");
}

}  // namespace crucible::data::bpe_detail
