// trainer/stage_sft.cpp: the supervised stages: pretrain, cold-start SFT, and
// distillation (teacher traces, then SFT of the student on them).
#include <chrono>
#include <filesystem>
#include <fstream>

#include "core/log.h"
#include "data/dataset.h"
#include "data/jsonl.h"
#include "rollout/generator.h"
#include "trainer/run_context.h"
#include "trainer/sft.h"
#include "trainer/stages.h"

namespace crucible::trainer {

namespace {

// SFT examples of a data source: "" = the task's programmatic CoT, otherwise
// a JSONL file of {prompt, response} / {messages} records, or the name of an
// earlier stage whose data/<stage>.jsonl it wrote.
class SftSource {
 public:
  SftSource(RunContext& ctx, const std::string& data) : ctx_(ctx) {
    if (data.empty()) return;
    std::string path = data;
    if (!std::filesystem::exists(path)) path = ctx.path("data/" + data + ".jsonl");
    CRUCIBLE_USER_CHECK(std::filesystem::exists(path), "SFT data '", data, "' is neither a file nor an earlier stage's output");
    for (const data::SftExample& e : data::load_sft(path)) {
      std::string question, answer;
      for (const auto& m : e.messages) {
        if (m.role == "user") question = m.content;
        if (m.role == "assistant") answer = m.content;
      }
      examples_.push_back(ctx.env().example_from_text(question, answer));
    }
    CRUCIBLE_USER_CHECK(!examples_.empty(), "SFT data ", path, " holds no examples");
  }
  std::size_t size() const { return examples_.size(); }  // 0 for the task's own CoT
  data::TokenizedExample get(std::uint64_t i) const {
    if (examples_.empty()) return ctx_.env().sft_example(i, data::Split::Train);
    return examples_[i % examples_.size()];
  }

 private:
  RunContext& ctx_;
  std::vector<data::TokenizedExample> examples_;
};

struct SftLoop {
  std::string model;
  std::int64_t steps, batch, max_tokens;
  OptimizerConfig optimizer;
  bool all_tokens = false;  // pretrain: loss on every token
  KdTerm kd;                // distill: logit KD when kd.weight > 0
};

// The shared loop of pretrain / sft / distill; returns tokens per second.
double sft_loop(RunContext& ctx, const StageSpec& spec, std::int64_t index, const SftLoop& c, const SftSource& src,
                json::Value& resume_state) {
  auto& comm = ctx.comm();
  ModelWeights& w = ctx.weights(c.model);
  Transformer& model = ctx.model(c.model);
  AdamW opt = ctx.make_optimizer(spec.name, w, c.optimizer);
  auto [start, resume] = ctx.resume(spec.name, index, w, &opt);
  if (start > 0) resume_state = resume;
  Progress progress(spec.name, c.steps);
  double tokens = 0, seconds = 0;
  for (std::int64_t step = start; step < c.steps; ++step) {
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<data::TokenizedExample> mine;
    for (std::int64_t i = comm.rank(); i < c.batch; i += comm.world()) {
      mine.push_back(src.get(static_cast<std::uint64_t>(step * c.batch + i)));
      if (c.all_tokens) mine.back().loss_mask.assign(mine.back().ids.size(), 1);
    }
    const double global = comm.all_reduce_f64(response_tokens(mine), dist::ReduceOp::Sum);
    w.zero_grads();
    const SftAccumulation acc = sft_accumulate(model, mine, std::max(global, 1.0), static_cast<double>(c.batch), c.max_tokens,
                                               1.0, &c.kd, opt.last_backward_hook());
    const StepStats st = opt.step(step, c.steps);  // sums the ranks' gradients first
    balance_router(w, acc.expert_load, comm);
    double sums[4] = {acc.loss_sum, acc.tokens, acc.all_tokens, acc.kd_sum};
    comm.all_reduce_f64(std::span<double>(sums, 4), dist::ReduceOp::Sum);
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    tokens += sums[2];
    seconds += dt;
    const double loss = sums[0] / std::max(sums[1], 1.0);
    json::Value line = json::Value::object();
    line.set("stage", spec.name);
    line.set("step", step + 1);
    line.set("loss", loss);
    if (c.kd.weight > 0) line.set("kd", sums[3] / std::max(sums[1], 1.0));  // tau^2 KL per response token
    line.set("lr", st.lr);
    line.set("grad_norm", st.grad_norm);
    line.set("tokens", sums[2]);
    line.set("tokens_per_s", sums[2] / std::max(dt, 1e-9));
    ctx.log_metrics(line);
    progress.update(step + 1, {{"loss", loss}, {"tok/s", sums[2] / std::max(dt, 1e-9)}});
    ctx.checkpoint(spec.name, index, step + 1, w, &opt, resume_state, step + 1 == c.steps);
  }
  progress.finish();
  return seconds > 0 ? tokens / seconds : 0;
}

json::Value maybe_eval(RunContext& ctx, const std::string& slot, const EvalConfig& e, std::uint64_t salt) {
  return ctx.evaluate_slot(slot, e, ctx.config().seed + salt);
}

}  // namespace

json::Value run_sft_stage(RunContext& ctx, const StageSpec& spec, std::int64_t index) {
  const auto& c = std::get<SftStageConfig>(spec.body);
  const auto t0 = std::chrono::steady_clock::now();
  const bool pretrain = spec.kind == StageKind::Pretrain;
  SftSource src(ctx, c.data);
  json::Value rs = json::Value::object();
  {
    // The before-evaluation is part of the resume state: a resumed stage does not
    // re-measure a model that has changed since. Peek at the resume point first.
    checkpoints::CheckpointDir dir(ctx.path("checkpoints"), ctx.config().keep_last);
    if (dir.latest_good(spec.name)) {
      rs = json::parse(checkpoints::read_train_state(*dir.latest_good(spec.name)).resume_json, spec.name);
    } else if (c.eval_before) {
      rs.set("before", maybe_eval(ctx, c.model, c.eval, 1000 + static_cast<std::uint64_t>(index)));
    }
  }
  const double tps = sft_loop(ctx, spec, index, {c.model, c.steps, c.batch, c.max_tokens, c.optimizer, pretrain, {}}, src, rs);
  json::Value summary = json::Value::object();
  summary.set("kind", stage_kind_name(spec.kind));
  summary.set("model", c.model);
  summary.set("steps", c.steps);
  if (rs.find("before")) summary.set("before", rs.at("before"));
  summary.set("after", maybe_eval(ctx, c.model, c.eval, 2000 + static_cast<std::uint64_t>(index)));
  summary.set("tokens_per_s", tps);
  summary.set("seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  ctx.save_slot(c.model);
  return summary;
}

json::Value run_distill_stage(RunContext& ctx, const StageSpec& spec, std::int64_t index) {
  const auto& c = std::get<DistillStageConfig>(spec.body);
  const auto t0 = std::chrono::steady_clock::now();
  const std::string traces = ctx.path("data/" + spec.name + ".jsonl");
  std::int64_t kept = 0, generated = 0;
  if (c.data.empty() && !std::filesystem::exists(traces)) {
    // The teacher writes traces; correct, well-formed ones become the student's data.
    Transformer& teacher = ctx.model(c.teacher);
    const Scorer& scorer = ctx.scorer("correctness=1");
    auto& comm = ctx.comm();
    std::vector<std::pair<std::string, std::string>> mine;
    // Prompts decoded together per rank (prompt i draws from stream i whatever the batch).
    const std::int64_t batch = 128;
    for (std::int64_t first = 0; first < c.traces; first += batch * comm.world()) {
      std::vector<PromptItem> prompts;
      for (std::int64_t i = first + comm.rank() * batch; i < std::min(c.traces, first + (comm.rank() + 1) * batch); ++i)
        prompts.push_back(ctx.env().prompt(static_cast<std::uint64_t>(c.first_prompt + i), data::Split::Train));
      if (prompts.empty()) continue;
      std::vector<std::vector<std::int32_t>> ids;
      std::int64_t longest = 0;
      for (const auto& p : prompts) ids.push_back(p.ids), longest = std::max<std::int64_t>(longest, static_cast<std::int64_t>(p.ids.size()));
      rollout::Generator gen(teacher, static_cast<std::int64_t>(prompts.size()), longest + c.max_new_tokens);
      rollout::SamplingParams sp;
      sp.temperature = c.temperature;
      sp.max_tokens = c.max_new_tokens;
      sp.eos_ids = {ctx.env().eos_id()};
      sp.seed = ctx.config().seed * 7919 + static_cast<std::uint64_t>(index);
      sp.stream_base = static_cast<std::uint64_t>(first + comm.rank() * batch);
      const auto outs = gen.generate(ids, sp);
      for (std::size_t i = 0; i < outs.size(); ++i) {
        std::vector<std::int32_t> content = outs[i].tokens;
        const bool eos = !content.empty() && content.back() == ctx.env().eos_id();
        if (eos) content.pop_back();
        const std::string text = ctx.env().tokenizer().decode(content);
        const Score s = scorer.score(prompts[i], ctx.env().full_completion(text), static_cast<std::int64_t>(outs[i].tokens.size()));
        ++generated;
        if (s.correct && s.formatted && eos && json::is_valid_utf8(text)) mine.emplace_back(prompts[i].question, text);
      }
    }
    // Each rank appends its share in rank order (one shared run directory).
    double counts[2] = {static_cast<double>(mine.size()), static_cast<double>(generated)};
    comm.all_reduce_f64(std::span<double>(counts, 2), dist::ReduceOp::Sum);
    kept = static_cast<std::int64_t>(counts[0]);
    generated = static_cast<std::int64_t>(counts[1]);
    for (int r = 0; r < comm.world(); ++r) {
      if (r == comm.rank()) {
        std::ofstream out(traces + ".tmp", r == 0 ? std::ios::trunc : std::ios::app);
        for (const auto& [q, a] : mine) {
          json::Value j = json::Value::object();
          j.set("prompt", q);
          j.set("response", a);
          out << data::jsonl_line(j);
        }
      }
      comm.barrier();
    }
    if (ctx.root()) std::filesystem::rename(traces + ".tmp", traces);
    comm.barrier();
    log_info(spec.name, ": teacher traces kept ", kept, " of ", generated);
    CRUCIBLE_USER_CHECK(kept > 0, spec.name, ": the teacher produced no correct, well-formed trace to distill");
  }
  SftSource src(ctx, c.data.empty() ? traces : c.data);
  json::Value rs = json::Value::object();
  rs.set("traces_kept", kept);
  rs.set("traces_generated", generated);
  SftLoop loop{c.model, c.steps, c.batch, c.max_tokens, c.optimizer, false, {}};
  if (c.kd_weight > 0) {
    Transformer& teacher = ctx.model(c.teacher);
    CRUCIBLE_USER_CHECK(teacher.config().vocab_size == ctx.model(c.model).config().vocab_size, spec.name,
                        ": kd_weight > 0 needs one vocabulary, but teacher '", c.teacher, "' has vocab_size ",
                        teacher.config().vocab_size, " and student '", c.model, "' ",
                        ctx.model(c.model).config().vocab_size, " (set kd_weight = 0 to distill by SFT on traces only)");
    loop.kd = KdTerm{&teacher, c.kd_weight, c.kd_temperature};
  }
  const double tps = sft_loop(ctx, spec, index, loop, src, rs);
  json::Value summary = json::Value::object();
  summary.set("kind", "distill");
  if (c.kd_weight > 0) summary.set("kd_weight", c.kd_weight), summary.set("kd_temperature", c.kd_temperature);
  summary.set("teacher", c.teacher);
  summary.set("model", c.model);
  if (c.data.empty()) {
    summary.set("traces_kept", rs.at("traces_kept"));
    summary.set("traces_generated", rs.at("traces_generated"));
  } else {
    summary.set("data", c.data);
  }
  summary.set("examples", static_cast<std::int64_t>(src.size()));
  summary.set("after", maybe_eval(ctx, c.model, c.eval, 3000 + static_cast<std::uint64_t>(index)));
  summary.set("teacher_eval", maybe_eval(ctx, c.teacher, c.eval, 3000 + static_cast<std::uint64_t>(index)));
  summary.set("tokens_per_s", tps);
  summary.set("seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  ctx.save_slot(c.model);
  return summary;
}

}  // namespace crucible::trainer
