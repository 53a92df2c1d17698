// checkpoints/hf_config.cpp: Hugging Face config.json reading and writing.
//
// Invariant: model_config_from_hf(model_config_to_hf(c)) == c for every field that
// config.json carries. Unknown keys are ignored (config.json files carry many
// loader-specific keys); known keys with the wrong type are errors naming the key.
#include "checkpoints/hf_config.h"

#include <filesystem>

#include "core/error.h"

namespace crucible::checkpoints {

namespace {

class Reader {
 public:
  Reader(const json::Value& root, const std::string& source) : root_(root), source_(source) {
    CRUCIBLE_USER_CHECK(root.is_object(), source_, ": expected a JSON object at the top level, got ",
                        json::kind_name(root.kind()));
  }

  const json::Value* get(const json::Value& obj, const char* key) const {
    const json::Value* v = obj.find(key);
    return (v && !v->is_null()) ? v : nullptr;
  }

  std::int64_t integer(const char* key, std::int64_t fallback, bool required = false,
                       const json::Value* obj = nullptr) const {
    const json::Value* v = get(obj ? *obj : root_, key);
    if (!v) {
      CRUCIBLE_USER_CHECK(!required, source_, ": missing required key '", key, "'");
      return fallback;
    }
    if (v->is_number() && !v->is_integer()) {
      double d = v->as_double();
      CRUCIBLE_USER_CHECK(d == static_cast<double>(static_cast<std::int64_t>(d)), where(*v, key),
                          "expected an integer, got ", d);
      return static_cast<std::int64_t>(d);
    }
    CRUCIBLE_USER_CHECK(v->is_integer(), where(*v, key), "expected an integer, got ",
                        json::kind_name(v->kind()));
    return v->as_int64();
  }

  double number(const char* key, double fallback, const json::Value* obj = nullptr) const {
    const json::Value* v = get(obj ? *obj : root_, key);
    if (!v) return fallback;
    CRUCIBLE_USER_CHECK(v->is_number(), where(*v, key), "expected a number, got ",
                        json::kind_name(v->kind()));
    return v->as_double();
  }

  bool boolean(const char* key, bool fallback) const {
    const json::Value* v = get(root_, key);
    if (!v) return fallback;
    CRUCIBLE_USER_CHECK(v->is_bool(), where(*v, key), "expected true or false, got ",
                        json::kind_name(v->kind()));
    return v->as_bool();
  }

  std::string string(const char* key, std::string fallback, const json::Value* obj = nullptr) const {
    const json::Value* v = get(obj ? *obj : root_, key);
    if (!v) return fallback;
    CRUCIBLE_USER_CHECK(v->is_string(), where(*v, key), "expected a string, got ",
                        json::kind_name(v->kind()));
    return v->as_string();
  }

  // eos_token_id may be one id or a list (Llama 3.1); the first is the model's.
  std::int64_t token_id(const char* key) const {
    const json::Value* v = get(root_, key);
    if (!v) return -1;
    if (v->is_array()) {
      if (v->size() == 0) return -1;
      const json::Value& first = v->as_array().front();
      CRUCIBLE_USER_CHECK(first.is_integer(), where(first, key), "expected integer token ids");
      return first.as_int64();
    }
    CRUCIBLE_USER_CHECK(v->is_integer(), where(*v, key), "expected an integer token id, got ",
                        json::kind_name(v->kind()));
    return v->as_int64();
  }

  std::string where(const json::Value& v, const char* key) const {
    std::string s = source_;
    if (v.line() > 0) s += ":" + std::to_string(v.line());
    return s + ": key '" + key + "': ";
  }

  const json::Value& root() const { return root_; }
  const std::string& source() const { return source_; }

 private:
  const json::Value& root_;
  const std::string& source_;
};

RopeType parse_rope_type(const std::string& name, const std::string& where) {
  if (name == "default" || name.empty()) return RopeType::Default;
  if (name == "linear") return RopeType::Linear;
  if (name == "llama3") return RopeType::Llama3;
  if (name == "yarn") return RopeType::Yarn;
  CRUCIBLE_USER_CHECK(false, where, ": rope scaling type '", name,
                      "' is not supported (supported: default, linear, llama3, yarn)");
  return RopeType::Default;
}

void read_rope(const Reader& r, ModelConfig& c) {
  const json::Value& root = r.root();
  c.rope.theta = r.number("rope_theta", 10000.0);
  const json::Value* params = r.get(root, "rope_parameters");  // transformers v5
  const json::Value* scaling = r.get(root, "rope_scaling");    // transformers v4
  if (params && params->is_object() && !params->find("rope_type") && params->find("full_attention"))
    params = params->find("full_attention");  // per-layer-type form
  const json::Value* p = params ? params : scaling;
  if (!p) return;
  CRUCIBLE_USER_CHECK(p->is_object(), r.source(), ": '", params ? "rope_parameters" : "rope_scaling",
                      "' must be an object");
  std::string type = r.string("rope_type", "", p);
  if (type.empty()) type = r.string("type", "default", p);
  c.rope.type = parse_rope_type(type, r.source());
  if (params) c.rope.theta = r.number("rope_theta", c.rope.theta, p);
  c.rope.factor = r.number("factor", 1.0, p);
  c.rope.original_max_position_embeddings = r.integer("original_max_position_embeddings", 0, false, p);
  c.rope.low_freq_factor = r.number("low_freq_factor", 1.0, p);
  c.rope.high_freq_factor = r.number("high_freq_factor", 4.0, p);
  c.rope.beta_fast = r.number("beta_fast", 32.0, p);
  c.rope.beta_slow = r.number("beta_slow", 1.0, p);
  c.rope.mscale = r.number("mscale", 1.0, p);
  c.rope.mscale_all_dim = r.number("mscale_all_dim", 0.0, p);
}

}  // namespace

ModelConfig model_config_from_hf(const json::Value& config, const std::string& source) {
  Reader r(config, source);
  ModelConfig c;
  const std::string type = r.string("model_type", "");
  CRUCIBLE_USER_CHECK(!type.empty(), source, ": missing 'model_type'");
  if (type == "deepseek_v3" || type == "deepseek_v2") c.arch = Arch::DeepseekV3;
  else if (type == "qwen2") c.arch = Arch::Qwen2;
  else if (type == "llama") c.arch = Arch::Llama;
  else
    CRUCIBLE_USER_CHECK(false, source, ": model_type '", type,
                        "' is not supported (supported: deepseek_v3, deepseek_v2, qwen2, llama)");
  c.name = r.string("_name_or_path", "");
  c.vocab_size = r.integer("vocab_size", 0, true);
  c.hidden_size = r.integer("hidden_size", 0, true);
  c.num_hidden_layers = r.integer("num_hidden_layers", 0, true);
  c.num_attention_heads = r.integer("num_attention_heads", 0, true);
  c.num_key_value_heads = r.integer("num_key_value_heads", c.num_attention_heads);
  c.intermediate_size = r.integer("intermediate_size", 0, c.arch != Arch::DeepseekV3);
  c.rms_norm_eps = r.number("rms_norm_eps", 1e-6);
  c.max_position_embeddings = r.integer("max_position_embeddings", 4096);
  c.tie_word_embeddings = r.boolean("tie_word_embeddings", false);
  c.initializer_range = r.number("initializer_range", 0.02);
  c.bos_token_id = r.token_id("bos_token_id");
  c.eos_token_id = r.token_id("eos_token_id");
  c.head_dim = r.integer("head_dim", 0);
  // Qwen2 always has q/k/v bias (its config has no key for it); Llama has attention_bias.
  c.attention_bias = c.arch == Arch::Qwen2 ? true : r.boolean("attention_bias", false);
  read_rope(r, c);

  if (c.arch == Arch::DeepseekV3) {
    c.head_dim = 0;  // MLA dims are the qk_*/v_* keys
    c.attention_bias = false;
    c.q_lora_rank = r.integer("q_lora_rank", 0);
    c.kv_lora_rank = r.integer("kv_lora_rank", 0, true);
    c.qk_nope_head_dim = r.integer("qk_nope_head_dim", 0, true);
    c.qk_rope_head_dim = r.integer("qk_rope_head_dim", 0, true);
    c.v_head_dim = r.integer("v_head_dim", 0, true);
    // transformers' flag (default true): the rope dims are in DeepSeek's interleaved pairs,
    // the only layout crucible's MLA computes.
    CRUCIBLE_USER_CHECK(r.boolean("rope_interleave", true), source,
                        ": rope_interleave = false (half-split rotary dims) is not supported; crucible's MLA "
                        "rotates DeepSeek's interleaved pairs");
    c.n_routed_experts = r.integer("n_routed_experts", 0);
    c.n_shared_experts = r.integer("n_shared_experts", 0);
    c.num_experts_per_tok = r.integer("num_experts_per_tok", 0);
    c.moe_intermediate_size = r.integer("moe_intermediate_size", 0);
    c.first_k_dense_replace = r.integer("first_k_dense_replace", 0);
    c.moe_layer_freq = r.integer("moe_layer_freq", 1);
    c.n_group = r.integer("n_group", 1);
    c.topk_group = r.integer("topk_group", 1);
    c.routed_scaling_factor = r.number("routed_scaling_factor", 1.0);
    c.norm_topk_prob = r.boolean("norm_topk_prob", type == "deepseek_v3");
    const std::string scoring = r.string("scoring_func", type == "deepseek_v3" ? "sigmoid" : "softmax");
    CRUCIBLE_USER_CHECK(scoring == "sigmoid" || scoring == "softmax", source, ": scoring_func '",
                        scoring, "' is not supported (sigmoid, softmax)");
    c.scoring_func = scoring == "sigmoid" ? ScoringFunc::Sigmoid : ScoringFunc::Softmax;
    const std::string topk = r.string("topk_method", type == "deepseek_v3" ? "noaux_tc" : "greedy");
    if (topk == "noaux_tc") c.topk_method = TopkMethod::NoauxTc;
    else if (topk == "greedy") c.topk_method = TopkMethod::Greedy;
    else if (topk == "group_limited_greedy") c.topk_method = TopkMethod::GroupLimitedGreedy;
    else CRUCIBLE_USER_CHECK(false, source, ": topk_method '", topk, "' is not supported");
    c.aux_loss_alpha = r.number("aux_loss_alpha", 0.0);
    c.num_nextn_predict_layers = r.integer("num_nextn_predict_layers", 0);
  }
  // Training precision from the stored dtype (transformers v4 `torch_dtype`, v5
  // `dtype`): float32 checkpoints train and score in fp32, others in bf16, and
  // FP8-quantized ones (quantization_config) in the DeepSeek-V3 FP8 recipe.
  std::string dtype = r.string("dtype", "");
  if (dtype.empty()) dtype = r.string("torch_dtype", "bfloat16");
  c.precision = dtype == "float32" ? Precision::Fp32 : Precision::Bf16;
  if (const json::Value* q = r.get(config, "quantization_config"); q && q->is_object())
    if (r.string("quant_method", "", q) == "fp8") c.precision = Precision::Fp8;
  try {
    c.validate();
  } catch (const Error& e) {
    CRUCIBLE_USER_CHECK(false, source, ": ", e.what());
  }
  return c;
}

ModelConfig read_hf_config(const std::string& path) {
  namespace fs = std::filesystem;
  std::string file = fs::is_directory(path) ? (fs::path(path) / "config.json").string() : path;
  CRUCIBLE_USER_CHECK(fs::exists(file), "no Hugging Face config at ", file);
  return model_config_from_hf(json::parse_file(file), file);
}

namespace {
const char* rope_type_name(RopeType t) {
  switch (t) {
    case RopeType::Default: return "default";
    case RopeType::Linear: return "linear";
    case RopeType::Llama3: return "llama3";
    case RopeType::Yarn: return "yarn";
  }
  return "default";
}
}  // namespace

json::Value model_config_to_hf(const ModelConfig& c) {
  json::Value j = json::Value::object();
  const bool ds = c.arch == Arch::DeepseekV3;
  const char* arch_class = ds ? "DeepseekV3ForCausalLM"
                           : c.arch == Arch::Qwen2 ? "Qwen2ForCausalLM" : "LlamaForCausalLM";
  json::Value archs = json::Value::array();
  archs.push_back(arch_class);
  j.set("architectures", archs);
  j.set("model_type", arch_name(c.arch));
  j.set("vocab_size", c.vocab_size);
  j.set("hidden_size", c.hidden_size);
  j.set("intermediate_size", c.intermediate_size);
  j.set("num_hidden_layers", c.num_hidden_layers);
  j.set("num_attention_heads", c.num_attention_heads);
  j.set("num_key_value_heads", ds ? c.num_attention_heads : c.kv_heads());
  if (!ds) j.set("head_dim", c.attn_head_dim());
  if (c.arch == Arch::Llama) j.set("attention_bias", c.attention_bias);
  j.set("hidden_act", "silu");
  j.set("max_position_embeddings", c.max_position_embeddings);
  j.set("rms_norm_eps", c.rms_norm_eps);
  j.set("initializer_range", c.initializer_range);
  j.set("tie_word_embeddings", c.tie_word_embeddings);
  if (c.bos_token_id >= 0) j.set("bos_token_id", c.bos_token_id);
  if (c.eos_token_id >= 0) j.set("eos_token_id", c.eos_token_id);
  j.set("rope_theta", c.rope.theta);
  if (c.rope.type == RopeType::Default) {
    j.set("rope_scaling", nullptr);
  } else {
    json::Value s = json::Value::object();
    s.set("type", rope_type_name(c.rope.type));
    s.set("rope_type", rope_type_name(c.rope.type));
    s.set("factor", c.rope.factor);
    if (c.rope.original_max_position_embeddings > 0)
      s.set("original_max_position_embeddings", c.rope.original_max_position_embeddings);
    if (c.rope.type == RopeType::Llama3) {
      s.set("low_freq_factor", c.rope.low_freq_factor);
      s.set("high_freq_factor", c.rope.high_freq_factor);
    }
    if (c.rope.type == RopeType::Yarn) {
      s.set("beta_fast", c.rope.beta_fast);
      s.set("beta_slow", c.rope.beta_slow);
      s.set("mscale", c.rope.mscale);
      s.set("mscale_all_dim", c.rope.mscale_all_dim);
    }
    j.set("rope_scaling", s);
  }
  if (ds) {
    j.set("q_lora_rank", c.q_lora_rank > 0 ? json::Value(c.q_lora_rank) : json::Value(nullptr));
    j.set("kv_lora_rank", c.kv_lora_rank);
    j.set("qk_nope_head_dim", c.qk_nope_head_dim);
    j.set("qk_rope_head_dim", c.qk_rope_head_dim);
    j.set("v_head_dim", c.v_head_dim);
    j.set("rope_interleave", true);  // stated, not left to transformers' default
    j.set("n_routed_experts", c.n_routed_experts);
    j.set("n_shared_experts", c.n_shared_experts);
    j.set("num_experts_per_tok", c.num_experts_per_tok);
    j.set("moe_intermediate_size", c.moe_intermediate_size);
    j.set("first_k_dense_replace", c.first_k_dense_replace);
    j.set("moe_layer_freq", c.moe_layer_freq);
    j.set("n_group", c.n_group);
    j.set("topk_group", c.topk_group);
    j.set("routed_scaling_factor", c.routed_scaling_factor);
    j.set("norm_topk_prob", c.norm_topk_prob);
    j.set("scoring_func", c.scoring_func == ScoringFunc::Sigmoid ? "sigmoid" : "softmax");
    j.set("topk_method", c.topk_method == TopkMethod::NoauxTc  ? "noaux_tc"
                         : c.topk_method == TopkMethod::Greedy ? "greedy"
                                                               : "group_limited_greedy");
    j.set("aux_loss_alpha", c.aux_loss_alpha);
    j.set("num_nextn_predict_layers", c.num_nextn_predict_layers);
    j.set("attention_bias", false);
  }
  j.set("torch_dtype", c.precision == Precision::Fp32 ? "float32" : "bfloat16");
  if (c.precision == Precision::Fp8 && ds) {
    json::Value q = json::Value::object();
    q.set("activation_scheme", "dynamic");
    q.set("fmt", "e4m3");
    q.set("quant_method", "fp8");
    json::Value block = json::Value::array();
    block.push_back(128);
    block.push_back(128);
    q.set("weight_block_size", block);
    j.set("quantization_config", q);
  }
  return j;
}

}  // namespace crucible::checkpoints
