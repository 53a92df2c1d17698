// model/model_config.cpp: validation, the Hugging Face parameter table and sizes.
//
// Invariant: parameter_table() is the single source of parameter names and shapes;
// sizes, the inspect table and (later) the arenas and import/export derive from it.
// Reference: reference/deepseek_v3_fp8.md §1-§2 (shapes, MLA, KV cache), HF
// modeling code for Qwen2/Llama/DeepseekV3 (names).
#include "model/model_config.h"

#include <cmath>
#include <cstdio>
#include <sstream>

#include "core/error.h"

namespace crucible {

const char* arch_name(Arch a) {
  switch (a) {
    case Arch::DeepseekV3: return "deepseek_v3";
    case Arch::Qwen2: return "qwen2";
    case Arch::Llama: return "llama";
  }
  return "?";
}

bool ModelConfig::is_moe_layer(std::int64_t layer) const {
  return arch == Arch::DeepseekV3 && n_routed_experts > 0 && layer >= first_k_dense_replace &&
         layer % moe_layer_freq == 0;
}

double ModelConfig::softmax_scale() const {
  double d = is_mla() ? static_cast<double>(qk_head_dim()) : static_cast<double>(attn_head_dim());
  double scale = 1.0 / std::sqrt(d);
  if (is_mla() && rope.type == RopeType::Yarn && rope.mscale_all_dim > 0 && rope.factor > 1) {
    double m = 0.1 * rope.mscale_all_dim * std::log(rope.factor) + 1.0;
    scale *= m * m;
  }
  return scale;
}

namespace {
// Model configs are user input (TOML presets, config.json): errors name the field.
#define MODEL_CHECK(cond, ...) CRUCIBLE_USER_CHECK(cond, "model config: ", __VA_ARGS__)
}  // namespace

void ModelConfig::validate() const {
  MODEL_CHECK(vocab_size > 0, "vocab_size must be > 0, got ", vocab_size);
  MODEL_CHECK(hidden_size > 0, "hidden_size must be > 0, got ", hidden_size);
  MODEL_CHECK(num_hidden_layers > 0, "num_hidden_layers must be > 0, got ", num_hidden_layers);
  MODEL_CHECK(num_attention_heads > 0, "num_attention_heads must be > 0, got ", num_attention_heads);
  MODEL_CHECK(rms_norm_eps > 0, "rms_norm_eps must be > 0, got ", rms_norm_eps);
  MODEL_CHECK(rope.theta > 0, "rope_theta must be > 0, got ", rope.theta);
  MODEL_CHECK(rope.type == RopeType::Default || rope.factor >= 1.0,
              "rope_scaling.factor must be >= 1, got ", rope.factor);
  if (rope.type == RopeType::Llama3 || rope.type == RopeType::Yarn)
    MODEL_CHECK(rope.original_max_position_embeddings > 0,
                "rope_scaling.original_max_position_embeddings must be set for ",
                rope.type == RopeType::Llama3 ? "llama3" : "yarn", " scaling");
  if (rope.type == RopeType::Llama3)
    MODEL_CHECK(rope.high_freq_factor > rope.low_freq_factor,
                "rope_scaling.high_freq_factor must exceed low_freq_factor");
  MODEL_CHECK(bos_token_id < vocab_size && eos_token_id < vocab_size,
              "bos/eos token ids must be < vocab_size (", vocab_size, ")");

  if (arch == Arch::DeepseekV3) {
    MODEL_CHECK(kv_lora_rank > 0, "deepseek_v3 needs kv_lora_rank > 0");
    MODEL_CHECK(qk_nope_head_dim > 0 && qk_rope_head_dim > 0 && v_head_dim > 0,
                "deepseek_v3 needs qk_nope_head_dim, qk_rope_head_dim and v_head_dim > 0");
    MODEL_CHECK(qk_rope_head_dim % 2 == 0, "qk_rope_head_dim must be even, got ", qk_rope_head_dim);
    MODEL_CHECK(q_lora_rank >= 0, "q_lora_rank must be >= 0 (0 = plain q_proj)");
    MODEL_CHECK(intermediate_size > 0 || first_k_dense_replace == 0 || n_routed_experts == 0,
                "intermediate_size must be > 0 when there are dense layers");
    if (n_routed_experts > 0) {
      MODEL_CHECK(moe_intermediate_size > 0, "moe_intermediate_size must be > 0");
      MODEL_CHECK(num_experts_per_tok > 0 && num_experts_per_tok <= n_routed_experts,
                  "num_experts_per_tok must be in [1, n_routed_experts], got ", num_experts_per_tok);
      MODEL_CHECK(n_shared_experts >= 0, "n_shared_experts must be >= 0");
      MODEL_CHECK(moe_layer_freq >= 1, "moe_layer_freq must be >= 1");
      MODEL_CHECK(first_k_dense_replace >= 0 && first_k_dense_replace <= num_hidden_layers,
                  "first_k_dense_replace must be in [0, num_hidden_layers]");
      MODEL_CHECK(n_group >= 1 && n_routed_experts % n_group == 0,
                  "n_routed_experts (", n_routed_experts, ") must divide into n_group (", n_group,
                  ") equal groups");
      MODEL_CHECK(topk_group >= 1 && topk_group <= n_group, "topk_group must be in [1, n_group]");
      MODEL_CHECK(topk_group * (n_routed_experts / n_group) >= num_experts_per_tok,
                  "topk_group groups hold fewer experts than num_experts_per_tok");
      MODEL_CHECK(routed_scaling_factor > 0, "routed_scaling_factor must be > 0");
    }
    MODEL_CHECK(num_nextn_predict_layers >= 0, "num_nextn_predict_layers must be >= 0");
  } else {
    MODEL_CHECK(intermediate_size > 0, "intermediate_size must be > 0");
    MODEL_CHECK(num_attention_heads % kv_heads() == 0, "num_attention_heads (", num_attention_heads,
                ") must be a multiple of num_key_value_heads (", kv_heads(), ")");
    MODEL_CHECK(head_dim > 0 || hidden_size % num_attention_heads == 0,
                "hidden_size must be a multiple of num_attention_heads when head_dim is not set");
    MODEL_CHECK(attn_head_dim() % 2 == 0, "head_dim must be even for RoPE, got ", attn_head_dim());
    MODEL_CHECK(n_routed_experts == 0, arch_name(arch), " models have no routed experts");
    MODEL_CHECK(num_nextn_predict_layers == 0, "only deepseek_v3 has an MTP module");
  }
  if (precision == Precision::Fp8) {
    MODEL_CHECK(arch == Arch::DeepseekV3 || hidden_size % 16 == 0,
                "fp8 needs hidden_size to be a multiple of 16");
  }
}

std::int64_t ParamSpec::numel() const {
  std::int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

namespace {

class TableBuilder {
 public:
  explicit TableBuilder(std::vector<ParamSpec>& out) : out_(out) {}
  void add(std::string name, std::vector<std::int64_t> shape, std::int64_t layer,
           bool fp8 = false, bool routed = false, bool mtp = false) {
    out_.push_back({std::move(name), std::move(shape), layer, routed, mtp, fp8});
  }

 private:
  std::vector<ParamSpec>& out_;
};

void add_swiglu(TableBuilder& t, const std::string& p, std::int64_t hidden, std::int64_t inter,
                std::int64_t layer, bool routed, bool mtp) {
  t.add(p + "gate_proj.weight", {inter, hidden}, layer, true, routed, mtp);
  t.add(p + "up_proj.weight", {inter, hidden}, layer, true, routed, mtp);
  t.add(p + "down_proj.weight", {hidden, inter}, layer, true, routed, mtp);
}

// One decoder block: attention + FFN, with its two norms.
void add_block(TableBuilder& t, const ModelConfig& c, std::int64_t layer, bool moe, bool mtp) {
  const std::string p = "model.layers." + std::to_string(layer) + ".";
  const std::int64_t H = c.hidden_size, nh = c.num_attention_heads;
  t.add(p + "input_layernorm.weight", {H}, layer, false, false, mtp);
  const std::string a = p + "self_attn.";
  if (c.is_mla()) {
    const std::int64_t dqk = c.qk_head_dim();
    if (c.q_lora_rank > 0) {
      t.add(a + "q_a_proj.weight", {c.q_lora_rank, H}, layer, true, false, mtp);
      t.add(a + "q_a_layernorm.weight", {c.q_lora_rank}, layer, false, false, mtp);
      t.add(a + "q_b_proj.weight", {nh * dqk, c.q_lora_rank}, layer, true, false, mtp);
    } else {
      t.add(a + "q_proj.weight", {nh * dqk, H}, layer, true, false, mtp);
    }
    t.add(a + "kv_a_proj_with_mqa.weight", {c.kv_lora_rank + c.qk_rope_head_dim, H}, layer, true,
          false, mtp);
    t.add(a + "kv_a_layernorm.weight", {c.kv_lora_rank}, layer, false, false, mtp);
    t.add(a + "kv_b_proj.weight", {nh * (c.qk_nope_head_dim + c.v_head_dim), c.kv_lora_rank},
          layer, true, false, mtp);
    t.add(a + "o_proj.weight", {H, nh * c.v_head_dim}, layer, true, false, mtp);
  } else {
    const std::int64_t hd = c.attn_head_dim(), nkv = c.kv_heads();
    for (auto [name, rows] : {std::pair{"q_proj", nh * hd}, std::pair{"k_proj", nkv * hd},
                              std::pair{"v_proj", nkv * hd}}) {
      t.add(a + name + ".weight", {rows, H}, layer, true, false, mtp);
      if (c.attention_bias) t.add(a + name + ".bias", {rows}, layer, false, false, mtp);
    }
    t.add(a + "o_proj.weight", {H, nh * hd}, layer, true, false, mtp);
  }
  t.add(p + "post_attention_layernorm.weight", {H}, layer, false, false, mtp);
  if (!moe) {
    add_swiglu(t, p + "mlp.", H, c.intermediate_size, layer, false, mtp);
    return;
  }
  t.add(p + "mlp.gate.weight", {c.n_routed_experts, H}, layer, false, false, mtp);
  if (c.topk_method == TopkMethod::NoauxTc)
    t.add(p + "mlp.gate.e_score_correction_bias", {c.n_routed_experts}, layer, false, false, mtp);
  for (std::int64_t e = 0; e < c.n_routed_experts; ++e)
    add_swiglu(t, p + "mlp.experts." + std::to_string(e) + ".", H, c.moe_intermediate_size, layer,
               true, mtp);
  if (c.n_shared_experts > 0)
    add_swiglu(t, p + "mlp.shared_experts.", H, c.moe_intermediate_size * c.n_shared_experts,
               layer, false, mtp);
}

}  // namespace

std::vector<ParamSpec> parameter_table(const ModelConfig& c) {
  std::vector<ParamSpec> out;
  TableBuilder t(out);
  const std::int64_t H = c.hidden_size;
  t.add("model.embed_tokens.weight", {c.vocab_size, H}, -1);
  for (std::int64_t l = 0; l < c.num_hidden_layers; ++l) add_block(t, c, l, c.is_moe_layer(l), false);
  // MTP modules (DeepSeek-V3 §2.2): layer index L + k; the embedding and the output
  // head are shared with the main model, so only their own tensors are listed.
  for (std::int64_t k = 0; k < c.num_nextn_predict_layers; ++k) {
    const std::int64_t layer = c.num_hidden_layers + k;
    const std::string p = "model.layers." + std::to_string(layer) + ".";
    t.add(p + "enorm.weight", {H}, layer, false, false, true);
    t.add(p + "hnorm.weight", {H}, layer, false, false, true);
    t.add(p + "eh_proj.weight", {H, 2 * H}, layer, false, false, true);
    add_block(t, c, layer, c.n_routed_experts > 0, true);
    t.add(p + "shared_head.norm.weight", {H}, layer, false, false, true);
  }
  t.add("model.norm.weight", {H}, -1);
  if (!c.tie_word_embeddings) t.add("lm_head.weight", {c.vocab_size, H}, -1);
  return out;
}

ModelSizes model_sizes(const ModelConfig& c) {
  ModelSizes s;
  // Routed experts: one token touches top-k of the n routed experts of a layer.
  std::int64_t routed_per_layer = 0, routed_layers = 0;
  for (const ParamSpec& p : parameter_table(c)) {
    const std::int64_t n = p.numel();
    if (p.mtp) {
      s.params_mtp += n;
      continue;
    }
    s.params_total += n;
    if (p.name == "model.embed_tokens.weight") s.params_embedding = n;
    if (!p.routed_expert) s.params_active += n;
  }
  for (std::int64_t l = 0; l < c.num_hidden_layers; ++l) routed_layers += c.is_moe_layer(l);
  if (routed_layers > 0) {
    routed_per_layer = 3 * c.hidden_size * c.moe_intermediate_size;  // one expert
    s.params_active += routed_layers * c.num_experts_per_tok * routed_per_layer;
  }
  const std::int64_t bf16 = 2;
  if (c.is_mla())
    s.kv_cache_bytes_per_token = (c.kv_lora_rank + c.qk_rope_head_dim) * c.num_hidden_layers * bf16;
  else
    s.kv_cache_bytes_per_token = 2 * c.kv_heads() * c.attn_head_dim() * c.num_hidden_layers * bf16;
  return s;
}

namespace {

std::string shape_str(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string human_count(std::int64_t n) {
  char buf[32];
  if (n >= 1'000'000'000) std::snprintf(buf, sizeof buf, "%.3fB", n / 1e9);
  else if (n >= 1'000'000) std::snprintf(buf, sizeof buf, "%.3fM", n / 1e6);
  else if (n >= 1'000) std::snprintf(buf, sizeof buf, "%.3fK", n / 1e3);
  else std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(n));
  return buf;
}

// "model.layers.7.mlp.experts.12.up_proj.weight" -> "mlp.experts.{e}.up_proj.weight"
std::string local_name(const std::string& name, std::int64_t layer) {
  std::string prefix = "model.layers." + std::to_string(layer) + ".";
  std::string s = name.rfind(prefix, 0) == 0 ? name.substr(prefix.size()) : name;
  const std::string ex = "experts.";
  if (auto pos = s.find(ex); pos != std::string::npos && s.compare(0, 7, "mlp.sha") != 0) {
    auto end = s.find('.', pos + ex.size());
    s = s.substr(0, pos + ex.size()) + "{e}" + s.substr(end);
  }
  return s;
}

}  // namespace

std::string describe_layers(const ModelConfig& c) {
  const auto table = parameter_table(c);
  const ModelSizes sizes = model_sizes(c);
  std::ostringstream os;
  char line[256];
  os << "model " << (c.name.empty() ? "(unnamed)" : c.name) << "  arch " << arch_name(c.arch)
     << "  layers " << c.num_hidden_layers << "  hidden " << c.hidden_size << "  vocab "
     << c.vocab_size << "\n";
  os << "params total " << human_count(sizes.params_total) << "  active/token "
     << human_count(sizes.params_active);
  if (sizes.params_mtp) os << "  mtp " << human_count(sizes.params_mtp);
  os << "  kv cache " << sizes.kv_cache_bytes_per_token << " B/token (bf16)\n";

  // Layer kinds: runs of consecutive layers with the same block shape.
  auto kind_of = [&](std::int64_t l) -> std::string {
    if (l >= c.num_hidden_layers) return "mtp";
    return c.is_moe_layer(l) ? "moe" : "dense";
  };
  const std::int64_t n_layers = c.num_hidden_layers + c.num_nextn_predict_layers;
  std::int64_t start = 0;
  while (start < n_layers) {
    std::int64_t end = start + 1;
    while (end < n_layers && kind_of(end) == kind_of(start)) ++end;
    std::int64_t block_params = 0;
    std::vector<std::pair<std::string, std::pair<std::vector<std::int64_t>, int>>> rows;
    for (const ParamSpec& p : table) {
      if (p.layer != start) continue;
      block_params += p.numel();
      std::string ln = local_name(p.name, start);
      if (!rows.empty() && rows.back().first == ln) {
        ++rows.back().second.second;
      } else {
        bool merged = false;
        for (auto& r : rows)
          if (r.first == ln) ++r.second.second, merged = true;
        if (!merged) rows.push_back({ln, {p.shape, 1}});
      }
    }
    std::snprintf(line, sizeof line, "\nlayers %lld-%lld (%lld x %s), %s params each\n",
                  static_cast<long long>(start), static_cast<long long>(end - 1),
                  static_cast<long long>(end - start), kind_of(start).c_str(),
                  human_count(block_params).c_str());
    os << line;
    for (const auto& [name, shape_count] : rows) {
      std::string count = shape_count.second > 1 ? " x" + std::to_string(shape_count.second) : "";
      std::snprintf(line, sizeof line, "  %-44s %-16s%s", name.c_str(),
                    shape_str(shape_count.first).c_str(), count.c_str());
      std::string row = line;
      row.erase(row.find_last_not_of(' ') + 1);
      os << row << '\n';
    }
    start = end;
  }
  os << "\nother\n";
  for (const ParamSpec& p : table) {
    if (p.layer >= 0) continue;
    std::snprintf(line, sizeof line, "  %-44s %s\n", p.name.c_str(), shape_str(p.shape).c_str());
    os << line;
  }
  if (c.tie_word_embeddings) os << "  lm_head.weight                               (tied to model.embed_tokens.weight)\n";
  return os.str();
}

}  // namespace crucible
