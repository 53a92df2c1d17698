// model/weights.cpp: parameter/gradient arenas and deterministic init.
#include "model/weights.h"

namespace crucible {

Layout make_param_layout(const ModelConfig& config) {
  Layout layout;
  for (const ParamSpec& p : parameter_table(config))
    layout.add(p.name, Shape(p.shape.begin(), p.shape.end()), DType::F32);
  return layout;
}

ModelWeights::ModelWeights(const ModelConfig& config, Device device, bool with_grads)
    : config_(config) {
  config_.validate();
  const Layout layout = make_param_layout(config_);
  params_ = Arena(layout, device, "params");
  if (with_grads) grads_ = Arena(layout, device, "grads");
}

std::unique_ptr<ModelWeights> ModelWeights::copy_to(Device device, bool with_grads) const {
  auto out = std::make_unique<ModelWeights>(config_, device, with_grads);
  out->params().flat().copy_from(params_.flat());
  return out;
}

void ModelWeights::reserve_flat(std::size_t bytes) {
  const bool grads_ok = !has_grads() || grads_.capacity() >= bytes;
  if (params_.capacity() >= bytes && grads_ok) return;
  const Layout layout = params_.layout();
  Arena params(layout, device(), "params", bytes);
  params.zero();
  params.flat().copy_from(params_.flat());
  params_ = std::move(params);
  if (has_grads()) {
    grads_ = Arena(layout, device(), "grads", bytes);
    grads_.zero();
  }
}

namespace {
bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
}  // namespace

void ModelWeights::init_random(std::uint64_t seed) {
  CRUCIBLE_CHECK(params_.view(0).device().is_cpu(), "init_random runs on the CPU; copy afterwards");
  const auto& entries = params_.layout().entries();
  const float std_dev = static_cast<float>(config_.initializer_range);
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const std::string& name = entries[i].name;
    Tensor t = params_.view(i);
    float* p = t.data<float>();
    const bool is_norm = ends_with(name, "norm.weight") || ends_with(name, "layernorm.weight");
    if (is_norm) {
      for (std::int64_t k = 0; k < t.numel(); ++k) p[k] = 1.0f;
    } else if (ends_with(name, ".bias") || ends_with(name, "e_score_correction_bias")) {
      for (std::int64_t k = 0; k < t.numel(); ++k) p[k] = 0.0f;
    } else {
      Rng rng(seed, i);
      for (std::int64_t k = 0; k < t.numel(); ++k) p[k] = rng.normal() * std_dev;
    }
  }
}

}  // namespace crucible
