// DeepSeek-V3 FP8 checkpoints: E4M3 weights with 128x128 `weight_scale_inv` blocks
// import by dequantization, exactly.
#include <filesystem>
#include <fstream>

#include "checkpoints/hf_config.h"
#include "checkpoints/model_file.h"
#include "checkpoints/safetensors.h"
#include "core/fp8_tensor.h"
#include "core/json.h"
#include "tests/catch.h"

using namespace crucible;
using namespace crucible::checkpoints;
namespace fs = std::filesystem;

TEST_CASE("an FP8 block-scaled DeepSeek-V3 directory imports to the dequantized weights", "[fp8][import]") {
  const std::string src = std::string(CRUCIBLE_SOURCE_DIR) + "/tests/data/models/deepseek_v3";
  auto ref = load_model(src);
  ModelConfig c = ref->config();
  c.precision = Precision::Fp8;

  // Write the FP8 form the way DeepSeek's release does: linear weights E4M3 plus
  // FP32 scale_inv blocks; embedding, head, norms, router and bias stay as they are.
  const fs::path dir = fs::temp_directory_path() / "crucible_fp8_import";
  fs::remove_all(dir);
  fs::create_directories(dir);
  NamedTensors tensors;
  std::vector<std::pair<std::string, Tensor>> expected;
  int quantized = 0;
  for (const ParamSpec& p : parameter_table(c)) {
    const Tensor w = ref->param(p.name);
    if (p.fp8) {
      const Fp8Tensor q = quantize_fp8(w, ScaleLayout::Block128x128);
      tensors.emplace_back(p.name, q.q);
      tensors.emplace_back(p.name + "_scale_inv", q.scale);
      expected.emplace_back(p.name, dequantize_fp8(q));
      ++quantized;
    } else {
      tensors.emplace_back(p.name, w);
      expected.emplace_back(p.name, w);
    }
  }
  REQUIRE(quantized > 20);
  write_safetensors((dir / "model.safetensors").string(), tensors);
  std::ofstream(dir / "config.json") << json::dump(model_config_to_hf(c), 2);

  const StoredModel stored = describe_stored(dir.string());
  CHECK(stored.fp8_tensors == quantized);
  CHECK(stored.config.precision == Precision::Fp8);

  auto got = load_model(dir.string());
  REQUIRE(got->config().precision == Precision::Fp8);
  std::int64_t mismatches = 0, changed = 0;
  for (const auto& [name, want] : expected) {
    const Tensor g = got->param(name);
    const Tensor orig = ref->param(name);
    for (std::int64_t i = 0; i < want.numel(); ++i) {
      mismatches += g.data<float>()[i] != want.data<float>()[i];
      changed += want.data<float>()[i] != orig.data<float>()[i];
    }
  }
  CHECK(mismatches == 0);
  CHECK(changed > 0);  // quantization really happened

  // A scale tensor of the wrong block shape is rejected with the tensor's name.
  for (auto& [name, t] : tensors)
    if (name == "model.layers.0.self_attn.o_proj.weight_scale_inv") t = Tensor(Shape{2, 2}, DType::F32);
  write_safetensors((dir / "model.safetensors").string(), tensors);
  REQUIRE_THROWS_WITH(load_model(dir.string()), Catch::Contains("o_proj") || Catch::Contains("scale"));
}
