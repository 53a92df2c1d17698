// checkpoints/gguf_export.cpp: qwen2/llama models -> GGUF (llama.cpp layout).
//
// Invariant: the file holds exactly the tensors llama.cpp's loader creates for the
// architecture (it rejects extra or missing ones), every metadata key with the GGUF
// type llama.cpp reads it as (u32 counts, f32 eps/freq_base, bool flags), and weights
// whose llama.cpp forward equals crucible's (up to the tensor type's rounding).
// Reference: reference/checkpoint_formats.md §2.7, §4.2-4.5; llama.cpp
// conversion/llama.py (permute, generate_extra_tensors), gguf-py gguf_writer.py.
#include "checkpoints/gguf_export.h"

#include <cmath>
#include <cstring>
#include <numbers>

#include "core/error.h"
#include "core/numerics.h"

namespace crucible::checkpoints {

namespace {

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

GgufFileType file_type(GgufExportDType d) {
  switch (d) {
    case GgufExportDType::F32: return GgufFileType::AllF32;
    case GgufExportDType::F16: return GgufFileType::MostlyF16;
    case GgufExportDType::BF16: return GgufFileType::MostlyBF16;
    case GgufExportDType::Q8_0: return GgufFileType::MostlyQ8_0;
  }
  return GgufFileType::AllF32;
}

// The stored type of one tensor: 1-D stays F32; Q8_0 needs ne[0] % 32 == 0 (F16 otherwise,
// as convert_hf_to_gguf falls back).
GgmlType tensor_type(GgufExportDType d, const std::vector<std::int64_t>& ne) {
  if (ne.size() == 1) return GgmlType::F32;
  switch (d) {
    case GgufExportDType::F32: return GgmlType::F32;
    case GgufExportDType::F16: return GgmlType::F16;
    case GgufExportDType::BF16: return GgmlType::BF16;
    case GgufExportDType::Q8_0: return ne[0] % 32 == 0 ? GgmlType::Q8_0 : GgmlType::F16;
  }
  return GgmlType::F32;
}

std::vector<std::uint8_t> encode_as(GgmlType type, const std::vector<float>& x) {
  std::vector<std::uint8_t> out(static_cast<std::size_t>(ggml_nbytes(type, {static_cast<std::int64_t>(x.size())})));
  switch (type) {
    case GgmlType::F32:
      if (!x.empty()) std::memcpy(out.data(), x.data(), x.size() * 4);
      break;
    case GgmlType::F16:
    case GgmlType::BF16:
      for (std::size_t i = 0; i < x.size(); ++i) {
        const std::uint16_t h = type == GgmlType::F16 ? f32_to_f16(x[i]) : f32_to_bf16(x[i]);
        std::memcpy(out.data() + 2 * i, &h, 2);
      }
      break;
    case GgmlType::Q8_0: quantize_q8_0(x.data(), static_cast<std::int64_t>(x.size()), out.data()); break;
    default: CRUCIBLE_FAIL("GGUF export does not write ", ggml_traits(type).name);
  }
  return out;
}

std::vector<float> host_values(const Tensor& t) {
  const Tensor h = on_host(t);
  const float* p = h.data<float>();
  return std::vector<float>(p, p + h.numel());
}

void permute_rows(const float* src, float* dst, std::int64_t rows, std::int64_t cols, std::int64_t n_head,
                  bool inverse) {
  CRUCIBLE_CHECK(n_head > 0 && rows % n_head == 0 && (rows / n_head) % 2 == 0, "llama q/k permutation: ", rows,
                 " rows do not split into ", n_head, " heads of an even size");
  const std::int64_t hd = rows / n_head, half = hd / 2;
  for (std::int64_t h = 0; h < n_head; ++h)
    for (std::int64_t j = 0; j < half; ++j)
      for (std::int64_t t = 0; t < 2; ++t) {
        const std::int64_t gguf_row = h * hd + 2 * j + t, hf_row = h * hd + t * half + j;
        const std::int64_t d = inverse ? hf_row : gguf_row, s = inverse ? gguf_row : hf_row;
        std::memcpy(dst + d * cols, src + s * cols, static_cast<std::size_t>(cols) * sizeof(float));
      }
}

}  // namespace

const char* gguf_export_dtype_name(GgufExportDType d) {
  switch (d) {
    case GgufExportDType::F32: return "f32";
    case GgufExportDType::F16: return "f16";
    case GgufExportDType::BF16: return "bf16";
    case GgufExportDType::Q8_0: return "q8_0";
  }
  return "?";
}

void llama_permute_qk(const float* src, float* dst, std::int64_t rows, std::int64_t cols, std::int64_t n_head) {
  permute_rows(src, dst, rows, cols, n_head, false);
}

void llama_unpermute_qk(const float* src, float* dst, std::int64_t rows, std::int64_t cols, std::int64_t n_head) {
  permute_rows(src, dst, rows, cols, n_head, true);
}

std::vector<float> llama3_rope_freq_factors(const ModelConfig& c) {
  const RopeConfig& r = c.rope;
  CRUCIBLE_CHECK(r.type == RopeType::Llama3, "rope_freqs are for Llama-3 RoPE scaling");
  const std::int64_t dim = c.attn_head_dim();
  const double old_ctx = r.original_max_position_embeddings > 0 ? static_cast<double>(r.original_max_position_embeddings)
                                                                : 8192.0;  // convert's default
  const double low_wavelen = old_ctx / r.low_freq_factor, high_wavelen = old_ctx / r.high_freq_factor;
  std::vector<float> out;
  for (std::int64_t i = 0; i < dim; i += 2) {
    const double freq = 1.0 / std::pow(r.theta, static_cast<double>(i) / static_cast<double>(dim));
    const double wavelen = 2.0 * std::numbers::pi / freq;
    if (wavelen < high_wavelen) {
      out.push_back(1.0f);
    } else if (wavelen > low_wavelen) {
      out.push_back(static_cast<float>(r.factor));
    } else {
      const double smooth = (old_ctx / wavelen - r.low_freq_factor) / (r.high_freq_factor - r.low_freq_factor);
      out.push_back(static_cast<float>(1.0 / ((1.0 - smooth) / r.factor + smooth)));
    }
  }
  return out;
}

std::string gguf_tensor_name(const std::string& hf) {
  if (hf == "model.embed_tokens.weight") return "token_embd.weight";
  if (hf == "model.norm.weight") return "output_norm.weight";
  if (hf == "lm_head.weight") return "output.weight";
  const std::string prefix = "model.layers.";
  if (hf.compare(0, prefix.size(), prefix) != 0) return {};
  const std::size_t dot = hf.find('.', prefix.size());
  if (dot == std::string::npos) return {};
  const std::string layer = hf.substr(prefix.size(), dot - prefix.size());
  const std::string rest = hf.substr(dot + 1);
  static const std::pair<const char*, const char*> kMap[] = {
      {"input_layernorm.weight", "attn_norm.weight"},
      {"self_attn.q_proj.weight", "attn_q.weight"},
      {"self_attn.q_proj.bias", "attn_q.bias"},
      {"self_attn.k_proj.weight", "attn_k.weight"},
      {"self_attn.k_proj.bias", "attn_k.bias"},
      {"self_attn.v_proj.weight", "attn_v.weight"},
      {"self_attn.v_proj.bias", "attn_v.bias"},
      {"self_attn.o_proj.weight", "attn_output.weight"},
      {"post_attention_layernorm.weight", "ffn_norm.weight"},
      {"mlp.gate_proj.weight", "ffn_gate.weight"},
      {"mlp.up_proj.weight", "ffn_up.weight"},
      {"mlp.down_proj.weight", "ffn_down.weight"},
  };
  for (const auto& [from, to] : kMap)
    if (rest == from) return "blk." + layer + "." + to;
  return {};
}

GgufWriter make_gguf_writer(const ModelWeights& w, const GgufVocab& vocab, const GgufExportOptions& o) {
  const ModelConfig& c = w.config();
  CRUCIBLE_USER_CHECK(c.arch == Arch::Qwen2 || c.arch == Arch::Llama, "GGUF export supports qwen2 and llama models; ",
                      arch_name(c.arch), " is not supported (export it as an HF directory)");
  CRUCIBLE_USER_CHECK(vocab.tokens.size() == static_cast<std::size_t>(c.vocab_size),
                      "GGUF export: the vocabulary has ", vocab.tokens.size(), " tokens, the model ", c.vocab_size);
  const std::string arch = arch_name(c.arch);
  const auto u32 = [](std::int64_t v) {
    CRUCIBLE_CHECK(v >= 0 && v <= 0xFFFFFFFFll, "GGUF u32 value out of range: ", v);
    return GgufValue::u32(static_cast<std::uint32_t>(v));
  };
  GgufWriter g;
  g.set("general.architecture", GgufValue::string(arch));
  g.set("general.name", GgufValue::string(o.name.empty() ? (c.name.empty() ? arch : c.name) : o.name));
  g.set("general.file_type", GgufValue::u32(static_cast<std::uint32_t>(file_type(o.dtype))));
  g.set("general.quantization_version", GgufValue::u32(kGgmlQuantVersion));
  const std::int64_t hd = c.attn_head_dim();
  g.set(arch + ".vocab_size", u32(c.vocab_size));
  g.set(arch + ".context_length", u32(c.max_position_embeddings));
  g.set(arch + ".embedding_length", u32(c.hidden_size));
  g.set(arch + ".block_count", u32(c.num_hidden_layers));
  g.set(arch + ".feed_forward_length", u32(c.intermediate_size));
  g.set(arch + ".attention.head_count", u32(c.num_attention_heads));
  g.set(arch + ".attention.head_count_kv", u32(c.kv_heads()));
  g.set(arch + ".rope.freq_base", GgufValue::f32(static_cast<float>(c.rope.theta)));
  g.set(arch + ".attention.layer_norm_rms_epsilon", GgufValue::f32(static_cast<float>(c.rms_norm_eps)));
  g.set(arch + ".rope.dimension_count", u32(hd));
  if (hd * c.num_attention_heads != c.hidden_size) {
    g.set(arch + ".attention.key_length", u32(hd));
    g.set(arch + ".attention.value_length", u32(hd));
  }
  switch (c.rope.type) {
    case RopeType::Default: break;
    case RopeType::Linear:
      g.set(arch + ".rope.scaling.type", GgufValue::string("linear"));
      g.set(arch + ".rope.scaling.factor", GgufValue::f32(static_cast<float>(c.rope.factor)));
      break;
    case RopeType::Yarn:
      g.set(arch + ".rope.scaling.type", GgufValue::string("yarn"));
      g.set(arch + ".rope.scaling.factor", GgufValue::f32(static_cast<float>(c.rope.factor)));
      if (c.rope.original_max_position_embeddings > 0)
        g.set(arch + ".rope.scaling.original_context_length", u32(c.rope.original_max_position_embeddings));
      break;
    case RopeType::Llama3:
      CRUCIBLE_USER_CHECK(c.arch == Arch::Llama, "GGUF export: llama3 RoPE scaling is only supported for llama models "
                          "(llama.cpp reads rope_freqs.weight for arch llama)");
      break;  // rope_freqs.weight below; convert writes no rope.scaling keys for it
  }

  g.set("tokenizer.ggml.model", GgufValue::string("gpt2"));
  g.set("tokenizer.ggml.pre", GgufValue::string(vocab.pre));
  g.set("tokenizer.ggml.tokens", GgufValue::string_array(vocab.tokens));
  g.set("tokenizer.ggml.token_type", GgufValue::i32_array(vocab.types));
  g.set("tokenizer.ggml.merges", GgufValue::string_array(vocab.merges));  // required even when empty
  const ResolvedSpecials& s = vocab.specials;
  if (s.bos >= 0) g.set("tokenizer.ggml.bos_token_id", u32(s.bos));
  if (s.eos >= 0) g.set("tokenizer.ggml.eos_token_id", u32(s.eos));
  if (s.pad >= 0) g.set("tokenizer.ggml.padding_token_id", u32(s.pad));
  g.set("tokenizer.ggml.add_bos_token", GgufValue::boolean(s.add_bos));
  g.set("tokenizer.ggml.add_eos_token", GgufValue::boolean(false));
  if (!s.chat_template.empty()) g.set("tokenizer.chat_template", GgufValue::string(s.chat_template));

  if (c.rope.type == RopeType::Llama3) {
    const std::vector<float> factors = llama3_rope_freq_factors(c);
    g.add_tensor("rope_freqs.weight", {static_cast<std::int64_t>(factors.size())}, GgmlType::F32,
                 [factors] { return encode_as(GgmlType::F32, factors); });
  }
  for (const ParamSpec& p : parameter_table(c)) {
    const std::string name = gguf_tensor_name(p.name);
    CRUCIBLE_CHECK(!name.empty(), "GGUF export: no GGUF name for tensor ", p.name);
    std::vector<std::int64_t> ne(p.shape.rbegin(), p.shape.rend());  // ggml order: innermost first
    const GgmlType type = tensor_type(o.dtype, ne);
    // llama: q/k rows to the interleaved RoPE layout (weights and biases); q over all
    // heads, k over the kv heads.
    std::int64_t permute_heads = 0;
    if (c.arch == Arch::Llama && (ends_with(p.name, "q_proj.weight") || ends_with(p.name, "q_proj.bias")))
      permute_heads = c.num_attention_heads;
    if (c.arch == Arch::Llama && (ends_with(p.name, "k_proj.weight") || ends_with(p.name, "k_proj.bias")))
      permute_heads = c.kv_heads();
    const std::int64_t rows = p.shape[0], cols = p.shape.size() > 1 ? p.shape[1] : 1;
    g.add_tensor(name, ne, type, [&w, hf = p.name, type, permute_heads, rows, cols] {
      std::vector<float> x = host_values(w.param(hf));
      if (permute_heads > 0) {
        std::vector<float> y(x.size());
        llama_permute_qk(x.data(), y.data(), rows, cols, permute_heads);
        x.swap(y);
      }
      return encode_as(type, x);
    });
  }
  return g;
}

void export_gguf(const ModelWeights& w, const ExportTokenizer& tok, const GgufExportOptions& o,
                 const std::string& path) {
  const GgufVocab vocab = build_gguf_vocab(tok, w.config());
  make_gguf_writer(w, vocab, o).write(path);
}

}  // namespace crucible::checkpoints
