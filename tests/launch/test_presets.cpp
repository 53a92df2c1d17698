// The shipped model presets: sizes against published figures (issue 2), and that
// every preset loads and validates.
#include <cmath>
#include <filesystem>
#include <set>

#include "launch/model_config_fields.h"
#include "tests/catch.h"

using namespace crucible;

namespace {
ModelConfig preset(const std::string& name) {
  return launch::load_model_config(std::string(CRUCIBLE_SOURCE_DIR) + "/configs/models/" + name + ".toml");
}
void check_within(double got, double want, double rel) {
  INFO("got " << got << ", want " << want);
  REQUIRE(std::abs(got - want) <= rel * want);
}
}  // namespace

TEST_CASE("DeepSeek-V3 sizes: 671.03B total, 37.55B active, 70272 B KV per token", "[presets]") {
  const ModelConfig c = preset("deepseek-v3");
  const ModelSizes s = model_sizes(c);
  check_within(static_cast<double>(s.params_total), 671.03e9, 0.005);
  check_within(static_cast<double>(s.params_active), 37.55e9, 0.005);
  REQUIRE(s.kv_cache_bytes_per_token == 70272);
  // Exact recount from the shapes of reference/deepseek_v3_fp8.md §1.2.
  const std::int64_t H = 7168, V = 129280;
  const std::int64_t attn = 1536 * H + 1536 + 24576 * 1536 + 576 * H + 512 + 32768 * 512 + H * 16384;
  const std::int64_t norms = 2 * H;
  const std::int64_t dense_ffn = 3 * 18432 * H;
  const std::int64_t expert = 3 * 2048 * H;
  const std::int64_t moe_ffn = 257 * expert + 256 * H + 256;
  const std::int64_t total = 2 * V * H + H + 61 * (attn + norms) + 3 * dense_ffn + 58 * moe_ffn;
  REQUIRE(s.params_total == total);
  REQUIRE(s.params_active == total - 58 * 248 * expert);
  // The MTP module (one MoE block + eh_proj + 3 norms) is counted apart: ~11.6B.
  REQUIRE(s.params_mtp == attn + norms + moe_ffn + 2 * H * H + 3 * H);
  // MLA softmax scale under YaRN (mscale_all_dim 1, factor 40): 0.1352338.
  REQUIRE(c.softmax_scale() == Approx(0.1352338).epsilon(1e-6));
}

TEST_CASE("dense and small MoE presets match their published sizes within 0.5%", "[presets]") {
  check_within(static_cast<double>(model_sizes(preset("qwen2.5-7b")).params_total), 7.616e9, 0.005);
  check_within(static_cast<double>(model_sizes(preset("llama-3.1-8b")).params_total), 8.030e9, 0.005);
  const ModelSizes math = model_sizes(preset("qwen2.5-math-1.5b"));
  check_within(static_cast<double>(math.params_total), 1.544e9, 0.005);
  REQUIRE(math.params_active == math.params_total);  // dense: every weight is touched
  const ModelSizes lite = model_sizes(preset("deepseek-v2-lite"));
  check_within(static_cast<double>(lite.params_total), 15.71e9, 0.005);
  check_within(static_cast<double>(lite.params_active), 2.66e9, 0.005);
  // V2-Lite: 27 layers x (512 + 64) latent = 31104 B per token in BF16.
  REQUIRE(lite.kv_cache_bytes_per_token == 27 * 576 * 2);
  // Llama-3.1-8B GQA cache: 2 (K,V) x 8 heads x 128 x 32 layers x 2 bytes.
  REQUIRE(model_sizes(preset("llama-3.1-8b")).kv_cache_bytes_per_token == 2 * 8 * 128 * 32 * 2);
}

TEST_CASE("every preset in configs/models loads and validates", "[presets]") {
  int n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(std::string(CRUCIBLE_SOURCE_DIR) + "/configs/models")) {
    if (entry.path().extension() != ".toml") continue;
    INFO(entry.path());
    const ModelConfig c = launch::load_model_config(entry.path().string());
    REQUIRE(model_sizes(c).params_total > 0);
    ++n;
  }
  REQUIRE(n >= 8);
}

TEST_CASE("tied embeddings have no lm_head; the tiny teacher has every DeepSeek block", "[presets]") {
  const auto qwen = parameter_table(preset("tiny-qwen2"));
  for (const auto& p : qwen) REQUIRE(p.name != "lm_head.weight");
  bool has_bias = false;
  for (const auto& p : qwen) has_bias |= p.name == "model.layers.0.self_attn.q_proj.bias";
  REQUIRE(has_bias);

  const ModelConfig t = preset("tiny-deepseek-v3");
  REQUIRE_FALSE(t.is_moe_layer(0));
  REQUIRE(t.is_moe_layer(1));
  std::set<std::string> names;
  for (const auto& p : parameter_table(t)) names.insert(p.name);
  for (const char* n : {"model.layers.0.mlp.gate_proj.weight", "model.layers.1.mlp.gate.weight",
                        "model.layers.1.mlp.gate.e_score_correction_bias",
                        "model.layers.1.mlp.experts.7.down_proj.weight",
                        "model.layers.1.mlp.shared_experts.up_proj.weight",
                        "model.layers.2.self_attn.q_a_layernorm.weight",
                        "model.layers.3.self_attn.kv_b_proj.weight", "model.layers.4.eh_proj.weight",
                        "model.layers.4.shared_head.norm.weight", "lm_head.weight"})
    REQUIRE(names.count(n) == 1);
}
