// launch/cmd_inspect.cpp: `crucible inspect FILE [--json]`: sizes and layer shapes.
#include <cstdio>

#include <filesystem>
#include <optional>

#include "checkpoints/model_file.h"
#include "core/json.h"
#include "launch/args.h"
#include "launch/commands.h"
#include "launch/model_config_fields.h"

namespace crucible::launch {

namespace {
const char* precision_name(Precision p) {
  switch (p) {
    case Precision::Fp32: return "fp32";
    case Precision::Bf16: return "bf16";
    case Precision::Fp8: return "fp8";
  }
  return "?";
}
}  // namespace

int cmd_inspect(const CommandContext& ctx, const std::vector<std::string>& args) {
  std::string file;
  bool as_json = false;
  std::vector<std::string> sets;
  ArgParser p("inspect", "Print a model's parameter counts, KV-cache size and per-layer shape table.");
  p.positional("FILE", &file, "TOML preset ([model] table), HF config.json, HF model directory or crucible checkpoint")
      .flag("--json", &as_json, "print one JSON object instead of the table")
      .multi("--set", &sets, "KEY=VALUE", "override a key of a TOML file (model.hidden_size=256)")
      .epilog("example: crucible inspect configs/models/deepseek-v3.toml --json");
  if (!p.parse(args)) return 0;
  // A checkpoint (HF directory or crucible HDF5) also reports what it really stores.
  std::optional<checkpoints::StoredModel> stored;
  if (std::filesystem::is_directory(file) || checkpoints::is_model_file(file)) {
    if (!sets.empty()) throw UsageError("crucible inspect: --set applies to TOML files only");
    stored = checkpoints::describe_stored(file);
  }
  const ModelConfig c = stored ? stored->config : load_model_config(file, sets);
  if (ctx.mpi.rank() != 0) return 0;
  const ModelSizes s = model_sizes(c);
  if (!as_json) {
    std::fputs(describe_layers(c).c_str(), stdout);
    if (stored)
      std::printf("\nstored (%s): %lld tensors, %lld parameters%s\n", stored->format.c_str(),
                  static_cast<long long>(stored->tensors), static_cast<long long>(stored->params),
                  stored->fp8_tensors ? (", " + std::to_string(stored->fp8_tensors) + " in FP8").c_str() : "");
    return 0;
  }
  json::Value j = json::Value::object();
  j.set("name", c.name);
  j.set("arch", arch_name(c.arch));
  j.set("precision", precision_name(c.precision));
  j.set("layers", c.num_hidden_layers);
  j.set("hidden_size", c.hidden_size);
  j.set("vocab_size", c.vocab_size);
  j.set("params_total", s.params_total);
  j.set("params_active", s.params_active);
  j.set("params_mtp", s.params_mtp);
  j.set("params_embedding", s.params_embedding);
  j.set("kv_cache_bytes_per_token", s.kv_cache_bytes_per_token);
  j.set("softmax_scale", c.softmax_scale());
  j.set("tie_word_embeddings", c.tie_word_embeddings);
  if (c.is_mla()) {
    std::int64_t moe_layers = 0;
    for (std::int64_t l = 0; l < c.num_hidden_layers; ++l) moe_layers += c.is_moe_layer(l);
    j.set("moe_layers", moe_layers);
    j.set("experts_routed", c.n_routed_experts);
    j.set("experts_per_token", c.num_experts_per_tok);
  }
  if (stored) {
    j.set("format", stored->format);
    j.set("tensors_stored", stored->tensors);
    j.set("params_stored", stored->params);
    j.set("fp8_tensors_stored", stored->fp8_tensors);
  }
  std::printf("%s\n", json::dump(j, 2).c_str());
  return 0;
}

}  // namespace crucible::launch
