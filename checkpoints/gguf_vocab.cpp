// checkpoints/gguf_vocab.cpp: tokenizer.* metadata for GGUF from an ExportTokenizer.
//
// Invariant: tokens.size() == types.size() == the model's vocab_size; token i is the
// string tokenizer.json gives id i (so llama.cpp's ids equal transformers' ids); the
// special ids resolve the same way for the HF and the GGUF export.
// Reference: reference/checkpoint_formats.md §3.1-3.2, §4.4; llama.cpp gguf-py vocab.py
// (SpecialVocab), convert_hf_to_gguf.py get_vocab_base / _set_vocab_gpt2.
#include "checkpoints/gguf_vocab.h"

#include <algorithm>
#include <filesystem>

#include "core/error.h"

namespace crucible::checkpoints {

namespace {

// Split regexes of tokenizer.json pre_tokenizers (JSON-unescaped), by llama.cpp name.
const char* const kQwen2Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kLlama3Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kDeepseekV3Regexes[] = {
    R"(\p{N}{1,3})",
    R"([一-龥぀-ゟ゠-ヿ]+)",
    R"([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)",
};

// A regex with its control characters written as escapes: tokenizer.json files spell
// the same pattern either way (DeepSeek-V3's holds a raw CR LF where Qwen's holds "\r\n").
std::string escape_controls(const std::string& re) {
  std::string out;
  for (const char ch : re) {
    if (ch == '\r') out += "\\r";
    else if (ch == '\n') out += "\\n";
    else if (ch == '\t') out += "\\t";
    else out += ch;
  }
  return out;
}

// The Split regexes and ByteLevel steps of a pre_tokenizer, in order.
void collect(const json::Value& p, std::vector<std::string>& splits, int& byte_level, bool& byte_level_regex) {
  if (!p.is_object()) return;
  const json::Value* type = p.find("type");
  if (!type || !type->is_string()) return;
  const std::string& t = type->as_string();
  if (t == "Sequence") {
    if (const json::Value* seq = p.find("pretokenizers"); seq && seq->is_array())
      for (const json::Value& x : seq->as_array()) collect(x, splits, byte_level, byte_level_regex);
  } else if (t == "Split") {
    const json::Value* pat = p.find("pattern");
    const json::Value* re = pat && pat->is_object() ? pat->find("Regex") : nullptr;
    const json::Value* str = pat && pat->is_object() ? pat->find("String") : nullptr;
    splits.push_back(re && re->is_string()    ? escape_controls(re->as_string())
                     : str && str->is_string() ? "<string>" + str->as_string()
                                               : "?");
  } else if (t == "ByteLevel") {
    ++byte_level;
    const json::Value* r = p.find("use_regex");
    byte_level_regex = byte_level_regex || !r || !r->is_bool() || r->as_bool();
  } else {
    splits.push_back("<" + t + ">");
  }
}

}  // namespace

json::Value read_json_file(const std::string& path, const char* what) {
  CRUCIBLE_USER_CHECK(std::filesystem::is_regular_file(path), "cannot read ", what, ": ", path, " is not a file");
  return json::parse_file(path);
}

std::int64_t tokenizer_token_id(const json::Value& tj, const std::string& text) {
  if (const json::Value* added = tj.find("added_tokens"); added && added->is_array())
    for (const json::Value& a : added->as_array())
      if (const json::Value* c = a.find("content"); c && c->is_string() && c->as_string() == text)
        return a.at("id").as_int64();
  if (const json::Value* model = tj.find("model"))
    if (const json::Value* vocab = model->find("vocab"); vocab && vocab->is_object())
      if (const json::Value* id = vocab->find(text); id && id->is_integer()) return id->as_int64();
  return -1;
}

std::string token_content(const json::Value& v) {
  if (v.is_string()) return v.as_string();
  if (v.is_object())
    if (const json::Value* c = v.find("content"); c && c->is_string()) return c->as_string();
  return {};
}

std::string detect_gguf_pre(const json::Value& pre_tokenizer, const std::string& source) {
  std::vector<std::string> splits;
  int byte_level = 0;
  bool byte_level_regex = false;
  collect(pre_tokenizer, splits, byte_level, byte_level_regex);
  if (byte_level == 1) {
    if (splits.empty() && byte_level_regex) return "gpt-2";
    if (splits.empty()) return kByteLevelGgufPre;
    if (splits.size() == 1 && splits[0] == kQwen2Regex) return "qwen2";
    if (splits.size() == 1 && splits[0] == kLlama3Regex) return "llama-bpe";
    if (splits.size() == 3 && std::equal(splits.begin(), splits.end(), std::begin(kDeepseekV3Regexes)))
      return "deepseek-v3";
  }
  std::string seen;
  for (const std::string& s : splits) seen += (seen.empty() ? "" : ", ") + s.substr(0, 60);
  CRUCIBLE_FAIL(source, ": cannot tell which llama.cpp pre-tokenizer matches this tokenizer's pre_tokenizer (",
                byte_level, " ByteLevel step(s); splits: ", seen.empty() ? "none" : seen,
                "); set the export tokenizer's gguf_pre to a name llama.cpp knows (qwen2, llama-bpe, deepseek-v3, gpt-2, ...)");
}

ResolvedSpecials resolve_specials(const ExportTokenizer& tok, const ModelConfig& c) {
  tok.validate();
  ResolvedSpecials s;
  if (tok.byte_level()) {
    s.bos = tok.bos_id >= 0 ? tok.bos_id : c.bos_token_id;
    s.eos = tok.eos_id >= 0 ? tok.eos_id : c.eos_token_id;
    s.pad = tok.pad_id;
    auto text_of = [&](std::int64_t id, const char* what) -> std::string {
      if (id < 0) return {};
      for (const ExportSpecialToken& t : tok.specials)
        if (t.id == id) return t.text;
      CRUCIBLE_FAIL("export tokenizer: the ", what, " id ", id,
                    id < 256 ? " is a byte token; bos/eos/pad must be special tokens" : " is not a special token");
    };
    s.bos_text = text_of(s.bos, "bos");
    s.eos_text = text_of(s.eos, "eos");
    s.pad_text = text_of(s.pad, "pad");
    s.add_bos = tok.add_bos_token;
    s.chat_template = tok.chat_template;
    return s;
  }
  const json::Value tj = read_json_file(tok.tokenizer_json_path, "tokenizer.json");
  const json::Value cfg = tok.tokenizer_config_path.empty() ? json::Value::object()
                                                            : read_json_file(tok.tokenizer_config_path, "tokenizer_config.json");
  auto text_of_id = [&](std::int64_t id) -> std::string {
    if (const json::Value* added = tj.find("added_tokens"); added && added->is_array())
      for (const json::Value& a : added->as_array())
        if (a.at("id").as_int64() == id) return a.at("content").as_string();
    if (const json::Value* model = tj.find("model"))
      if (const json::Value* vocab = model->find("vocab"); vocab && vocab->is_object())
        for (const auto& [k, v] : vocab->as_object())
          if (v.is_integer() && v.as_int64() == id) return k;
    return {};
  };
  auto resolve = [&](std::int64_t given, const char* key, std::int64_t fallback, std::string& text) {
    std::int64_t id = given;
    if (id < 0)
      if (const json::Value* v = cfg.find(key); v && !v->is_null()) {
        id = tokenizer_token_id(tj, token_content(*v));
        CRUCIBLE_USER_CHECK(id >= 0, tok.tokenizer_config_path, ": ", key, " '", token_content(*v), "' is not a token of ",
                            tok.tokenizer_json_path);
      }
    if (id < 0) id = fallback;
    if (id >= 0) text = text_of_id(id);
    return id;
  };
  s.bos = resolve(tok.bos_id, "bos_token", c.bos_token_id, s.bos_text);
  s.eos = resolve(tok.eos_id, "eos_token", c.eos_token_id, s.eos_text);
  s.pad = resolve(tok.pad_id, "pad_token", -1, s.pad_text);
  const json::Value* add_bos = cfg.find("add_bos_token");
  s.add_bos = tok.add_bos_token || (add_bos && add_bos->is_bool() && add_bos->as_bool());
  s.chat_template = tok.chat_template;
  if (s.chat_template.empty())
    if (const json::Value* t = cfg.find("chat_template")) {
      if (t->is_string()) s.chat_template = t->as_string();
      if (t->is_array())  // [{name, template}]: the "default" one, as Ollama and llama.cpp pick
        for (const json::Value& e : t->as_array())
          if (e.find("name") && e.at("name").is_string() && e.at("name").as_string() == "default")
            s.chat_template = e.at("template").as_string();
    }
  return s;
}

GgufVocab build_gguf_vocab(const ExportTokenizer& tok, const ModelConfig& c) {
  GgufVocab v;
  v.specials = resolve_specials(tok, c);
  const auto n = static_cast<std::size_t>(c.vocab_size);
  v.tokens.assign(n, {});
  v.types.assign(n, 0);
  auto put = [&](std::int64_t id, std::string text, GgufTokenType type, const std::string& source) {
    CRUCIBLE_USER_CHECK(id >= 0 && static_cast<std::size_t>(id) < n, source, ": token '", text, "' has id ", id,
                        ", outside the model's vocab_size ", n);
    v.tokens[static_cast<std::size_t>(id)] = std::move(text);
    v.types[static_cast<std::size_t>(id)] = static_cast<std::int32_t>(type);
  };
  if (tok.byte_level()) {
    for (int b = 0; b < 256; ++b)
      put(b, gpt2_byte_to_unicode(static_cast<std::uint8_t>(b)), GgufTokenType::Normal, "byte-level tokenizer");
    for (const ExportSpecialToken& t : tok.specials)
      put(t.id, t.text, t.special ? GgufTokenType::Control : GgufTokenType::UserDefined, "byte-level tokenizer");
    v.pre = tok.gguf_pre.empty() ? kByteLevelGgufPre : tok.gguf_pre;
  } else {
    const std::string& src = tok.tokenizer_json_path;
    const json::Value tj = read_json_file(src, "tokenizer.json");
    const json::Value* model = tj.find("model");
    CRUCIBLE_USER_CHECK(model && model->is_object() && model->find("type") && model->at("type").is_string() &&
                            model->at("type").as_string() == "BPE",
                        src, ": GGUF export supports byte-level BPE tokenizers (model.type \"BPE\")");
    const json::Value* vocab = model->find("vocab");
    CRUCIBLE_USER_CHECK(vocab && vocab->is_object(), src, ": model.vocab must be an object");
    for (const auto& [text, id] : vocab->as_object()) {
      CRUCIBLE_USER_CHECK(id.is_integer(), src, ": model.vocab['", text, "'] is not an integer id");
      put(id.as_int64(), text, GgufTokenType::Normal, src);
    }
    if (const json::Value* added = tj.find("added_tokens"); added && added->is_array())
      for (const json::Value& a : added->as_array()) {
        const json::Value* special = a.find("special");
        const bool is_special = special && special->is_bool() && special->as_bool();
        put(a.at("id").as_int64(), a.at("content").as_string(),
            is_special ? GgufTokenType::Control : GgufTokenType::UserDefined, src);
      }
    if (const json::Value* merges = model->find("merges"); merges && merges->is_array())
      for (const json::Value& m : merges->as_array()) {
        if (m.is_string()) {
          v.merges.push_back(m.as_string());
        } else {  // ["a", "b"] (tokenizers >= 0.20): a ' ' inside a part is written as U+0120, as llama.cpp does
          CRUCIBLE_USER_CHECK(m.is_array() && m.size() == 2, src, ": a merge must be \"a b\" or [\"a\", \"b\"]");
          std::string parts[2];
          for (int k = 0; k < 2; ++k)
            for (char ch : m.as_array()[static_cast<std::size_t>(k)].as_string())
              parts[k] += ch == ' ' ? std::string("\xC4\xA0") : std::string(1, ch);
          v.merges.push_back(parts[0] + " " + parts[1]);
        }
      }
    const json::Value* pre = tj.find("pre_tokenizer");
    v.pre = !tok.gguf_pre.empty() ? tok.gguf_pre : detect_gguf_pre(pre ? *pre : json::Value(), src);
  }
  for (std::size_t i = 0; i < n; ++i)
    if (v.types[i] == 0) {  // an id the tokenizer lacks (embedding rows padded past it)
      v.tokens[i] = "[PAD" + std::to_string(i) + "]";
      v.types[i] = static_cast<std::int32_t>(GgufTokenType::Unused);
    }
  return v;
}

}  // namespace crucible::checkpoints
