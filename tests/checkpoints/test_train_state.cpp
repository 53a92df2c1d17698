// Training-state checkpoints: exact round trip, last-K retention, damaged files
// detected and skipped, model files rejected when truncated.
#include <filesystem>
#include <fstream>

#include "checkpoints/h5_bundle.h"
#include "checkpoints/model_file.h"
#include "checkpoints/train_state.h"
#include "launch/model_config_fields.h"
#include "tests/catch.h"

using namespace crucible;
using namespace crucible::checkpoints;
namespace fs = std::filesystem;

namespace {

ModelConfig tiny() {
  return launch::load_model_config(std::string(CRUCIBLE_SOURCE_DIR) + "/configs/models/tiny-qwen2.toml");
}

bool same_bytes(const Arena& a, const Arena& b) {
  return a.bytes() == b.bytes() &&
         std::equal(a.flat().data<std::uint8_t>(), a.flat().data<std::uint8_t>() + a.bytes(), b.flat().data<std::uint8_t>());
}

void damage(const std::string& path, std::size_t at_fraction_percent) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(0, std::ios::end);
  const auto size = static_cast<std::size_t>(f.tellg());
  const std::size_t at = size * at_fraction_percent / 100;
  f.seekp(static_cast<std::streamoff>(at));
  const char junk[64] = {'x', 'y', 'z'};
  f.write(junk, sizeof junk);
}

}  // namespace

TEST_CASE("training state round-trips exactly, with BF16 moments", "[train_state]") {
  const fs::path dir = fs::temp_directory_path() / "crucible_ts_roundtrip";
  fs::remove_all(dir);
  ModelWeights w(tiny(), Device::cpu());
  w.init_random(3);
  const Layout half = w.layout().with_dtype(DType::BF16);
  Arena m(half, Device::cpu(), "m"), v(half, Device::cpu(), "v");
  for (std::size_t i = 0; i < m.bytes(); ++i) m.flat().data<std::uint8_t>()[i] = static_cast<std::uint8_t>(i * 7);
  for (std::size_t i = 0; i < v.bytes(); ++i) v.flat().data<std::uint8_t>()[i] = static_cast<std::uint8_t>(i * 13);
  TrainState s{"grpo", 2, 17, "[run]\nseed = 1\n", R"({"rng": 12345, "cursor": [3, 4]})"};
  CheckpointDir ckpt(dir.string(), 2);
  const std::string path = ckpt.save(w, {&m, &v}, s);
  REQUIRE(fs::exists(path));
  REQUIRE_FALSE(fs::exists(path + ".tmp"));

  ModelWeights w2(tiny(), Device::cpu());
  Arena m2(half, Device::cpu(), "m"), v2(half, Device::cpu(), "v");
  const TrainState back = load_train_state(path, w2, {&m2, &v2});
  CHECK(back.stage == "grpo");
  CHECK(back.stage_index == 2);
  CHECK(back.step == 17);
  CHECK(back.run_config == s.run_config);
  CHECK(back.resume_json == s.resume_json);
  CHECK(same_bytes(w.params(), w2.params()));
  // Moments: only the tensor bytes are stored (not the alignment padding).
  for (const auto& e : half.entries()) {
    const Tensor a = m.view(e.name), b = m2.view(e.name);
    CHECK(std::equal(a.data<std::uint16_t>(), a.data<std::uint16_t>() + a.numel(), b.data<std::uint16_t>()));
  }
  // A training checkpoint also loads as a model.
  auto as_model = load_model(path);
  CHECK(same_bytes(as_model->params(), w.params()));
}

TEST_CASE("the last K checkpoints are kept; a damaged newest one is skipped for the previous", "[train_state]") {
  const fs::path dir = fs::temp_directory_path() / "crucible_ts_keep";
  fs::remove_all(dir);
  ModelWeights w(tiny(), Device::cpu());
  w.init_random(1);
  CheckpointDir ckpt(dir.string(), 2);
  for (int step : {10, 20, 30}) ckpt.save(w, {}, TrainState{"sft", 0, step, "", "{}"});
  const auto kept = ckpt.list("sft");
  REQUIRE(kept.size() == 2);
  CHECK(kept[0].ends_with("sft-step000020.h5"));
  CHECK(kept[1].ends_with("sft-step000030.h5"));
  CHECK(ckpt.latest_good("sft").value() == kept[1]);

  damage(kept[1], 60);  // inside the weight data
  std::vector<std::string> skipped;
  const auto good = ckpt.latest_good("sft", &skipped);
  REQUIRE(good.has_value());
  CHECK(*good == kept[0]);
  REQUIRE(skipped.size() == 1);
  CHECK_THAT(skipped[0], Catch::Contains("step000030"));

  // A truncated checkpoint is rejected with its path, never half-loaded.
  fs::resize_file(kept[0], fs::file_size(kept[0]) / 2);
  CHECK_FALSE(ckpt.latest_good("sft").has_value());
  REQUIRE_THROWS_WITH(load_model(kept[0]), Catch::Contains(kept[0]));
}

TEST_CASE("a model file with a flipped byte is detected by its checksums", "[train_state]") {
  const fs::path path = fs::temp_directory_path() / "crucible_damaged_model.h5";
  ModelWeights w(tiny(), Device::cpu());
  w.init_random(2);
  save_model(path.string(), w);
  REQUIRE_NOTHROW(load_model(path.string()));
  damage(path.string(), 50);
  std::string reason;
  CHECK_FALSE(verify_checkpoint(path.string(), &reason));
  REQUIRE_THROWS_WITH(load_model(path.string()), Catch::Contains(path.string()));
}

TEST_CASE("an HDF5 dataset is read only into the dtype it was written as", "[checkpoint]") {
  const std::string path = (fs::temp_directory_path() / "crucible_dtype_check.h5").string();
  Tensor moments(Shape{4}, DType::BF16, Device::cpu(), "m");
  H5Bundle b;
  b.tensors.emplace_back("optimizer/m", moments);
  write_h5_bundle(path, b);
  H5Reader r(path);
  Tensor as_f32(Shape{4}, DType::F32, Device::cpu(), "m");
  REQUIRE_THROWS_WITH(r.read("optimizer/m", as_f32), Catch::Contains("'optimizer/m' holds bf16 values, expected f32"));
  Tensor as_bf16(Shape{4}, DType::BF16, Device::cpu(), "m");
  r.read("optimizer/m", as_bf16);  // the written dtype reads back
  fs::remove(path);
}
