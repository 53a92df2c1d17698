// checkpoints/model_file.cpp: HDF5 model checkpoints (see model_file.h).
#include "checkpoints/model_file.h"


#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "checkpoints/h5_bundle.h"
#include "checkpoints/hf_config.h"
#include "checkpoints/hf_import.h"
#include "checkpoints/safetensors.h"
#include "core/json.h"

namespace crucible::checkpoints {

void save_model(const std::string& path, const ModelWeights& weights) {
  H5Bundle b;
  b.attrs = {{"format", "crucible-model-1"}, {"config", json::dump(model_config_to_hf(weights.config()), 2)}};
  for (const auto& e : weights.layout().entries()) b.tensors.emplace_back("weights/" + e.name, weights.params().view(e.name));
  write_h5_bundle(path, b);
}

ModelConfig read_model_config(const H5Reader& r) {
  const std::string format = r.attr("format");
  CRUCIBLE_USER_CHECK(format == "crucible-model-1" || format == "crucible-train-1", r.path(),
                      ": unknown checkpoint format '", format, "'");
  return model_config_from_hf(json::parse(r.attr("config"), r.path() + ":/config"), r.path() + ":/config");
}

void read_weights(const H5Reader& r, ModelWeights& w) {
  for (const auto& e : w.layout().entries()) {
    const std::string name = "weights/" + e.name;
    CRUCIBLE_USER_CHECK(r.has(name), r.path(), ": tensor '", e.name, "' is missing");
    const Shape got = r.shape(name);
    CRUCIBLE_USER_CHECK(got == e.shape, r.path(), ": tensor '", e.name, "' has shape ", got.str(),
                        ", the config needs ", e.shape.str());
    Tensor t = w.param(e.name);
    r.read(name, t);
  }
}

bool is_model_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char sig[8] = {0};
  in.read(sig, 8);
  return in.gcount() == 8 && std::string(sig, 8) == "\x89HDF\r\n\x1a\n";
}

std::unique_ptr<ModelWeights> load_model(const std::string& path, bool with_grads) {
  namespace fs = std::filesystem;
  CRUCIBLE_USER_CHECK(fs::exists(path), "checkpoint not found: ", path);
  if (fs::is_directory(path)) return import_hf_model(path, with_grads);
  CRUCIBLE_USER_CHECK(is_model_file(path), path, ": not a crucible checkpoint (HDF5) nor a Hugging Face directory");
  const H5Reader r(path);
  CRUCIBLE_USER_CHECK(r.complete(), path, ": checkpoint is incomplete (its writer did not finish)");
  auto weights = std::make_unique<ModelWeights>(read_model_config(r), Device::cpu(), with_grads);
  read_weights(r, *weights);
  return weights;
}

StoredModel describe_stored(const std::string& path) {
  namespace fs = std::filesystem;
  CRUCIBLE_USER_CHECK(fs::exists(path), "checkpoint not found: ", path);
  StoredModel out;
  if (fs::is_directory(path)) {
    out.format = "hf-safetensors";
    out.config = read_hf_config(path);
    const SafetensorsIndex index = SafetensorsIndex::open(path);
    for (const std::string& name : index.names()) {
      if (name.ends_with("_scale_inv")) continue;
      const SafetensorsTensorInfo& info = index.info(name);
      ++out.tensors;
      out.params += info.shape.numel();
      if (info.dtype == StDType::F8_E4M3 && index.contains(name + "_scale_inv")) ++out.fp8_tensors;
    }
    if (out.config.num_nextn_predict_layers > 0 &&
        !index.contains("model.layers." + std::to_string(out.config.num_hidden_layers) + ".eh_proj.weight"))
      out.config.num_nextn_predict_layers = 0;
    return out;
  }
  CRUCIBLE_USER_CHECK(is_model_file(path), path, ": not a crucible checkpoint (HDF5) nor a Hugging Face directory");
  const H5Reader r(path);
  out.format = "crucible-hdf5";
  out.config = read_model_config(r);
  for (const std::string& name : r.list("weights")) {
    out.params += r.shape("weights/" + name).numel();
    ++out.tensors;
  }
  return out;
}

}  // namespace crucible::checkpoints
