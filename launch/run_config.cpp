// launch/run_config.cpp: the TOML description of a pipeline run (see run_config.h).
#include "launch/run_config.h"

#include <toml++/toml.h>

#include <filesystem>

#include "launch/config_fields.h"
#include "launch/embedded_configs.h"
#include "launch/model_config_fields.h"
#include "launch/run_options.h"

namespace crucible::launch {

namespace {

namespace fs = std::filesystem;
using namespace trainer;

constexpr std::pair<std::string_view, StageKind> kKinds[] = {
    {"pretrain", StageKind::Pretrain}, {"sft", StageKind::Sft},        {"grpo", StageKind::Grpo},
    {"rejection_sample", StageKind::RejectionSample}, {"sft_rl", StageKind::SftRl},
    {"distill", StageKind::Distill},   {"eval", StageKind::Eval},      {"export", StageKind::Export}};
constexpr std::pair<std::string_view, Schedule> kSchedules[] = {
    {"constant", Schedule::Constant}, {"linear", Schedule::Linear}, {"cosine", Schedule::Cosine}};
constexpr std::pair<std::string_view, LossAggregation> kAggregations[] = {
    {"token_mean", LossAggregation::TokenMean},
    {"seq_mean_token_mean", LossAggregation::SeqMeanTokenMean},
    {"seq_mean_token_sum", LossAggregation::SeqMeanTokenSum},
    {"constant_normalized", LossAggregation::ConstantNormalized}};
constexpr std::pair<std::string_view, RatioLevel> kRatioLevels[] = {{"token", RatioLevel::Token},
                                                                     {"sequence", RatioLevel::Sequence}};

const Range kPos{.min = 0, .min_exclusive = true};
const Range kNonNeg{.min = 0};
const Range kAtLeast1{.min = 1};

void describe(Fields& f, OptimizerConfig& o) {
  f.field("lr", o.lr, "peak learning rate", kPos);
  f.field("min_lr_ratio", o.min_lr_ratio, "final lr as a fraction of the peak", Range{.min = 0, .max = 1});
  f.field("warmup_steps", o.warmup_steps, "linear warmup steps", kNonNeg);
  f.enumeration("schedule", o.schedule, kSchedules, "constant, linear or cosine decay after warmup");
  f.field("beta1", o.beta1, "AdamW beta1", Range{.min = 0, .max = 0.999999});
  f.field("beta2", o.beta2, "AdamW beta2", Range{.min = 0, .max = 0.999999});
  f.field("eps", o.eps, "AdamW epsilon", kPos);
  f.field("weight_decay", o.weight_decay, "decoupled weight decay (not on norms and biases)", kNonNeg);
  f.field("clip_norm", o.clip_norm, "global gradient-norm clip (0 = off)", kNonNeg);
  f.field("bf16_moments", o.bf16_moments, "AdamW moments in BF16 (DeepSeek-V3) instead of FP32");
}

void describe(Fields& f, EvalConfig& e) {
  f.field("n", e.n, "held-out prompts", kAtLeast1);
  f.field("max_new_tokens", e.max_new_tokens, "generation budget", kAtLeast1);
  f.field("batch", e.batch, "prompts decoded together", kAtLeast1);
  f.field("k", e.k, "pass@k samples (1 = greedy only)", kAtLeast1);
  f.field("temperature", e.temperature, "temperature of the pass@k samples", kPos);
  f.field("samples", e.samples, "greedy completions shown in report.json", kNonNeg);
}

void describe(Fields& f, GrpoConfig& g) {
  f.field("steps", g.steps, "GRPO steps", kNonNeg);
  f.field("prompts_per_step", g.prompts_per_step, "prompts per step (global)", kAtLeast1);
  f.field("group_size", g.group_size, "samples per prompt (G)", Range{.min = 2});
  f.field("temperature", g.temperature, "sampling temperature", kPos);
  f.field("top_p", g.top_p, "nucleus mass", Range{.min = 0, .max = 1, .min_exclusive = true});
  f.field("top_k", g.top_k, "top-k (0 = off)", kNonNeg);
  f.field("max_new_tokens", g.max_new_tokens, "response budget", kAtLeast1);
  f.field("std_normalize", g.std_normalize, "divide advantages by the group std (false: Dr. GRPO)");
  f.field("dynamic_sampling", g.dynamic_sampling, "DAPO: drop groups whose rewards are all equal");
  f.field("ppo_epochs", g.ppo_epochs, "passes over each rollout", kAtLeast1);
  f.field("mini_batches", g.mini_batches, "optimizer steps per pass", kAtLeast1);
  f.field("ref_refresh_steps", g.ref_refresh_steps, "refresh the KL reference every N steps (0 = never)", kNonNeg);
  f.field("max_tokens_per_forward", g.max_tokens_per_forward, "packing budget of one forward", Range{.min = 64});
  f.field("rewards", g.rewards, "reward spec, e.g. correctness=1,format=0.5");
  f.field("clip_eps_low", g.loss.clip_eps_low, "lower clip range", Range{.min = 0, .max = 1});
  f.field("clip_eps_high", g.loss.clip_eps_high, "upper clip range (DAPO clip-higher: 0.28)", kNonNeg);
  f.field("kl_beta", g.loss.kl_beta, "k3 KL weight to the reference", kNonNeg);
  f.enumeration("aggregation", g.loss.aggregation, kAggregations,
                "token_mean (DAPO), seq_mean_token_mean (GRPO), seq_mean_token_sum, constant_normalized (Dr. GRPO)");
  f.field("constant_normalizer", g.loss.constant_normalizer, "C of constant_normalized", kPos);
  f.enumeration("ratio", g.loss.ratio_level, kRatioLevels, "token (GRPO) or sequence (GSPO) importance ratio");
}

void describe(Fields& f, TaskConfig& t) {
  static constexpr std::string_view kTasks[] = {"arithmetic", "countdown"};
  static constexpr std::string_view kFormats[] = {"r1", "chatml", "llama3"};
  f.choice("task", t.task, kTasks, "verifiable task");
  f.field("difficulty", t.difficulty, "task difficulty (arithmetic: digits; countdown: 1..4)", kAtLeast1);
  f.field("ops", t.ops, "arithmetic: the operators drawn, a subset of \"+-*\" (\"\" = all)");
  static constexpr std::string_view kCots[] = {"full", "short"};
  f.choice("cot", t.cot, kCots, "chain-of-thought style: full, or short (arithmetic: about half the tokens)");
  std::int64_t seed = static_cast<std::int64_t>(t.seed);
  f.field("seed", seed, "problem generator seed", kNonNeg);
  t.seed = static_cast<std::uint64_t>(seed);
  f.field("tokenizer", t.tokenizer, "byte, or a tokenizer.json / HF directory");
  f.choice("chat_format", t.chat_format, kFormats, "r1, chatml or llama3");
  f.field("think_prefill", t.think_prefill, "R1: the prompt ends with <think>\\n");
}

void describe_stage(Fields& f, std::string& kind, StageBody& body) {
  static std::vector<std::string_view> kind_names = [] {
    std::vector<std::string_view> v;
    for (const auto& [n, k] : kKinds) v.push_back(n);
    return v;
  }();
  f.choice("kind", kind, kind_names, "stage kind");
  std::visit([&](auto& b) {
    using T = std::decay_t<decltype(b)>;
    if constexpr (std::is_same_v<T, SftStageConfig>) {
      f.field("model", b.model, "model slot trained");
      f.field("steps", b.steps, "optimizer steps", kNonNeg);
      f.field("batch", b.batch, "sequences per step (global)", kAtLeast1);
      f.field("max_tokens", b.max_tokens, "tokens per packed forward", Range{.min = 16});
      f.field("data", b.data, "\"\" = the task's chain of thought; else a JSONL file or an earlier stage");
      f.field("eval_before", b.eval_before, "evaluate before training");
      f.section("optimizer", [&](Fields& s) { describe(s, b.optimizer); });
      f.section("eval", [&](Fields& s) { describe(s, b.eval); });
    } else if constexpr (std::is_same_v<T, GrpoStageConfig>) {
      f.field("model", b.model, "model slot trained");
      describe(f, b.grpo);
      f.field("sft_data", b.sft_data, "sft_rl: rejection-sampled data (stage name or JSONL)");
      f.field("sft_batch", b.sft_batch, "sft_rl: SFT examples per step", kAtLeast1);
      f.field("sft_weight", b.sft_weight, "sft_rl: weight of the SFT loss", kNonNeg);
      f.section("optimizer", [&](Fields& s) { describe(s, b.optimizer); });
      f.section("eval", [&](Fields& s) { describe(s, b.eval); });
    } else if constexpr (std::is_same_v<T, RejectionStageConfig>) {
      f.field("model", b.model, "model slot that samples");
      f.field("prompts", b.prompts, "prompts", kAtLeast1);
      f.field("samples_per_prompt", b.samples_per_prompt, "samples per prompt", kAtLeast1);
      f.field("temperature", b.temperature, "sampling temperature", kPos);
      f.field("max_new_tokens", b.max_new_tokens, "response budget", kAtLeast1);
      f.field("require_correct", b.require_correct, "keep only correct samples");
      f.field("require_format", b.require_format, "keep only well-formed samples");
      f.field("min_language_consistency", b.min_language_consistency, "language filter threshold", Range{.min = 0, .max = 1});
      f.field("min_tokens", b.min_tokens, "shortest kept response", kNonNeg);
      f.field("max_tokens", b.max_tokens, "longest kept response", kAtLeast1);
      f.field("first_prompt", b.first_prompt, "first train-split problem index", kNonNeg);
    } else if constexpr (std::is_same_v<T, DistillStageConfig>) {
      f.field("teacher", b.teacher, "teacher slot");
      f.field("model", b.model, "student slot trained");
      f.field("traces", b.traces, "teacher generations", kAtLeast1);
      f.field("data", b.data, "use this JSONL / stage output instead of generating");
      f.field("temperature", b.temperature, "teacher sampling temperature", kPos);
      f.field("max_new_tokens", b.max_new_tokens, "teacher response budget", kAtLeast1);
      f.field("steps", b.steps, "student optimizer steps", kNonNeg);
      f.field("batch", b.batch, "sequences per step (global)", kAtLeast1);
      f.field("max_tokens", b.max_tokens, "tokens per packed forward", Range{.min = 16});
      f.field("first_prompt", b.first_prompt, "first train-split problem index", kNonNeg);
      f.field("kd_weight", b.kd_weight, "logit KD weight w: (1-w) CE + w tau^2 KL(teacher || student); 0 = off",
              Range{.min = 0, .max = 1});
      f.field("kd_temperature", b.kd_temperature, "logit KD temperature tau", kPos);
      f.section("optimizer", [&](Fields& s) { describe(s, b.optimizer); });
      f.section("eval", [&](Fields& s) { describe(s, b.eval); });
    } else if constexpr (std::is_same_v<T, EvalStageConfig>) {
      f.field("models", b.models, "model slots evaluated");
      describe(f, b.eval);
    } else if constexpr (std::is_same_v<T, ExportStageConfig>) {
      f.field("models", b.models, "model slots exported");
      f.field("formats", b.formats, "hf and/or gguf");
      static constexpr std::string_view kDtypes[] = {"f32", "bf16", "fp8"};
      static constexpr std::string_view kGguf[] = {"f32", "f16", "bf16", "q8_0"};
      f.choice("dtype", b.dtype, kDtypes, "HF safetensors dtype");
      f.choice("gguf_type", b.gguf_type, kGguf, "GGUF tensor type");
    }
  }, body);
}

StageBody body_for(StageKind k) {
  switch (k) {
    case StageKind::Pretrain:
    case StageKind::Sft: return SftStageConfig{};
    case StageKind::Grpo:
    case StageKind::SftRl: return GrpoStageConfig{};
    case StageKind::RejectionSample: return RejectionStageConfig{};
    case StageKind::Distill: return DistillStageConfig{};
    case StageKind::Eval: return EvalStageConfig{};
    case StageKind::Export: return ExportStageConfig{};
  }
  return SftStageConfig{};
}

// The raw string at a dotted path, or "" (for kind/preset, read before the struct).
std::string raw_string(const TomlSource& doc, const std::string& dotted) {
  const auto node = doc.table->at_path(dotted);
  if (const auto* s = node.as_string()) return s->get();
  return "";
}

// A model preset: a path (relative to the run config's folder, or the working
// directory), or the name of a preset shipped in configs/models (embedded).
ModelConfig load_preset(const std::string& preset, const std::string& config_path) {
  const fs::path base = fs::path(config_path).parent_path();
  for (const fs::path& p : {base / preset, fs::path(preset), base / "models" / (preset + ".toml")})
    if (!preset.empty() && fs::is_regular_file(p)) return load_model_config(p.string());
  if (const char* text = embedded_config("models/" + preset + ".toml")) {
    TomlSource doc = parse_toml_string(text, "configs/models/" + preset + ".toml (embedded)");
    ModelConfig c;
    read_toml(doc, "model", [&](Fields& f) { describe(f, c); });
    c.validate();
    return c;
  }
  CRUCIBLE_USER_CHECK(false, config_path, ": model preset '", preset, "' not found (a file, or one of configs/models)");
  return {};
}

// Overlay `top` onto `base`: tables merge key by key, anything else replaces.
void merge_into(toml::table& base, const toml::table& top) {
  for (const auto& [key, node] : top) {
    if (const auto* t = node.as_table()) {
      if (auto* b = base.get_as<toml::table>(key)) {
        merge_into(*b, *t);
        continue;
      }
    }
    base.insert_or_assign(key, node);
  }
}

// A config may start from another: `base = "../demo.toml"` (relative to the file,
// or an embedded config by file name); its own keys override the base's.
TomlSource with_base(TomlSource doc, const std::string& path, int depth = 0) {
  const auto* b = doc.table->get_as<std::string>("base");
  if (!b) return doc;
  CRUCIBLE_USER_CHECK(depth < 8, path, ": base configs nest more than 8 deep");
  const std::string rel = b->get();
  const fs::path candidate = fs::path(path).parent_path() / rel;
  TomlSource base;
  if (fs::is_regular_file(candidate)) {
    base = with_base(parse_toml_file(candidate.string()), candidate.string(), depth + 1);
  } else if (const char* text = embedded_config(fs::path(rel).filename().string())) {
    base = parse_toml_string(text, "configs/" + fs::path(rel).filename().string() + " (embedded)");
  } else {
    CRUCIBLE_USER_CHECK(false, path, ": base config '", rel, "' not found");
  }
  doc.table->erase("base");
  merge_into(*base.table, *doc.table);
  base.path = path;
  return base;
}

}  // namespace

LoadedRun load_run_config(const std::string& path, const std::vector<std::string>& overrides) {
  TomlSource doc;
  if (path == "demo" || (!fs::exists(path) && path == "configs/demo.toml" && embedded_config("demo.toml"))) {
    doc = parse_toml_string(embedded_config("demo.toml"), "configs/demo.toml (embedded)");
  } else {
    doc = parse_toml_file(path);
  }
  doc = with_base(std::move(doc), path);
  for (const std::string& o : overrides) apply_override(doc, o);
  static constexpr std::string_view kTop[] = {"run", "log", "task", "models", "stages"};
  check_known_keys(doc, "", kTop);

  LoadedRun out;
  PipelineConfig& p = out.pipeline;
  std::vector<std::string> stage_order;
  RunOptions run;
  read_toml(doc, "run", [&](Fields& f) {
    describe(f, run);
    f.field("stages", stage_order, "stage names in order (each a [stages.<name>] table)");
    f.field("checkpoint_every", p.checkpoint_every, "optimizer steps between checkpoints (0 = stage end)", kNonNeg);
    f.field("keep_last", p.keep_last, "checkpoints kept per stage", kAtLeast1);
  });
  run.validate();
  p.out_dir = run.out_dir;
  p.device = *parse_device(run.device);
  p.deterministic = run.deterministic;
  p.seed = static_cast<std::uint64_t>(run.seed);
  p.zero_stage = static_cast<int>(run.zero);
  p.overlap_reduce = run.overlap_reduce;
  if (run.kv_cache != "auto") p.kv_cache = run.kv_cache == "bf16" ? DType::BF16 : DType::F32;
  read_toml(doc, "log", [&](Fields& f) { describe(f, out.log); });
  read_toml(doc, "task", [&](Fields& f) { describe(f, p.task); });

  // Model slots.
  if (const auto* models = doc.table->at_path("models").as_table()) {
    for (const auto& [key, node] : *models) {
      ModelSlot slot;
      slot.name = std::string(key.str());
      const std::string prefix = "models." + slot.name;
      std::string preset = raw_string(doc, prefix + ".preset");
      if (!preset.empty()) slot.config = load_preset(preset, path);
      read_toml(doc, prefix, [&](Fields& f) {
        f.field("preset", preset, "model preset (configs/models/<name>.toml or a path)");
        f.field("init", slot.init, "checkpoint or HF directory to start from (\"\" = random init)");
        std::int64_t seed = static_cast<std::int64_t>(slot.seed);
        f.field("seed", seed, "random-init seed", kNonNeg);
        slot.seed = static_cast<std::uint64_t>(seed);
        describe(f, slot.config);  // any model key overrides the preset
      });
      p.models.push_back(std::move(slot));
    }
  }
  // Stages, in run.stages order (tables not listed there are kept but not run, so a
  // stage can be switched off with one --set run.stages=[...]).
  for (const std::string& name : stage_order) {
    const std::string prefix = "stages." + name;
    CRUCIBLE_USER_CHECK(doc.table->at_path(prefix).as_table(), path, ": run.stages names '", name,
                        "' but there is no [", prefix, "] table");
    std::string kind = raw_string(doc, prefix + ".kind");
    StageSpec spec;
    spec.name = name;
    spec.kind = StageKind::Sft;
    for (const auto& [n, k] : kKinds)
      if (n == kind) spec.kind = k;
    spec.body = body_for(spec.kind);
    read_toml(doc, prefix, [&](Fields& f) { describe_stage(f, kind, spec.body); });
    p.stages.push_back(std::move(spec));
  }

  // The resolved config, printed back with every default filled in.
  std::string t = write_toml("run", [&](Fields& f) {
    describe(f, run);
    f.field("stages", stage_order, "");
    f.field("checkpoint_every", p.checkpoint_every, "");
    f.field("keep_last", p.keep_last, "");
  });
  t += "\n" + write_toml("log", [&](Fields& f) { describe(f, out.log); });
  t += "\n" + write_toml("task", [&](Fields& f) { describe(f, p.task); });
  for (ModelSlot& slot : p.models) {
    std::string none;
    t += "\n" + write_toml("models." + slot.name, [&](Fields& f) {
      f.field("init", slot.init, "");
      std::int64_t seed = static_cast<std::int64_t>(slot.seed);
      f.field("seed", seed, "");
      describe(f, slot.config);
    });
  }
  for (StageSpec& s : p.stages) {
    std::string kind = stage_kind_name(s.kind);
    t += "\n" + write_toml("stages." + s.name, [&](Fields& f) { describe_stage(f, kind, s.body); });
  }
  out.resolved_toml = t;
  p.resolved_toml = t;
  p.validate();
  return out;
}

dist::CommunicatorConfig comm_config(const trainer::PipelineConfig& p) {
  dist::CommunicatorConfig c;
  c.reduction = p.deterministic ? dist::ReductionMode::Deterministic : dist::ReductionMode::Native;
  return c;
}

}  // namespace crucible::launch
