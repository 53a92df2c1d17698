// trainer/run_context.cpp: slots, run directory, report, stage checkpoints.
#include "trainer/run_context.h"

#include "core/device_memory.h"

#include <filesystem>
#include <fstream>

#include "checkpoints/model_file.h"
#include "core/log.h"

namespace crucible::trainer {

namespace fs = std::filesystem;

json::Value eval_json(const EvalResult& r) {
  json::Value j = json::Value::object();
  j.set("n", r.n);
  j.set("accuracy", r.accuracy);
  j.set("accuracy_se", r.accuracy_se);
  j.set("format_rate", r.format_rate);
  j.set("mean_length", r.mean_length);
  if (r.k > 1) {
    j.set("k", r.k);
    j.set("pass_at_k", r.pass_at_k);
  }
  j.set("seconds", r.seconds);
  if (!r.samples.empty()) {
    json::Value samples = json::Value::array();
    for (const EvalSample& e : r.samples) {
      json::Value o = json::Value::object();
      o.set("question", e.question);
      o.set("completion", e.completion);
      o.set("answer", e.answer);
      o.set("correct", e.correct);
      samples.push_back(std::move(o));
    }
    j.set("samples", std::move(samples));
  }
  return j;
}

namespace {

// FNV-1a 64 over the parameter bytes (host memory), as hex.
std::string weights_digest(const ModelWeights& w) {
  const Tensor flat = on_host(w.params().flat());
  std::uint64_t h = 0xcbf29ce484222325ull;
  const auto* p = static_cast<const unsigned char*>(flat.raw());
  for (std::size_t i = 0, n = w.params().bytes(); i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return detail::concat(std::hex, h);
}

}  // namespace

json::Value RunContext::evaluate_slot(const std::string& slot, const EvalConfig& e, std::uint64_t seed) {
  ModelWeights& w = weights(slot);
  const bool cacheable = e.k == 1;
  std::string key;
  if (cacheable) {
    key = detail::concat(weights_digest(w), ' ', e.n, ' ', e.max_new_tokens, ' ', e.batch, ' ', e.samples);
    const auto it = last_eval_.find(slot);
    if (it != last_eval_.end() && it->second.first == key) {
      json::Value j = it->second.second;
      j.set("reused", true);
      return j;
    }
  }
  json::Value j = eval_json(evaluate(model(slot), env(), scorer("correctness=1"), e, seed, comm_));
  if (cacheable) last_eval_[slot] = {key, j};
  return j;
}

RunContext::RunContext(const PipelineConfig& config, dist::Communicator& comm) : config_(config), comm_(comm) {
  if (config_.device.is_cuda()) {
    CRUCIBLE_USER_CHECK(cuda_compiled(), "run.device = ", config_.device.str(),
                        ": this crucible was built without the CUDA backend");
    CRUCIBLE_USER_CHECK(config_.device.index < cuda_device_count(), "run.device = ", config_.device.str(),
                        ": this machine has ", cuda_device_count(), " CUDA device(s)");
  }
  env_ = std::make_unique<TaskEnv>(config_.task);
  if (root()) {
    fs::create_directories(path("checkpoints"));
    fs::create_directories(path("data"));
    std::ofstream(path("config.toml")) << config_.resolved_toml;
  }
  const std::string report_path = path("report.json");
  if (fs::exists(report_path)) report_ = json::parse_file(report_path);
  if (!report_.find("stages")) report_.set("stages", json::Value::object());
  ckpt_ = std::make_unique<checkpoints::CheckpointDir>(path("checkpoints"), config_.keep_last);
  // A restarted run: the lines a killed run logged after its last checkpoint are
  // dropped when the stage resumes (see resume()).
}

std::string RunContext::path(const std::string& relative) const { return (fs::path(config_.out_dir) / relative).string(); }

const Scorer& RunContext::scorer(const std::string& spec) {
  auto& s = scorers_[spec];
  if (!s) s = std::make_unique<Scorer>(spec, config_.task.task);
  return *s;
}

std::string RunContext::slot_path(const std::string& slot) const { return path("checkpoints/model-" + slot + ".h5"); }

ModelWeights& RunContext::weights(const std::string& slot) {
  auto& w = weights_[slot];
  if (w) return *w;
  const ModelSlot* spec = nullptr;
  for (const auto& m : config_.models)
    if (m.name == slot) spec = &m;
  CRUCIBLE_USER_CHECK(spec, "stage uses model '", slot, "', which the run's [models] does not define");
  if (fs::exists(slot_path(slot))) {
    w = checkpoints::load_model(slot_path(slot), true);
  } else if (!spec->init.empty()) {
    w = checkpoints::load_model(spec->init, true);
  } else {
    w = std::make_unique<ModelWeights>(spec->config, Device::cpu(), true);
    w->init_random(spec->seed);
  }
  if (w->device() != config_.device) w = w->copy_to(config_.device, true);  // loaded and initialized on the host
  return *w;
}

Transformer& RunContext::model(const std::string& slot) {
  auto& m = models_[slot];
  if (!m) {
    m = std::make_unique<Transformer>(weights(slot));
    m->set_kv_cache_dtype(config_.kv_cache);
  }
  return *m;
}

void RunContext::save_slot(const std::string& slot) {
  if (root()) checkpoints::save_model(slot_path(slot), weights(slot));
  comm_.barrier();
}

void RunContext::log_metrics(const json::Value& line) {
  if (!root()) return;
  std::ofstream out(path("metrics.jsonl"), std::ios::app);
  out << json::dump(line) << '\n';
}

bool RunContext::stage_done(const std::string& stage) const {
  const json::Value* s = report_.at("stages").find(stage);
  return s && s->find("done") && s->at("done").as_bool();
}

void RunContext::finish_stage(const std::string& stage, json::Value summary) {
  summary.set("done", true);
  report_.as_object();  // (object by construction)
  json::Value stages = report_.at("stages");
  stages.set(stage, std::move(summary));
  report_.set("stages", std::move(stages));
  write_report();
}

void RunContext::write_report() {
  if (!root()) return;
  const std::string p = path("report.json"), tmp = p + ".tmp";
  {
    std::ofstream out(tmp);
    out << json::dump(report_, 2) << '\n';
  }
  fs::rename(tmp, p);
}

AdamW RunContext::make_optimizer(const std::string& stage, ModelWeights& w, const OptimizerConfig& config) {
  AdamW opt(w, config, DataParallel{&comm_, config_.zero_stage, config_.overlap_reduce});
  const double mib = 1.0 / (1024.0 * 1024.0);
  if (opt.sharded()) {
    const dist::FlatShards& s = *opt.shards();
    log_info(stage, ": optimizer state ", static_cast<double>(opt.state_bytes()) * mib, " MiB per rank (ZeRO-1: ",
             s.shard_elems(), " of ", s.total(), " parameters, ", s.padding(), " padding, over ", s.world(),
             " ranks; unsharded ", static_cast<double>(opt.full_state_bytes()) * mib, " MiB)");
  } else {
    const std::int64_t buckets = opt.overlap_buckets();
    log_info(stage, ": optimizer state ", static_cast<double>(opt.state_bytes()) * mib, " MiB per rank (replicated on ",
             comm_.world(), " rank(s))",
             buckets > 0 ? detail::concat("; gradients summed during backward in ", buckets, " layer buckets")
                         : std::string());
  }
  return opt;
}

std::pair<std::int64_t, json::Value> RunContext::resume(const std::string& stage, std::int64_t stage_index,
                                                        ModelWeights& w, AdamW* opt) {
  std::vector<std::string> skipped;
  const auto latest = ckpt_->latest_good(stage, &skipped);
  for (const auto& s : skipped) log_warn("skipping damaged checkpoint ", s);
  if (!latest) return {0, json::Value::object()};
  checkpoints::TrainState st;
  if (opt && opt->sharded()) {
    st = checkpoints::load_train_state(*latest, w,
                                       checkpoints::MomentShard{opt->shards(), comm_.rank(), opt->m().view(0), opt->v().view(0)});
  } else {
    checkpoints::Moments mom;
    if (opt) mom = {&opt->m(), &opt->v()};
    st = checkpoints::load_train_state(*latest, w, mom);
  }
  CRUCIBLE_USER_CHECK(st.stage_index == stage_index, *latest, ": checkpoint of stage index ", st.stage_index,
                      ", expected ", stage_index, " (did the run config change?)");
  json::Value resume = json::parse(st.resume_json, *latest + ":/resume");
  if (opt && resume.find("adam_updates")) opt->set_updates(resume.at("adam_updates").as_int64());
  log_info("resuming stage ", stage, " at step ", st.step, " from ", *latest);
  if (opt && resume.find("world")) {
    // The file's moments are full-layout, so any world / zero setting loads them; only
    // the gradient reduction order (and so the last bits) depends on the world size.
    const std::int64_t world = resume.at("world").as_int64();
    const std::int64_t zero = resume.find("zero") ? resume.at("zero").as_int64() : 0;
    if (world != comm_.world() || zero != opt->data_parallel().zero_stage)
      log_info(*latest, ": written by ", world, " rank(s) with run.zero = ", zero, ", resumed by ", comm_.world(),
               " with run.zero = ", opt->data_parallel().zero_stage, " (optimizer moments re-sharded",
               world != comm_.world() ? "; not bit-identical to an uninterrupted run: the reduction order changed)" : ")");
  }
  // Drop metrics lines the killed run wrote after this checkpoint.
  if (root() && fs::exists(path("metrics.jsonl"))) {
    std::ifstream in(path("metrics.jsonl"));
    std::string line, kept;
    while (std::getline(in, line)) {
      const json::Value j = json::parse(line, "metrics.jsonl");
      const json::Value* s = j.find("stage");
      const json::Value* k = j.find("step");
      if (s && k && s->as_string() == stage && k->as_int64() > st.step) continue;
      kept += line + "\n";
    }
    std::ofstream(path("metrics.jsonl"), std::ios::trunc) << kept;
  }
  return {st.step, resume};
}

void RunContext::checkpoint(const std::string& stage, std::int64_t stage_index, std::int64_t step,
                            const ModelWeights& w, AdamW* opt, const json::Value& resume, bool force) {
  const bool due = force || (config_.checkpoint_every > 0 && step % config_.checkpoint_every == 0);
  if (!due) return;
  // ZeRO-1: every rank joins the gather of the moments to rank 0, which writes.
  std::pair<Arena, Arena> moments;
  if (opt) moments = opt->full_moments(0);
  if (root()) {
    json::Value r = resume;
    checkpoints::Moments mom;
    if (opt) {
      r.set("adam_updates", opt->updates());
      r.set("world", static_cast<std::int64_t>(comm_.world()));
      r.set("zero", static_cast<std::int64_t>(opt->data_parallel().zero_stage));
      mom = {&moments.first, &moments.second};
    }
    ckpt_->save(w, mom, checkpoints::TrainState{stage, stage_index, step, config_.resolved_toml, json::dump(r)});
  }
  comm_.barrier();
}

}  // namespace crucible::trainer
