// model/model_config.h: the one description of a model, for all three architectures.
//
// Architectures are configurations of one Transformer (DESIGN.md §3):
//   deepseek_v3  MLA (optional q low-rank, joint KV latent + decoupled RoPE key)
//                + first-k dense SwiGLU layers, then DeepSeekMoE; optional MTP.
//                DeepSeek-V2(-Lite) is this architecture with softmax routing,
//                greedy top-k and no q low-rank.
//   qwen2        GQA with q/k/v bias, SwiGLU, tied or untied embeddings.
//   llama        GQA without bias, SwiGLU, Llama-3 RoPE scaling.
// Field names follow Hugging Face config.json so that import/export is a table.
// The parameter table (Hugging Face names and shapes) is derived here too, so the
// sizes `crucible inspect` prints and the arenas the model allocates cannot disagree.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace crucible {

enum class Arch : std::uint8_t { DeepseekV3, Qwen2, Llama };
enum class RopeType : std::uint8_t { Default, Linear, Llama3, Yarn };
enum class ScoringFunc : std::uint8_t { Sigmoid, Softmax };
enum class TopkMethod : std::uint8_t { NoauxTc, Greedy, GroupLimitedGreedy };
enum class Precision : std::uint8_t { Fp32, Bf16, Fp8 };

const char* arch_name(Arch a);  // "deepseek_v3", "qwen2", "llama"

struct RopeConfig {
  double theta = 10000.0;
  RopeType type = RopeType::Default;
  double factor = 1.0;                              // linear, llama3, yarn
  std::int64_t original_max_position_embeddings = 0;  // llama3, yarn (0 = unset)
  double low_freq_factor = 1.0;                     // llama3
  double high_freq_factor = 4.0;                    // llama3
  double beta_fast = 32.0;                          // yarn
  double beta_slow = 1.0;                           // yarn
  double mscale = 1.0;                              // yarn (DeepSeek's keys)
  double mscale_all_dim = 0.0;                      // yarn; 0 = unset
};

struct ModelConfig {
  Arch arch = Arch::Llama;
  std::string name;  // free-form label ("deepseek-v3", "tiny-moe")

  // Shared by all architectures.
  std::int64_t vocab_size = 0;
  std::int64_t hidden_size = 0;
  std::int64_t num_hidden_layers = 0;
  std::int64_t num_attention_heads = 0;
  std::int64_t intermediate_size = 0;  // dense SwiGLU width
  double rms_norm_eps = 1e-6;
  std::int64_t max_position_embeddings = 4096;
  bool tie_word_embeddings = false;
  double initializer_range = 0.02;
  RopeConfig rope;
  std::int64_t bos_token_id = -1;  // -1 = none
  std::int64_t eos_token_id = -1;
  Precision precision = Precision::Bf16;

  // GQA (qwen2, llama).
  std::int64_t num_key_value_heads = 0;  // 0 = num_attention_heads
  std::int64_t head_dim = 0;             // 0 = hidden_size / num_attention_heads
  bool attention_bias = false;           // q/k/v bias (qwen2: true)

  // MLA (deepseek_v3).
  std::int64_t q_lora_rank = 0;  // 0 = plain q_proj (DeepSeek-V2-Lite)
  std::int64_t kv_lora_rank = 0;
  std::int64_t qk_nope_head_dim = 0;
  std::int64_t qk_rope_head_dim = 0;
  std::int64_t v_head_dim = 0;

  // DeepSeekMoE (deepseek_v3); n_routed_experts = 0 means every layer is dense.
  std::int64_t n_routed_experts = 0;
  std::int64_t n_shared_experts = 0;
  std::int64_t num_experts_per_tok = 0;
  std::int64_t moe_intermediate_size = 0;
  std::int64_t first_k_dense_replace = 0;
  std::int64_t moe_layer_freq = 1;
  std::int64_t n_group = 1;
  std::int64_t topk_group = 1;
  double routed_scaling_factor = 1.0;
  bool norm_topk_prob = true;
  ScoringFunc scoring_func = ScoringFunc::Sigmoid;
  TopkMethod topk_method = TopkMethod::NoauxTc;
  double aux_loss_alpha = 0.0;     // sequence-wise balance loss weight
  double bias_update_speed = 0.0;  // aux-loss-free bias step gamma

  // Multi-token prediction (deepseek_v3).
  std::int64_t num_nextn_predict_layers = 0;
  double mtp_loss_weight = 0.3;

  // Derived helpers.
  bool is_mla() const { return arch == Arch::DeepseekV3; }
  std::int64_t kv_heads() const { return num_key_value_heads > 0 ? num_key_value_heads : num_attention_heads; }
  std::int64_t attn_head_dim() const { return head_dim > 0 ? head_dim : hidden_size / num_attention_heads; }
  std::int64_t qk_head_dim() const { return qk_nope_head_dim + qk_rope_head_dim; }
  bool is_moe_layer(std::int64_t layer) const;
  // Softmax scale of attention: 1/sqrt(d_qk), times mscale^2 under DeepSeek YaRN.
  double softmax_scale() const;

  // Throws crucible::Error naming the first inconsistent field.
  void validate() const;
};

// One named parameter (Hugging Face name) and its shape.
struct ParamSpec {
  std::string name;
  std::vector<std::int64_t> shape;
  std::int64_t layer = -1;  // -1: not in a decoder layer (embedding, final norm, head)
  // Fraction of this tensor one token's forward touches: 1 for everything but
  // routed experts, which are touched by top-k of n_routed tokens' routes. Kept as
  // a flag so counting stays exact integers.
  bool routed_expert = false;
  bool mtp = false;  // belongs to the multi-token-prediction module
  bool fp8 = false;  // a linear layer that runs in FP8 under precision = "fp8"
  std::int64_t numel() const;
};

// Every parameter of the model in the Hugging Face naming, in a stable order
// (embedding, layers 0..L-1, [MTP], final norm, head). Tied embeddings have no
// lm_head entry.
std::vector<ParamSpec> parameter_table(const ModelConfig& c);

struct ModelSizes {
  std::int64_t params_total = 0;   // main model, MTP excluded
  std::int64_t params_active = 0;  // per token: all but the unselected routed experts
  std::int64_t params_mtp = 0;     // the MTP module's own parameters
  std::int64_t params_embedding = 0;
  std::int64_t kv_cache_bytes_per_token = 0;  // BF16 cache, all layers
};

ModelSizes model_sizes(const ModelConfig& c);

// The per-layer table for `crucible inspect` (human form).
std::string describe_layers(const ModelConfig& c);

}  // namespace crucible
