// trainer/stage_rl.cpp: GRPO, SFT+RL and rejection sampling.
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <span>

#include "checkpoints/model_file.h"

#include "core/log.h"
#include "data/dataset.h"
#include "data/jsonl.h"
#include "rollout/generator.h"
#include "trainer/run_context.h"
#include "trainer/sft.h"
#include "trainer/stages.h"

namespace crucible::trainer {

json::Value run_grpo_stage(RunContext& ctx, const StageSpec& spec, std::int64_t index) {
  const auto& c = std::get<GrpoStageConfig>(spec.body);
  c.grpo.validate();
  const auto t0 = std::chrono::steady_clock::now();
  auto& comm = ctx.comm();
  ModelWeights& w = ctx.weights(c.model);
  Transformer& policy = ctx.model(c.model);
  const Scorer& scorer = ctx.scorer(c.grpo.rewards);

  // The frozen reference: the policy as the stage found it (stored so that a
  // resumed stage uses the same one).
  std::unique_ptr<ModelWeights> ref_w;
  std::unique_ptr<Transformer> ref;
  const std::string ref_path = ctx.path("checkpoints/ref-" + spec.name + ".h5");
  checkpoints::CheckpointDir dir(ctx.path("checkpoints"), ctx.config().keep_last);
  const bool resuming = dir.latest_good(spec.name).has_value();
  json::Value rs = json::Value::object();
  if (!resuming) {
    if (ctx.root()) checkpoints::save_model(ref_path, w);
    comm.barrier();
    rs.set("before", ctx.evaluate_slot(c.model, c.eval, ctx.config().seed + 4000));
  }
  if (c.grpo.loss.kl_beta > 0) {
    ref_w = checkpoints::load_model(ref_path, false);
    ref = std::make_unique<Transformer>(*ref_w);
  }

  // sft_rl: the SFT term's data.
  std::vector<data::TokenizedExample> sft_all;
  if (spec.kind == StageKind::SftRl) {
    std::string path = c.sft_data;
    if (!std::filesystem::exists(path)) path = ctx.path("data/" + c.sft_data + ".jsonl");
    CRUCIBLE_USER_CHECK(std::filesystem::exists(path), spec.name, ": sft_data '", c.sft_data,
                        "' is neither a file nor an earlier stage's output");
    for (const data::SftExample& e : data::load_sft(path)) {
      std::string q, a;
      for (const auto& m : e.messages) (m.role == "user" ? q : a) = m.content;
      sft_all.push_back(ctx.env().example_from_text(q, a));
    }
    // Rejection sampling may accept nothing from a weak policy: the stage then runs
    // its RL term alone rather than stopping the pipeline.
    if (sft_all.empty()) log_warn(spec.name, ": sft_data ", path, " holds no examples; training with the RL term only");
  }

  AdamW opt = ctx.make_optimizer(spec.name, w, c.optimizer);
  auto [start, resume] = ctx.resume(spec.name, index, w, &opt);
  if (start > 0) rs = resume;
  Progress progress(spec.name, c.grpo.steps);
  double tokens = 0, gen_seconds = 0;
  for (std::int64_t step = start; step < c.grpo.steps; ++step) {
    if (ref && c.grpo.ref_refresh_steps > 0 && step > 0 && step % c.grpo.ref_refresh_steps == 0) {
      ref_w->params().flat().copy_from(w.params().flat());
    }
    std::vector<data::TokenizedExample> sft_mine;
    SftTerm term;
    if (!sft_all.empty()) {
      for (std::int64_t i = comm.rank(); i < c.sft_batch; i += comm.world())
        sft_mine.push_back(sft_all[static_cast<std::size_t>((step * c.sft_batch + i) % static_cast<std::int64_t>(sft_all.size()))]);
      term = {&sft_mine, c.sft_weight, comm.all_reduce_f64(response_tokens(sft_mine), dist::ReduceOp::Sum),
              static_cast<double>(c.sft_batch)};
    }
    const GrpoMetrics m = grpo_step(policy, ref.get(), opt, ctx.env(), scorer, c.grpo, step, 0,
                                    ctx.config().seed + static_cast<std::uint64_t>(index), comm, term);
    tokens += m.tokens;
    gen_seconds += m.seconds;
    json::Value line = json::Value::object();
    line.set("stage", spec.name);
    line.set("step", step + 1);
    line.set("reward", m.reward);
    for (const auto& [name, v] : m.components) line.set("reward_" + name, v);
    line.set("accuracy", m.accuracy);
    line.set("format_rate", m.format_rate);
    line.set("response_length", m.response_length);
    line.set("kl", m.kl);
    line.set("clip_fraction", m.clip_fraction);
    line.set("entropy", m.entropy);
    line.set("sampler_trainer_gap", m.sampler_gap);
    line.set("groups_kept", m.groups_kept);
    line.set("grad_norm", m.grad_norm);
    line.set("lr", m.lr);
    line.set("tokens_per_s", m.tokens / std::max(m.seconds, 1e-9));
    ctx.log_metrics(line);
    progress.update(step + 1, {{"reward", m.reward}, {"acc", m.accuracy}, {"len", m.response_length}});
    ctx.checkpoint(spec.name, index, step + 1, w, &opt, rs, step + 1 == c.grpo.steps);
  }
  progress.finish();
  json::Value summary = json::Value::object();
  summary.set("kind", stage_kind_name(spec.kind));
  summary.set("model", c.model);
  summary.set("steps", c.grpo.steps);
  if (rs.find("before")) summary.set("before", rs.at("before"));
  summary.set("after", ctx.evaluate_slot(c.model, c.eval, ctx.config().seed + 5000));
  summary.set("tokens_per_s", tokens / std::max(gen_seconds, 1e-9));
  summary.set("seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  ctx.save_slot(c.model);
  return summary;
}

json::Value run_rejection_stage(RunContext& ctx, const StageSpec& spec, std::int64_t index) {
  const auto& c = std::get<RejectionStageConfig>(spec.body);
  const auto t0 = std::chrono::steady_clock::now();
  auto& comm = ctx.comm();
  Transformer& model = ctx.model(c.model);
  const Scorer& scorer = ctx.scorer("correctness=1,format=1,language_consistency=1");
  std::vector<json::Value> mine;
  double counts[6] = {0, 0, 0, 0, 0, 0};  // samples, accepted, correct, formatted, language ok, length ok
  // All of this rank's prompts decode as one batch (rollout::generate_groups).
  rollout::SamplingParams sp;
  sp.temperature = c.temperature;
  sp.max_tokens = c.max_new_tokens;
  sp.eos_ids = {ctx.env().eos_id()};
  sp.seed = ctx.config().seed * 31 + static_cast<std::uint64_t>(index);
  std::vector<PromptItem> prompts;
  std::vector<std::vector<std::int32_t>> ids;
  std::vector<std::int64_t> numbers;
  for (std::int64_t j = comm.rank(); j < c.prompts; j += comm.world()) {
    prompts.push_back(ctx.env().prompt(static_cast<std::uint64_t>(c.first_prompt + j), data::Split::Train));
    ids.push_back(prompts.back().ids);
    numbers.push_back(j);
  }
  const std::vector<rollout::Completion> all = rollout::generate_groups(model, ids, numbers, c.samples_per_prompt, sp);
  for (std::size_t pi = 0; pi < prompts.size(); ++pi) {
    const PromptItem& p = prompts[pi];
    const std::span<const rollout::Completion> outs(all.data() + pi * static_cast<std::size_t>(c.samples_per_prompt),
                                                    static_cast<std::size_t>(c.samples_per_prompt));
    for (const auto& o : outs) {
      std::vector<std::int32_t> content = o.tokens;
      const bool eos = !content.empty() && content.back() == ctx.env().eos_id();
      if (eos) content.pop_back();
      const std::string text = ctx.env().tokenizer().decode(content);
      const Score s = scorer.score(p, ctx.env().full_completion(text), static_cast<std::int64_t>(o.tokens.size()));
      double lang = 1;
      for (const auto& [name, v] : s.components)
        if (name == "language_consistency") lang = v;
      const auto n = static_cast<std::int64_t>(o.tokens.size());
      const bool len_ok = n >= c.min_tokens && n <= c.max_tokens;
      const bool lang_ok = lang >= c.min_language_consistency;
      counts[0] += 1;
      counts[2] += s.correct;
      counts[3] += s.formatted;
      counts[4] += lang_ok;
      counts[5] += len_ok;
      // A well-formed sample also ends (EOS) within the budget.
      if ((!c.require_correct || s.correct) && (!c.require_format || (s.formatted && eos)) && lang_ok && len_ok &&
          !text.empty() && json::is_valid_utf8(text)) {
        counts[1] += 1;
        json::Value j2 = json::Value::object();
        j2.set("id", p.id);
        j2.set("prompt", p.question);
        j2.set("response", text);
        mine.push_back(std::move(j2));
      }
    }
  }
  comm.all_reduce_f64(std::span<double>(counts, 6), dist::ReduceOp::Sum);
  const std::string out = ctx.path("data/" + spec.name + ".jsonl");
  for (int r = 0; r < comm.world(); ++r) {
    if (r == comm.rank()) {
      std::ofstream f(out + ".tmp", r == 0 ? std::ios::trunc : std::ios::app);
      for (const auto& j : mine) f << data::jsonl_line(j);
    }
    comm.barrier();
  }
  if (ctx.root()) std::filesystem::rename(out + ".tmp", out);
  comm.barrier();
  json::Value summary = json::Value::object();
  summary.set("kind", "rejection_sample");
  summary.set("model", c.model);
  summary.set("samples", counts[0]);
  summary.set("accepted", counts[1]);
  summary.set("acceptance_rate", counts[1] / std::max(counts[0], 1.0));
  summary.set("correct_rate", counts[2] / std::max(counts[0], 1.0));
  summary.set("format_rate", counts[3] / std::max(counts[0], 1.0));
  summary.set("language_ok_rate", counts[4] / std::max(counts[0], 1.0));
  summary.set("length_ok_rate", counts[5] / std::max(counts[0], 1.0));
  summary.set("out", out);
  summary.set("seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  log_info(spec.name, ": accepted ", static_cast<std::int64_t>(counts[1]), " of ", static_cast<std::int64_t>(counts[0]),
           " samples -> ", out);
  return summary;
}

}  // namespace crucible::trainer
