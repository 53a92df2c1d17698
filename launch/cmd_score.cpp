// launch/cmd_score.cpp: `crucible score`: score completions offline with weighted rule rewards.
//
//   crucible score --rewards correctness=1,format=0.5 --in FILE.jsonl --out FILE.jsonl
// Each input line is a JSON object with "completion" and "answer" (optional:
// "prompt", "completion_tokens", "metadata"); it is written back unchanged plus
// "reward" (the weighted total), "reward_components" ({name: {score, weight,
// reason, data_error}}) and "reward_data_error". The output is written to a
// temporary file and renamed (data/jsonl.h), so it is complete or absent. A bad
// line is an error naming file:line (or skipped and counted with
// --skip-bad-lines); samples whose reference answer is unusable are data errors:
// counted, listed, and the exit status is 1 unless --allow-data-errors.
// This is how reward ablations are scored offline (DESIGN.md §5).
#include <cstdio>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/json.h"
#include "data/jsonl.h"
#include "launch/args.h"
#include "launch/commands.h"
#include "rewards/composite.h"

namespace crucible::launch {

namespace {

struct Totals {
  std::int64_t scored = 0, data_errors = 0, clean = 0;  // clean: scored without a data error
  double reward_sum = 0;
  std::vector<double> part_sums;
  std::vector<std::string> first_errors;  // "<file>:<line>: <reason>"
};

const json::Value* string_field(const json::Value& v, const char* key, bool required, std::string* why) {
  const json::Value* f = v.find(key);
  if (!f) {
    if (required) *why = std::string("key '") + key + "' is missing";
    return nullptr;
  }
  if (!f->is_string()) {
    *why = std::string("key '") + key + "' must be a string, got " + std::string(json::kind_name(f->kind()));
    return nullptr;
  }
  return f;
}

}  // namespace

int cmd_score(const CommandContext& ctx, const std::vector<std::string>& args) {
  std::string spec, in_path, out_path, options_text;
  bool skip_bad = false, allow_data_errors = false, as_json = false;
  ArgParser p("score", "Score completions offline with weighted rule rewards (reward ablations).");
  p.option("--rewards", &spec, "SPEC",
           "weighted rewards, e.g. correctness=1,format=0.5 (correctness, format, language_consistency, length)")
      .option("--in", &in_path, "FILE", "input JSONL: objects with \"completion\" and \"answer\" (optional: prompt, "
                                        "completion_tokens, metadata)")
      .option("--out", &out_path, "FILE", "output JSONL: each line with \"reward\" and \"reward_components\" added")
      .option("--options", &options_text, "JSON",
              "per-reward options, e.g. '{\"length\": {\"max_tokens\": 4096, \"cache\": 512}}'")
      .flag("--skip-bad-lines", &skip_bad, "skip and count malformed lines instead of stopping at the first")
      .flag("--allow-data-errors", &allow_data_errors, "exit 0 even when some reference answers are unusable")
      .flag("--json", &as_json, "print the summary as one JSON object")
      .epilog("example: crucible score --rewards correctness=1,format=0.5 --in samples.jsonl --out scored.jsonl");
  if (!p.parse(args)) return 0;
  if (spec.empty()) throw UsageError("crucible score: --rewards SPEC is required (e.g. correctness=1,format=0.5)");
  if (in_path.empty()) throw UsageError("crucible score: --in FILE is required");
  if (out_path.empty()) throw UsageError("crucible score: --out FILE is required");
  if (ctx.mpi.rank() != 0) return 0;  // scoring is cheap and single-process

  const json::Value options = options_text.empty() ? json::Value::object() : json::parse(options_text, "--options");
  const rewards::CompositeReward reward(spec, options);
  const bool needs_answer = reward.needs_answer();

  data::JsonlOptions jo;
  jo.skip_bad_lines = skip_bad;
  data::JsonlReader reader = data::JsonlReader::open(in_path, jo);
  data::JsonlWriter writer(out_path);
  Totals t;
  t.part_sums.assign(reward.weights().size(), 0.0);
  data::JsonlRecord rec;
  while (reader.next(rec)) {
    std::string why;
    const json::Value* completion = string_field(rec.value, "completion", true, &why);
    const json::Value* answer = completion ? string_field(rec.value, "answer", needs_answer, &why) : nullptr;
    const json::Value* prompt = why.empty() ? string_field(rec.value, "prompt", false, &why) : nullptr;
    std::int64_t tokens = -1;
    if (const json::Value* n = rec.value.find("completion_tokens"); n && why.empty()) {
      if (n->is_integer() && n->as_int64() >= 0) tokens = n->as_int64();
      else why = "key 'completion_tokens' must be a non-negative integer";
    }
    if (!why.empty()) {
      reader.reject(rec, why);  // throws "<file>:<line>: why" unless skipping
      continue;
    }
    rewards::Sample s;
    s.completion = completion->as_string();
    if (answer) s.answer = answer->as_string();
    if (prompt) s.prompt = prompt->as_string();
    s.metadata = rec.value.find("metadata");
    s.completion_tokens = tokens;
    const rewards::CompositeResult r = reward.score_all(s);

    json::Value parts = json::Value::object();
    for (std::size_t i = 0; i < r.parts.size(); ++i) {
      const auto& part = r.parts[i];
      json::Value c = json::Value::object();
      c.set("score", part.r.score);
      c.set("weight", part.weight);
      c.set("reason", part.r.reason);
      c.set("data_error", part.r.data_error);
      parts.set(part.name, std::move(c));
      if (!r.data_error) t.part_sums[i] += part.r.score;
      if (part.r.data_error && t.first_errors.size() < 5)
        t.first_errors.push_back(in_path + ":" + std::to_string(rec.line) + ": " + part.name + ": " + part.r.reason);
    }
    json::Value line = rec.value;
    line.set("reward", r.total);
    line.set("reward_components", std::move(parts));
    line.set("reward_data_error", r.data_error);
    writer.write(line);
    ++t.scored;
    if (r.data_error) {
      ++t.data_errors;
    } else {
      ++t.clean;
      t.reward_sum += r.total;
    }
  }
  writer.commit();

  const data::JsonlStats& st = reader.stats();
  auto mean = [&](double sum) { return t.clean > 0 ? sum / static_cast<double>(t.clean) : 0.0; };
  if (as_json) {
    json::Value j = json::Value::object();
    j.set("in", in_path);
    j.set("out", out_path);
    j.set("rewards", reward.spec());
    j.set("lines", t.scored);
    j.set("skipped_lines", st.skipped);
    j.set("data_errors", t.data_errors);
    j.set("mean_reward", t.clean > 0 ? json::Value(mean(t.reward_sum)) : json::Value());
    json::Value comps = json::Value::object();
    for (std::size_t i = 0; i < reward.weights().size(); ++i) {
      json::Value c = json::Value::object();
      c.set("weight", reward.weights()[i].weight);
      c.set("mean", t.clean > 0 ? json::Value(mean(t.part_sums[i])) : json::Value());
      comps.set(reward.weights()[i].name, std::move(c));
    }
    j.set("components", std::move(comps));
    std::printf("%s\n", json::dump(j, 2).c_str());
  } else {
    std::printf("scored %lld lines of %s -> %s", static_cast<long long>(t.scored), in_path.c_str(), out_path.c_str());
    if (st.skipped > 0) std::printf(" (%lld bad lines skipped)", static_cast<long long>(st.skipped));
    std::printf("\nrewards %s\n", reward.spec().c_str());
    if (t.clean > 0) {
      std::printf("mean reward %.4f over %lld samples without data errors\n", mean(t.reward_sum),
                  static_cast<long long>(t.clean));
      for (std::size_t i = 0; i < reward.weights().size(); ++i)
        std::printf("  %-22s weight %-8g mean %.4f\n", reward.weights()[i].name.c_str(), reward.weights()[i].weight,
                    mean(t.part_sums[i]));
    }
    std::printf("data errors: %lld\n", static_cast<long long>(t.data_errors));
    for (const std::string& r : st.skip_reasons) std::printf("  skipped %s\n", r.c_str());
  }
  std::fflush(stdout);
  if (t.data_errors > 0 && !allow_data_errors) {
    std::string first;
    for (const std::string& e : t.first_errors) first += "\n  " + e;
    CRUCIBLE_FAIL(t.data_errors, " of ", t.scored, " samples have data errors (their reward is not meaningful; ",
                  out_path, " was written with \"reward_data_error\": true on them). Fix the data, or pass "
                  "--allow-data-errors to accept them. First:", first);
  }
  return 0;
}

}  // namespace crucible::launch
