// trainer/stage_export.cpp: HF safetensors directories, GGUF files and Ollama
// Modelfiles of the run's models (export/<slot>/...).
#include <chrono>
#include <filesystem>

#include "checkpoints/gguf_export.h"
#include "checkpoints/hf_export.h"
#include "checkpoints/ollama.h"
#include "core/log.h"
#include "trainer/run_context.h"
#include "trainer/stages.h"

namespace crucible::trainer {

namespace {

// The run's tokenizer and chat template, as the exporters write them.
checkpoints::ExportTokenizer export_tokenizer(const TaskEnv& env) {
  std::string chat_template;
  if (const auto fmt = data::parse_chat_format(env.config().chat_format)) {
    data::ChatTemplateOptions o;
    o.think_prefill = env.config().think_prefill;
    chat_template = std::string(data::chat_template_source(*fmt, o));
  }
  checkpoints::ExportTokenizer tok = checkpoints::export_tokenizer_for(env.tokenizer(), env.config().tokenizer, chat_template);
  tok.eos_id = env.eos_id();
  return tok;
}

}  // namespace

json::Value run_export_stage(RunContext& ctx, const StageSpec& spec, std::int64_t index) {
  const auto& c = std::get<ExportStageConfig>(spec.body);
  const auto t0 = std::chrono::steady_clock::now();
  json::Value summary = json::Value::object();
  summary.set("kind", "export");
  json::Value files = json::Value::object();
  const checkpoints::ExportTokenizer tok = export_tokenizer(ctx.env());
  for (const std::string& slot : c.models) {
    ModelWeights& w = ctx.weights(slot);
    const std::string dir = ctx.path("export/" + slot);
    json::Value written = json::Value::array();
    if (ctx.root()) {
      std::filesystem::create_directories(dir);
      for (const std::string& format : c.formats) {
        if (format == "hf") {
          if (c.dtype != "f32" && w.config().n_routed_experts > 0 && w.config().precision == Precision::Fp32)
            log_warn(spec.name, ": ", slot, " trained in fp32 is exported as ", c.dtype, "; rounding flips near-tied "
                     "MoE expert choices, so the export's log-probs differ from the model's at some positions "
                     "(dtype = \"f32\" exports it exactly)");
          checkpoints::HfExportOptions o;
          o.dtype = c.dtype == "f32" ? checkpoints::HfExportDType::F32
                    : c.dtype == "fp8" ? checkpoints::HfExportDType::FP8 : checkpoints::HfExportDType::BF16;
          o.overwrite = true;
          if (o.dtype == checkpoints::HfExportDType::FP8 && !w.config().is_mla()) o.dtype = checkpoints::HfExportDType::BF16;
          checkpoints::export_hf(w, tok, o, dir + "/hf");
          written.push_back(dir + "/hf");
        } else if (format == "gguf") {
          if (w.config().is_mla()) {
            log_warn(spec.name, ": GGUF export covers the qwen2 and llama students; ", slot, " (deepseek_v3) is skipped");
            continue;
          }
          checkpoints::GgufExportOptions o;
          o.dtype = c.gguf_type == "f32"    ? checkpoints::GgufExportDType::F32
                    : c.gguf_type == "bf16" ? checkpoints::GgufExportDType::BF16
                    : c.gguf_type == "q8_0" ? checkpoints::GgufExportDType::Q8_0 : checkpoints::GgufExportDType::F16;
          checkpoints::export_gguf(w, tok, o, dir + "/model.gguf");
          checkpoints::OllamaOptions ol;
          ol.think_prefix = ctx.env().config().think_prefill;
          checkpoints::write_ollama_modelfile(dir, ol);
          written.push_back(dir + "/model.gguf");
          written.push_back(dir + "/Modelfile");
        } else {
          CRUCIBLE_USER_CHECK(false, spec.name, ": unknown export format '", format, "' (hf, gguf)");
        }
      }
      log_info(spec.name, ": exported ", slot, " to ", dir);
    }
    ctx.comm().barrier();
    files.set(slot, written);
  }
  summary.set("files", files);
  summary.set("seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  (void)index;
  return summary;
}

}  // namespace crucible::trainer
