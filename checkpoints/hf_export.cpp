// checkpoints/hf_export.cpp: the Hugging Face model directory export.
//
// Invariant: out_dir is either untouched or a complete directory that transformers
// loads and that import_hf_model() reads back to the same weights (F32 exact, BF16
// round-to-nearest-even, FP8 the block dequantization of quantize_fp8). Nothing is
// ever written into out_dir itself: everything goes into a temporary sibling that is
// renamed (swapped) into place at the end.
// Reference: reference/checkpoint_formats.md §1-§3, §6, §7; transformers
// PreTrainedTokenizerFast; DeepSeek-V3 FP8 layout (weight_scale_inv, 128x128 blocks).
#include "checkpoints/hf_export.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>

#include "checkpoints/gguf_vocab.h"
#include "checkpoints/hf_config.h"
#include "checkpoints/safetensors.h"
#include "core/error.h"
#include "core/fp8_tensor.h"
#include "core/numerics.h"
#include "data/tokenizer.h"

namespace crucible::checkpoints {

namespace fs = std::filesystem;

namespace {

void write_text_file(const std::string& path, const std::string& text) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  CRUCIBLE_USER_CHECK(f != nullptr, "cannot create ", path, ": ", std::strerror(errno));
  const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size() && std::fflush(f) == 0 &&
                  ::fsync(fileno(f)) == 0;
  const int err = errno;
  std::fclose(f);
  CRUCIBLE_USER_CHECK(ok, "cannot write ", path, ": ", std::strerror(err), " (disk full?)");
}

void write_json(const std::string& path, const json::Value& v) { write_text_file(path, json::dump(v, 2) + "\n"); }

void fsync_dir(const std::string& dir) {
  if (int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY); fd >= 0) {
    ::fsync(fd);  // NOTE: best effort; some filesystems refuse fsync on a directory
    ::close(fd);
  }
}

json::Value id_list_or_int(const std::vector<std::int64_t>& ids) {
  if (ids.size() == 1) return json::Value(ids[0]);
  json::Value a = json::Value::array();
  for (std::int64_t id : ids) a.push_back(id);
  return a;
}

json::Value added_token_json(std::int64_t id, const std::string& text, bool special) {
  json::Value t = json::Value::object();
  t.set("id", id);
  t.set("content", text);
  t.set("single_word", false);
  t.set("lstrip", false);
  t.set("rstrip", false);
  t.set("normalized", false);
  t.set("special", special);
  return t;
}

json::Value byte_level_json(const char* type) {
  json::Value v = json::Value::object();
  v.set("type", type);
  v.set("add_prefix_space", false);
  v.set("trim_offsets", false);
  v.set("use_regex", false);
  return v;
}

// tokenizer_config.json + special_tokens_map.json of a byte-level tokenizer.
void write_byte_level_configs(const ExportTokenizer& tok, const ResolvedSpecials& s, std::int64_t max_len,
                              const std::string& dir) {
  json::Value cfg = json::Value::object();
  cfg.set("add_bos_token", tok.add_bos_token);
  cfg.set("add_eos_token", false);
  json::Value decoder = json::Value::object();
  for (const ExportSpecialToken& t : tok.specials) {
    json::Value e = added_token_json(t.id, t.text, t.special);
    json::Value entry = json::Value::object();
    for (const char* k : {"content", "lstrip", "normalized", "rstrip", "single_word", "special"}) entry.set(k, e.at(k));
    decoder.set(std::to_string(t.id), entry);
  }
  cfg.set("added_tokens_decoder", decoder);
  json::Value map = json::Value::object();
  auto special = [&](const char* key, const std::string& text) {
    cfg.set(key, text.empty() ? json::Value(nullptr) : json::Value(text));
    if (!text.empty()) map.set(key, text);
  };
  special("bos_token", s.bos_text);
  special("eos_token", s.eos_text);
  special("pad_token", s.pad_text);
  cfg.set("unk_token", nullptr);
  if (!tok.chat_template.empty()) cfg.set("chat_template", tok.chat_template);
  cfg.set("clean_up_tokenization_spaces", false);
  cfg.set("model_max_length", max_len);
  cfg.set("tokenizer_class", "PreTrainedTokenizerFast");
  write_json(dir + "/tokenizer_config.json", cfg);
  write_json(dir + "/special_tokens_map.json", map);
}

// A copy of a file that the export owns: the source's bytes, writable by its owner even
// when the source is read-only (a shared tokenizer directory).
void copy_owned(const fs::path& from, const fs::path& to) {
  fs::copy_file(from, to);
  fs::permissions(to, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::add);
}

// Copies the original tokenizer files, updating what the ExportTokenizer sets.
void write_hf_tokenizer_files(const ExportTokenizer& tok, const ResolvedSpecials& s, std::int64_t max_len,
                              const std::string& dir) {
  copy_owned(tok.tokenizer_json_path, dir + "/tokenizer.json");
  json::Value cfg = tok.tokenizer_config_path.empty() ? json::Value::object()
                                                      : read_json_file(tok.tokenizer_config_path, "tokenizer_config.json");
  CRUCIBLE_USER_CHECK(cfg.is_object(), tok.tokenizer_config_path, ": expected a JSON object");
  if (!tok.chat_template.empty()) cfg.set("chat_template", tok.chat_template);
  cfg.set("add_bos_token", s.add_bos);
  cfg.set("model_max_length", max_len);
  if (!cfg.find("tokenizer_class")) cfg.set("tokenizer_class", "PreTrainedTokenizerFast");
  // The caller's ids win over the original's texts.
  if (tok.bos_id >= 0 && !s.bos_text.empty()) cfg.set("bos_token", s.bos_text);
  if (tok.eos_id >= 0 && !s.eos_text.empty()) cfg.set("eos_token", s.eos_text);
  if (tok.pad_id >= 0 && !s.pad_text.empty()) cfg.set("pad_token", s.pad_text);
  write_json(dir + "/tokenizer_config.json", cfg);

  const fs::path map_path = fs::path(tok.tokenizer_json_path).parent_path() / "special_tokens_map.json";
  const bool ids_changed = tok.bos_id >= 0 || tok.eos_id >= 0 || tok.pad_id >= 0;
  if (fs::exists(map_path) && !ids_changed) {
    copy_owned(map_path, dir + "/special_tokens_map.json");
  } else {
    json::Value map = json::Value::object();
    for (const char* k : {"bos_token", "eos_token", "pad_token", "unk_token"})
      if (const json::Value* v = cfg.find(k); v && !v->is_null()) map.set(k, *v);
    write_json(dir + "/special_tokens_map.json", map);
  }
}

std::vector<std::uint16_t> to_bf16(const Tensor& f32) {
  std::vector<std::uint16_t> out(static_cast<std::size_t>(f32.numel()));
  const float* p = f32.data<float>();
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = f32_to_bf16(p[i]);
  return out;
}

Tensor bf16_tensor(const Tensor& f32) {
  Tensor h = on_host(f32);
  Tensor out(h.shape(), DType::BF16, Device::cpu(), h.name());
  const auto v = to_bf16(h);
  if (!v.empty()) std::memcpy(out.raw(), v.data(), v.size() * 2);
  return out;
}

// The tensors of model.safetensors, in parameter_table order (FP8 scales right after
// their weight).
NamedTensors export_tensors(const ModelWeights& w, HfExportDType dtype) {
  const ModelConfig& c = w.config();
  NamedTensors out;
  for (const ParamSpec& p : parameter_table(c)) {
    const Tensor t = w.param(p.name);
    if (dtype == HfExportDType::FP8 && p.fp8) {
      Fp8Tensor q = quantize_fp8(on_host(t), ScaleLayout::Block128x128);
      out.emplace_back(p.name, q.q);
      out.emplace_back(p.name + "_scale_inv", q.scale);
    } else if (dtype == HfExportDType::F32) {
      out.emplace_back(p.name, t);
    } else {
      out.emplace_back(p.name, bf16_tensor(t));
    }
    // transformers' Llama puts attention_bias on o_proj too; crucible has none: zeros.
    const std::string o_weight = ".self_attn.o_proj.weight";
    if (c.arch == Arch::Llama && c.attention_bias && p.name.size() > o_weight.size() &&
        p.name.compare(p.name.size() - o_weight.size(), o_weight.size(), o_weight) == 0) {
      Tensor zero(Shape{c.hidden_size}, dtype == HfExportDType::F32 ? DType::F32 : DType::BF16);
      out.emplace_back(p.name.substr(0, p.name.size() - 6) + "bias", zero);
    }
  }
  return out;
}

}  // namespace

void ExportTokenizer::validate() const {
  if (!byte_level()) {
    CRUCIBLE_USER_CHECK(fs::is_regular_file(tokenizer_json_path), "export tokenizer: ", tokenizer_json_path,
                        " is not a file (give the tokenizer.json of the model's tokenizer)");
    CRUCIBLE_USER_CHECK(tokenizer_config_path.empty() || fs::is_regular_file(tokenizer_config_path),
                        "export tokenizer: ", tokenizer_config_path, " is not a file");
    CRUCIBLE_USER_CHECK(specials.empty(), "export tokenizer: `specials` is for the byte-level tokenizer; the specials "
                        "of ", tokenizer_json_path, " are its added_tokens");
  }
  std::set<std::int64_t> ids;
  std::set<std::string> texts;
  for (const ExportSpecialToken& t : specials) {
    CRUCIBLE_USER_CHECK(t.id >= 256, "export tokenizer: special token '", t.text, "' has id ", t.id,
                        "; ids 0..255 are the byte tokens");
    CRUCIBLE_USER_CHECK(!t.text.empty(), "export tokenizer: special token ", t.id, " has no text");
    CRUCIBLE_USER_CHECK(ids.insert(t.id).second, "export tokenizer: two special tokens have id ", t.id);
    CRUCIBLE_USER_CHECK(texts.insert(t.text).second, "export tokenizer: two special tokens are '", t.text, "'");
  }
  CRUCIBLE_USER_CHECK(model_max_length >= 0, "export tokenizer: model_max_length must be >= 0");
}

ExportTokenizer export_tokenizer_for(const data::Tokenizer& t, const std::string& source, std::string chat_template) {
  ExportTokenizer e;
  e.chat_template = std::move(chat_template);
  e.bos_id = t.bos_id() ? *t.bos_id() : -1;
  e.eos_id = t.eos_id() ? *t.eos_id() : -1;
  if (t.name() == "byte") {
    for (std::int64_t id = 256; id < t.vocab_size(); ++id) {
      const auto i = static_cast<std::int32_t>(id);
      e.specials.push_back({id, t.token_text(i), t.is_special(i)});
    }
    if (const auto pad = t.token_id("<｜pad｜>")) e.pad_id = *pad;
    return e;
  }
  const fs::path p(source);
  CRUCIBLE_USER_CHECK(!source.empty(), "export tokenizer: give the directory or tokenizer.json that the ", t.name(),
                      " tokenizer was loaded from");
  e.tokenizer_json_path = (fs::is_directory(p) ? p / "tokenizer.json" : p).string();
  const fs::path cfg = fs::path(e.tokenizer_json_path).parent_path() / "tokenizer_config.json";
  if (fs::exists(cfg)) e.tokenizer_config_path = cfg.string();
  return e;
}

std::string gpt2_byte_to_unicode(std::uint8_t b) {
  // Printable bytes stand for themselves; the other 68 map to 256, 257, ... in byte order.
  auto printable = [](int x) { return (x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255); };
  std::uint32_t cp = b;
  if (!printable(b)) {
    cp = 256;
    for (int x = 0; x < b; ++x)
      if (!printable(x)) ++cp;
  }
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else {  // all code points here are < 0x800: two UTF-8 bytes
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

json::Value byte_level_tokenizer_json(const ExportTokenizer& tok) {
  tok.validate();
  CRUCIBLE_CHECK(tok.byte_level(), "byte_level_tokenizer_json needs a byte-level ExportTokenizer");
  json::Value root = json::Value::object();
  root.set("version", "1.0");
  root.set("truncation", nullptr);
  root.set("padding", nullptr);
  json::Value added = json::Value::array();
  std::vector<ExportSpecialToken> specials = tok.specials;
  std::sort(specials.begin(), specials.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  for (const ExportSpecialToken& t : specials) added.push_back(added_token_json(t.id, t.text, t.special));
  root.set("added_tokens", added);
  root.set("normalizer", nullptr);
  root.set("pre_tokenizer", byte_level_json("ByteLevel"));
  std::int64_t bos = tok.bos_id;
  if (tok.add_bos_token) {
    CRUCIBLE_USER_CHECK(bos >= 256, "export tokenizer: add_bos_token needs bos_id set to a special token");
    std::string bos_text;
    for (const ExportSpecialToken& t : specials)
      if (t.id == bos) bos_text = t.text;
    CRUCIBLE_USER_CHECK(!bos_text.empty(), "export tokenizer: bos id ", bos, " is not a special token");
    auto special = [&](std::int64_t type_id) {
      json::Value s = json::Value::object(), inner = json::Value::object();
      inner.set("id", bos_text);
      inner.set("type_id", type_id);
      s.set("SpecialToken", inner);
      return s;
    };
    auto seq = [](const char* id, std::int64_t type_id) {
      json::Value s = json::Value::object(), inner = json::Value::object();
      inner.set("id", id);
      inner.set("type_id", type_id);
      s.set("Sequence", inner);
      return s;
    };
    json::Value pp = json::Value::object();
    pp.set("type", "TemplateProcessing");
    pp.set("single", json::Value(json::Array{special(0), seq("A", 0)}));
    pp.set("pair", json::Value(json::Array{special(0), seq("A", 0), special(1), seq("B", 1)}));
    json::Value st = json::Value::object(), entry = json::Value::object();
    entry.set("id", bos_text);
    entry.set("ids", json::Value(json::Array{json::Value(bos)}));
    entry.set("tokens", json::Value(json::Array{json::Value(bos_text)}));
    st.set(bos_text, entry);
    pp.set("special_tokens", st);
    root.set("post_processor", pp);
  } else {
    root.set("post_processor", nullptr);
  }
  root.set("decoder", byte_level_json("ByteLevel"));
  json::Value model = json::Value::object();
  model.set("type", "BPE");
  model.set("dropout", nullptr);
  model.set("unk_token", nullptr);
  model.set("continuing_subword_prefix", nullptr);
  model.set("end_of_word_suffix", nullptr);
  model.set("fuse_unk", false);
  model.set("byte_fallback", false);
  model.set("ignore_merges", false);
  json::Value vocab = json::Value::object();
  for (int b = 0; b < 256; ++b) vocab.set(gpt2_byte_to_unicode(static_cast<std::uint8_t>(b)), b);
  model.set("vocab", vocab);
  model.set("merges", json::Value::array());
  root.set("model", model);
  return root;
}

const char* hf_export_dtype_name(HfExportDType d) {
  switch (d) {
    case HfExportDType::F32: return "f32";
    case HfExportDType::BF16: return "bf16";
    case HfExportDType::FP8: return "fp8";
  }
  return "?";
}

void HfExportOptions::validate() const {
  CRUCIBLE_USER_CHECK(max_shard_bytes > 0, "HF export: max_shard_bytes must be > 0");
  CRUCIBLE_USER_CHECK(temperature >= 0, "HF export: temperature must be >= 0, got ", temperature);
  CRUCIBLE_USER_CHECK(top_p > 0 && top_p <= 1, "HF export: top_p must be in (0, 1], got ", top_p);
  CRUCIBLE_USER_CHECK(max_new_tokens >= 0, "HF export: max_new_tokens must be >= 0");
}

void write_directory_atomically(const std::string& out_dir, bool overwrite,
                                const std::function<void(const std::string& tmp_dir)>& fill) {
  static std::atomic<int> counter{0};
  CRUCIBLE_USER_CHECK(!out_dir.empty(), "export: empty output directory");
  fs::path out = fs::absolute(fs::path(out_dir)).lexically_normal();
  if (out.filename().empty()) out = out.parent_path();  // "dir/" -> "dir"
  const fs::path parent = out.parent_path();
  fs::create_directories(parent);
  const bool exists = fs::exists(out);
  CRUCIBLE_USER_CHECK(!exists || overwrite, "export: ", out.string(),
                      " already exists; remove it or ask for overwrite (it is then replaced as a whole)");
  CRUCIBLE_USER_CHECK(!exists || fs::is_directory(out), "export: ", out.string(), " exists and is not a directory");
  const std::string tag = std::to_string(::getpid()) + "-" + std::to_string(counter++);
  const fs::path tmp = parent / ("." + out.filename().string() + ".tmp-" + tag);
  fs::remove_all(tmp);
  fs::create_directory(tmp);
  try {
    fill(tmp.string());
    fsync_dir(tmp.string());
  } catch (...) {
    std::error_code ec;
    fs::remove_all(tmp, ec);
    throw;
  }
  if (!exists) {
    if (::rename(tmp.c_str(), out.c_str()) != 0) {
      const int err = errno;
      std::error_code ec;
      fs::remove_all(tmp, ec);
      CRUCIBLE_FAIL("export: cannot rename ", tmp.string(), " to ", out.string(), ": ", std::strerror(err));
    }
  } else if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, out.c_str(), RENAME_EXCHANGE) == 0) {
    fs::remove_all(tmp);  // now holds the old directory
  } else {
    // No atomic exchange on this filesystem: move the old one aside, then the new one in.
    const fs::path old = parent / ("." + out.filename().string() + ".old-" + tag);
    fs::rename(out, old);
    try {
      fs::rename(tmp, out);
    } catch (...) {
      fs::rename(old, out);
      std::error_code ec;
      fs::remove_all(tmp, ec);
      throw;
    }
    fs::remove_all(old);
  }
  fsync_dir(parent.string());
}

void export_hf(const ModelWeights& w, const ExportTokenizer& tok, const HfExportOptions& o,
               const std::string& out_dir) {
  o.validate();
  tok.validate();
  const ModelConfig& c = w.config();
  CRUCIBLE_USER_CHECK(o.dtype != HfExportDType::FP8 || c.arch == Arch::DeepseekV3,
                      "HF export: dtype fp8 (block-scaled E4M3) is for deepseek_v3 models; ", arch_name(c.arch),
                      " exports as f32 or bf16");
  const std::int64_t max_len = tok.model_max_length > 0 ? tok.model_max_length : c.max_position_embeddings;
  const ResolvedSpecials s = resolve_specials(tok, c);
  for (const ExportSpecialToken& t : tok.specials)
    CRUCIBLE_USER_CHECK(t.id < c.vocab_size, "HF export: special token '", t.text, "' has id ", t.id,
                        ", outside the model's vocab_size ", c.vocab_size);

  write_directory_atomically(out_dir, o.overwrite, [&](const std::string& dir) {
    if (tok.byte_level()) {
      write_json(dir + "/tokenizer.json", byte_level_tokenizer_json(tok));
      write_byte_level_configs(tok, s, max_len, dir);
    } else {
      write_hf_tokenizer_files(tok, s, max_len, dir);
    }

    ModelConfig hc = c;
    hc.precision = o.dtype == HfExportDType::F32 ? Precision::Fp32
                   : o.dtype == HfExportDType::BF16 ? Precision::Bf16 : Precision::Fp8;
    hc.bos_token_id = s.bos;
    hc.eos_token_id = s.eos;
    json::Value config = model_config_to_hf(hc);
    if (s.pad >= 0) config.set("pad_token_id", s.pad);
    if (c.arch == Arch::Llama) config.set("mlp_bias", false);
    write_json(dir + "/config.json", config);

    json::Value gen = json::Value::object();
    if (s.bos >= 0) gen.set("bos_token_id", s.bos);
    std::vector<std::int64_t> eos;
    if (s.eos >= 0) eos.push_back(s.eos);
    for (std::int64_t id : tok.extra_eos_ids)
      if (std::find(eos.begin(), eos.end(), id) == eos.end()) eos.push_back(id);
    if (!eos.empty()) gen.set("eos_token_id", id_list_or_int(eos));
    if (s.pad >= 0) gen.set("pad_token_id", s.pad);
    gen.set("do_sample", o.do_sample);
    gen.set("temperature", o.temperature);
    gen.set("top_p", o.top_p);
    if (o.max_new_tokens > 0) gen.set("max_new_tokens", o.max_new_tokens);
    write_json(dir + "/generation_config.json", gen);

    write_safetensors_sharded(dir, export_tensors(w, o.dtype), o.max_shard_bytes);
  });
}

}  // namespace crucible::checkpoints
