// launch/embedded_configs.h: the TOML files of configs/ compiled into the binary,
// so `crucible run` (the demo) and the model presets work from any directory.
#pragma once

#include <string>
#include <vector>

namespace crucible::launch {

// Text of configs/<relative> ("demo.toml", "models/tiny-qwen2.toml"), or nullptr.
const char* embedded_config(const std::string& relative);
std::vector<std::string> embedded_config_names();

}  // namespace crucible::launch
