// launch/model_config_fields.cpp: the TOML description of ModelConfig.
//
// Keys are the Hugging Face config.json names, so a preset reads like the model's
// config.json; rotary settings live in a [model.rope] table.
#include "launch/model_config_fields.h"

#include <filesystem>

#include "checkpoints/hf_config.h"
#include "core/error.h"

namespace crucible::launch {

namespace {
constexpr std::pair<std::string_view, Arch> kArchNames[] = {
    {"deepseek_v3", Arch::DeepseekV3}, {"qwen2", Arch::Qwen2}, {"llama", Arch::Llama}};
constexpr std::pair<std::string_view, RopeType> kRopeNames[] = {
    {"default", RopeType::Default}, {"linear", RopeType::Linear},
    {"llama3", RopeType::Llama3}, {"yarn", RopeType::Yarn}};
constexpr std::pair<std::string_view, ScoringFunc> kScoringNames[] = {
    {"sigmoid", ScoringFunc::Sigmoid}, {"softmax", ScoringFunc::Softmax}};
constexpr std::pair<std::string_view, TopkMethod> kTopkNames[] = {
    {"noaux_tc", TopkMethod::NoauxTc}, {"greedy", TopkMethod::Greedy},
    {"group_limited_greedy", TopkMethod::GroupLimitedGreedy}};
constexpr std::pair<std::string_view, Precision> kPrecisionNames[] = {
    {"fp32", Precision::Fp32}, {"bf16", Precision::Bf16}, {"fp8", Precision::Fp8}};

const Range kPositive{.min = 0, .min_exclusive = true};
const Range kNonNegative{.min = 0};
const Range kTokenId{.min = -1};

void describe_rope(Fields& f, RopeConfig& r) {
  f.field("theta", r.theta, "RoPE base frequency (rope_theta)", kPositive);
  f.enumeration("type", r.type, kRopeNames, "rotary scaling: default, linear, llama3 or yarn");
  f.field("factor", r.factor, "context extension factor", Range{.min = 1});
  f.field("original_max_position_embeddings", r.original_max_position_embeddings,
          "pre-extension context (llama3, yarn)", kNonNegative);
  f.field("low_freq_factor", r.low_freq_factor, "llama3 low-frequency factor", kPositive);
  f.field("high_freq_factor", r.high_freq_factor, "llama3 high-frequency factor", kPositive);
  f.field("beta_fast", r.beta_fast, "yarn beta_fast", kPositive);
  f.field("beta_slow", r.beta_slow, "yarn beta_slow", kPositive);
  f.field("mscale", r.mscale, "yarn mscale", kNonNegative);
  f.field("mscale_all_dim", r.mscale_all_dim, "yarn mscale_all_dim (0 = unset)", kNonNegative);
}
}  // namespace

void describe(Fields& f, ModelConfig& c) {
  f.field("name", c.name, "label for logs and exports");
  f.enumeration("arch", c.arch, kArchNames, "architecture: deepseek_v3, qwen2 or llama");
  f.enumeration("precision", c.precision, kPrecisionNames, "fp32, bf16 or fp8 (DeepSeek-V3 recipe)");
  f.field("vocab_size", c.vocab_size, "vocabulary size", kPositive);
  f.field("hidden_size", c.hidden_size, "model width", kPositive);
  f.field("num_hidden_layers", c.num_hidden_layers, "decoder layers", kPositive);
  f.field("num_attention_heads", c.num_attention_heads, "query heads", kPositive);
  f.field("num_key_value_heads", c.num_key_value_heads, "GQA kv heads (0 = num_attention_heads)", kNonNegative);
  f.field("head_dim", c.head_dim, "GQA head dim (0 = hidden_size / num_attention_heads)", kNonNegative);
  f.field("attention_bias", c.attention_bias, "q/k/v projection bias (qwen2)");
  f.field("intermediate_size", c.intermediate_size, "dense SwiGLU width", kNonNegative);
  f.field("rms_norm_eps", c.rms_norm_eps, "RMSNorm epsilon", kPositive);
  f.field("max_position_embeddings", c.max_position_embeddings, "longest context", kPositive);
  f.field("tie_word_embeddings", c.tie_word_embeddings, "LM head shares the embedding");
  f.field("initializer_range", c.initializer_range, "init std", kPositive);
  f.field("bos_token_id", c.bos_token_id, "BOS id (-1 = none)", kTokenId);
  f.field("eos_token_id", c.eos_token_id, "EOS id (-1 = none)", kTokenId);
  f.field("q_lora_rank", c.q_lora_rank, "MLA query low rank (0 = plain q_proj)", kNonNegative);
  f.field("kv_lora_rank", c.kv_lora_rank, "MLA KV latent width", kNonNegative);
  f.field("qk_nope_head_dim", c.qk_nope_head_dim, "MLA non-rotary q/k dims per head", kNonNegative);
  f.field("qk_rope_head_dim", c.qk_rope_head_dim, "MLA decoupled RoPE dims", kNonNegative);
  f.field("v_head_dim", c.v_head_dim, "MLA value dims per head", kNonNegative);
  f.field("n_routed_experts", c.n_routed_experts, "routed experts per MoE layer (0 = dense)", kNonNegative);
  f.field("n_shared_experts", c.n_shared_experts, "shared experts per MoE layer", kNonNegative);
  f.field("num_experts_per_tok", c.num_experts_per_tok, "routed experts per token (top-k)", kNonNegative);
  f.field("moe_intermediate_size", c.moe_intermediate_size, "expert SwiGLU width", kNonNegative);
  f.field("first_k_dense_replace", c.first_k_dense_replace, "leading dense layers", kNonNegative);
  f.field("moe_layer_freq", c.moe_layer_freq, "MoE every n-th layer", Range{.min = 1});
  f.field("n_group", c.n_group, "expert groups for group-limited routing", Range{.min = 1});
  f.field("topk_group", c.topk_group, "groups kept per token", Range{.min = 1});
  f.field("routed_scaling_factor", c.routed_scaling_factor, "scale on routed weights", kPositive);
  f.field("norm_topk_prob", c.norm_topk_prob, "normalize the selected routing weights");
  f.enumeration("scoring_func", c.scoring_func, kScoringNames, "router scores: sigmoid or softmax");
  f.enumeration("topk_method", c.topk_method, kTopkNames, "noaux_tc, greedy or group_limited_greedy");
  f.field("aux_loss_alpha", c.aux_loss_alpha, "sequence-wise balance loss weight", kNonNegative);
  f.field("bias_update_speed", c.bias_update_speed, "aux-loss-free bias step gamma", kNonNegative);
  f.field("num_nextn_predict_layers", c.num_nextn_predict_layers, "MTP depth", kNonNegative);
  f.field("mtp_loss_weight", c.mtp_loss_weight, "MTP loss weight lambda", kNonNegative);
  f.section("rope", [&](Fields& s) { describe_rope(s, c.rope); });
}

ModelConfig load_model_config(const std::string& path, const std::vector<std::string>& overrides) {
  namespace fs = std::filesystem;
  CRUCIBLE_USER_CHECK(fs::exists(path), "model file not found: ", path);
  const bool is_toml = fs::path(path).extension() == ".toml";
  if (!is_toml) {
    CRUCIBLE_USER_CHECK(overrides.empty(), "--set applies to TOML model files only, not ", path);
    return checkpoints::read_hf_config(path);
  }
  TomlSource doc = parse_toml_file(path);
  for (const std::string& o : overrides) apply_override(doc, o);
  ModelConfig c;
  read_toml(doc, "model", [&](Fields& f) { describe(f, c); });
  try {
    c.validate();
  } catch (const Error& e) {
    CRUCIBLE_USER_CHECK(false, path, ": [model]: ", e.what());
  }
  return c;
}

}  // namespace crucible::launch
