// launch/model_config_fields.h: ModelConfig as TOML ([model] tables, presets in
// configs/models/) and the loader that takes any model description a user has.
#pragma once

#include <string>
#include <vector>

#include "launch/config_fields.h"
#include "model/model_config.h"

namespace crucible::launch {

void describe(Fields& f, ModelConfig& c);

// Loads a model description from
//   - a TOML file whose [model] table describes it (presets in configs/models/),
//   - a Hugging Face config.json, or a directory that holds one.
// `overrides` are `--set model.key=value` assignments (TOML files only); the model
// is validated, and errors name the file, line and key.
ModelConfig load_model_config(const std::string& path, const std::vector<std::string>& overrides = {});

}  // namespace crucible::launch
