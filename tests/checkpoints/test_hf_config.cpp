// Hugging Face config.json: both rotary dialects, DeepSeek keys, round trip, errors.
#include "checkpoints/hf_config.h"
#include "core/error.h"
#include "tests/catch.h"

using namespace crucible;
using checkpoints::model_config_from_hf;
using checkpoints::model_config_to_hf;

namespace {

// DeepSeek-V3's config.json (the keys crucible reads; values per reference §1.1).
const char* kDeepseekV3 = R"({
  "architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3",
  "vocab_size": 129280, "hidden_size": 7168, "intermediate_size": 18432,
  "moe_intermediate_size": 2048, "num_hidden_layers": 61, "num_nextn_predict_layers": 1,
  "num_attention_heads": 128, "num_key_value_heads": 128, "n_shared_experts": 1,
  "n_routed_experts": 256, "routed_scaling_factor": 2.5, "kv_lora_rank": 512,
  "q_lora_rank": 1536, "qk_rope_head_dim": 64, "v_head_dim": 128, "qk_nope_head_dim": 128,
  "topk_method": "noaux_tc", "n_group": 8, "topk_group": 4, "num_experts_per_tok": 8,
  "moe_layer_freq": 1, "first_k_dense_replace": 3, "norm_topk_prob": true,
  "scoring_func": "sigmoid", "hidden_act": "silu", "max_position_embeddings": 163840,
  "initializer_range": 0.02, "rms_norm_eps": 1e-06, "use_cache": true,
  "bos_token_id": 0, "eos_token_id": 1, "tie_word_embeddings": false, "rope_theta": 10000,
  "rope_scaling": {"beta_fast": 32, "beta_slow": 1, "factor": 40, "mscale": 1.0,
    "mscale_all_dim": 1.0, "original_max_position_embeddings": 4096, "type": "yarn"},
  "attention_bias": false, "torch_dtype": "bfloat16",
  "quantization_config": {"activation_scheme": "dynamic", "fmt": "e4m3",
    "quant_method": "fp8", "weight_block_size": [128, 128]}
})";

ModelConfig parse(const std::string& text) {
  return model_config_from_hf(json::parse(text, "config.json"), "config.json");
}

}  // namespace

TEST_CASE("DeepSeek-V3 config.json reads every MLA/MoE key", "[hf_config]") {
  const ModelConfig c = parse(kDeepseekV3);
  REQUIRE(c.arch == Arch::DeepseekV3);
  REQUIRE(c.precision == Precision::Fp8);
  REQUIRE(c.q_lora_rank == 1536);
  REQUIRE(c.kv_lora_rank == 512);
  REQUIRE(c.qk_head_dim() == 192);
  REQUIRE(c.n_group == 8);
  REQUIRE(c.topk_method == TopkMethod::NoauxTc);
  REQUIRE(c.rope.type == RopeType::Yarn);
  REQUIRE(c.rope.factor == 40.0);
  REQUIRE(c.rope.original_max_position_embeddings == 4096);
  REQUIRE(c.num_nextn_predict_layers == 1);
  REQUIRE(model_sizes(c).kv_cache_bytes_per_token == 70272);
}

TEST_CASE("v4 rope_scaling and v5 rope_parameters read the same", "[hf_config]") {
  const std::string common = R"("model_type": "llama", "vocab_size": 1000, "hidden_size": 64,
    "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
    "intermediate_size": 128, "rms_norm_eps": 1e-5, "eos_token_id": [7, 8, 9])";
  const ModelConfig v4 = parse("{" + common + R"(, "rope_theta": 500000.0, "rope_scaling": {
    "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
    "original_max_position_embeddings": 8192}})");
  const ModelConfig v5 = parse("{" + common + R"(, "rope_parameters": {"rope_type": "llama3",
    "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
    "original_max_position_embeddings": 8192}})");
  const ModelConfig v5_by_layer = parse("{" + common + R"(, "rope_parameters": {"full_attention":
    {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
    "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}}})");
  for (const ModelConfig* c : {&v4, &v5, &v5_by_layer}) {
    REQUIRE(c->rope.type == RopeType::Llama3);
    REQUIRE(c->rope.theta == 500000.0);
    REQUIRE(c->rope.factor == 8.0);
    REQUIRE(c->rope.original_max_position_embeddings == 8192);
    REQUIRE(c->eos_token_id == 7);  // a list of EOS ids: the first is the model's
  }
  const ModelConfig plain = parse("{" + common + R"(, "rope_theta": 10000.0, "rope_scaling": null})");
  REQUIRE(plain.rope.type == RopeType::Default);
}

TEST_CASE("Qwen2 configs always have q/k/v bias", "[hf_config]") {
  const ModelConfig c = parse(R"({"model_type": "qwen2", "vocab_size": 151936, "hidden_size": 1536,
    "num_hidden_layers": 28, "num_attention_heads": 12, "num_key_value_heads": 2,
    "intermediate_size": 8960, "tie_word_embeddings": true, "rope_theta": 10000.0})");
  REQUIRE(c.attention_bias);
  REQUIRE(c.tie_word_embeddings);
  REQUIRE(std::abs(static_cast<double>(model_sizes(c).params_total) / 1.544e9 - 1) < 0.005);
}

TEST_CASE("to_hf then from_hf keeps the model", "[hf_config]") {
  const ModelConfig a = parse(kDeepseekV3);
  const json::Value j = model_config_to_hf(a);
  REQUIRE(j.at("rope_scaling").at("type").as_string() == "yarn");  // v4 keys are written
  REQUIRE(j.find("rope_parameters") == nullptr);
  REQUIRE(j.at("rope_interleave").as_bool());  // transformers' DeepSeek-V3 flag, stated explicitly
  const ModelConfig b = parse(json::dump(j, 2));
  REQUIRE(b.arch == a.arch);
  REQUIRE(b.precision == a.precision);
  REQUIRE(b.rope.mscale_all_dim == a.rope.mscale_all_dim);
  REQUIRE(b.n_routed_experts == a.n_routed_experts);
  REQUIRE(b.topk_group == a.topk_group);
  const auto ta = parameter_table(a), tb = parameter_table(b);
  REQUIRE(ta.size() == tb.size());
  for (std::size_t i = 0; i < ta.size(); ++i) {
    REQUIRE(ta[i].name == tb[i].name);
    REQUIRE(ta[i].shape == tb[i].shape);
  }
}

TEST_CASE("bad config.json values are errors naming the key and line", "[hf_config]") {
  REQUIRE_THROWS_WITH(parse(R"({"model_type": "llama",
    "vocab_size": "many"})"), Catch::Contains("config.json:2") && Catch::Contains("vocab_size"));
  REQUIRE_THROWS_WITH(parse(R"({"model_type": "llama"})"),
                      Catch::Contains("missing required key 'vocab_size'"));
  REQUIRE_THROWS_WITH(parse(R"({"model_type": "gpt2"})"), Catch::Contains("gpt2"));
  REQUIRE_THROWS_WITH(parse(R"([1, 2])"), Catch::Contains("object"));
  REQUIRE_THROWS_WITH(parse(R"({"model_type": "llama", "vocab_size": 10, "hidden_size": 64,
    "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 3,
    "intermediate_size": 8})"), Catch::Contains("num_key_value_heads"));
  REQUIRE_THROWS_WITH(parse(R"({"model_type": "llama", "vocab_size": 10, "hidden_size": 64,
    "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 8,
    "rope_scaling": {"type": "dynamic", "factor": 2.0}})"), Catch::Contains("dynamic"));
  // A DeepSeek config whose rope dims are half-split (transformers' rope_interleave = false).
  std::string half_split = kDeepseekV3;
  half_split.insert(half_split.rfind('}'), R"(, "rope_interleave": false)");
  REQUIRE_THROWS_WITH(parse(half_split), Catch::Contains("rope_interleave"));
  half_split.replace(half_split.find("\"rope_interleave\": false"), 24, "\"rope_interleave\": true ");
  REQUIRE(parse(half_split).arch == Arch::DeepseekV3);
}
