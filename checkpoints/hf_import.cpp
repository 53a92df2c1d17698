// checkpoints/hf_import.cpp: HF directory -> FP32 master weights (see hf_import.h).
#include "checkpoints/hf_import.h"

#include "checkpoints/hf_config.h"
#include "checkpoints/safetensors.h"
#include "core/fp8_tensor.h"
#include "core/log.h"

namespace crucible::checkpoints {

std::unique_ptr<ModelWeights> import_hf_model(const std::string& dir, bool with_grads) {
  ModelConfig config = read_hf_config(dir);
  const SafetensorsIndex index = SafetensorsIndex::open(dir);
  if (config.num_nextn_predict_layers > 0 &&
      !index.contains("model.layers." + std::to_string(config.num_hidden_layers) + ".eh_proj.weight")) {
    log_warn(dir, ": config has ", config.num_nextn_predict_layers,
             " MTP layer(s) but the weights hold none; importing without MTP");
    config.num_nextn_predict_layers = 0;
  }
  auto weights = std::make_unique<ModelWeights>(config, Device::cpu(), with_grads);
  std::size_t fp8 = 0;
  for (const auto& e : weights->layout().entries()) {
    CRUCIBLE_USER_CHECK(index.contains(e.name), dir, ": tensor '", e.name, "' is missing (the config ",
                        "needs it; shape ", e.shape.str(), ")");
    const SafetensorsTensorInfo& info = index.info(e.name);
    const std::string where = index.shard_path(e.name) + ": tensor '" + e.name + "'";
    CRUCIBLE_USER_CHECK(info.shape == e.shape, where, " has shape ", info.shape.str(), ", the config needs ",
                        e.shape.str());
    Tensor dst = weights->param(e.name);
    const std::string scale_name = e.name + "_scale_inv";
    if (info.dtype == StDType::F8_E4M3 && index.contains(scale_name)) {
      // DeepSeek-V3 FP8: E4M3 codes with FP32 128x128 block multipliers.
      const Fp8Tensor q = make_fp8_tensor(index.read(e.name), index.read_f32(scale_name), ScaleLayout::Block128x128);
      dst.copy_from(dequantize_fp8(q).reshape(e.shape));
      ++fp8;
    } else {
      dst.copy_from(index.read_f32(e.name));
    }
  }
  std::size_t ignored = 0;
  for (const std::string& name : index.names())
    if (!weights->has(name) && !(name.size() > 10 && name.ends_with("_scale_inv"))) ++ignored;
  if (ignored > 0) log_info(dir, ": ", ignored, " tensor(s) not used by the model were ignored");
  if (fp8 > 0) log_info(dir, ": dequantized ", fp8, " FP8 block-scaled weights to FP32 masters");
  return weights;
}

}  // namespace crucible::checkpoints
