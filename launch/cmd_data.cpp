// launch/cmd_data.cpp: `crucible data make TASK ...` (synthetic datasets) and
// `crucible data check FILE ...` (validate a JSONL dataset).
//
// Invariant: `make` is a pure function of (task, split, difficulty, seed, start, n):
// line i holds task.generate(start + i, split, difficulty), written atomically,
// so re-running it reproduces the file byte for byte. Only rank 0 writes.
// Reference: data/tasks.h (formats, split disjointness), data/dataset.h (records).
#include <charconv>
#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include "core/json.h"
#include "data/dataset.h"
#include "data/jsonl.h"
#include "data/tasks.h"
#include "launch/args.h"
#include "launch/commands.h"

namespace crucible::launch {

int cmd_data(const CommandContext& ctx, const std::vector<std::string>& args);

namespace {

std::int64_t parse_count(const std::string& cmd, const std::string& name, const std::string& text, std::int64_t lo,
                         std::int64_t hi) {
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty())
    throw UsageError("crucible " + cmd + ": " + name + " must be an integer, got '" + text + "'");
  if (v < lo || v > hi)
    throw UsageError("crucible " + cmd + ": " + name + " must be in [" + std::to_string(lo) + ", " +
                     std::to_string(hi) + "], got " + text);
  return v;
}

std::string tasks_list() {
  std::string s;
  for (const std::string& n : data::task_names()) s += (s.empty() ? "" : ", ") + n;
  return s;
}

int data_make(const CommandContext& ctx, const std::vector<std::string>& args) {
  std::string task_name, n_text, out, split_text = "train", difficulty_text, seed_text = "0", start_text = "0", ops, cot;
  bool sft = false;
  ArgParser p("data make", "Generate a synthetic verifiable-task dataset as JSONL: one line per problem with\n"
                           "\"id\", \"prompt\", \"answer\", \"meta\" (RL prompts), plus \"response\" with --sft\n"
                           "(the programmatic <think> chain of thought and the \\boxed{} answer, for cold-start SFT).\n"
                           "Train and test problems never overlap, whatever the seeds.");
  p.positional("TASK", &task_name, "task: " + tasks_list())
      .option("--n", &n_text, "N", "number of problems (required)")
      .option("--out", &out, "FILE", "output JSONL file, written atomically (required)")
      .option("--split", &split_text, "SPLIT", "train or test (default train)")
      .option("--difficulty", &difficulty_text, "D",
              "arithmetic: digits per operand 1..9 (default 3); countdown: 1..4 for 3..6 numbers (default 2)")
      .option("--seed", &seed_text, "S", "generator seed (default 0)")
      .option("--ops", &ops, "OPS", "arithmetic: operators drawn, a subset of +-* (default all)")
      .option("--cot", &cot, "STYLE", "chain-of-thought style: full (default) or short (arithmetic)")
      .option("--start", &start_text, "K", "index of the first problem (default 0); extend a set with --start N")
      .flag("--sft", &sft, "add \"response\": the SFT completion (<think>...</think> then \\boxed{answer})")
      .epilog("example: crucible data make countdown --n 10000 --difficulty 2 --out data/countdown_train.jsonl\n"
              "         crucible data make countdown --n 500 --split test --out data/countdown_test.jsonl");
  if (!p.parse(args)) return 0;
  if (n_text.empty()) throw UsageError("crucible data make: --n is required; see 'crucible data make --help'");
  if (out.empty()) throw UsageError("crucible data make: --out is required; see 'crucible data make --help'");
  if (split_text != "train" && split_text != "test")
    throw UsageError("crucible data make: --split must be train or test, got '" + split_text + "'");
  const std::int64_t n = parse_count("data make", "--n", n_text, 1, INT64_MAX);
  const std::int64_t seed = parse_count("data make", "--seed", seed_text, 0, INT64_MAX);
  const std::int64_t start = parse_count("data make", "--start", start_text, 0, INT64_MAX - n);
  bool known = false;
  for (const std::string& t : data::task_names()) known = known || t == task_name;
  if (!known)
    throw UsageError("crucible data make: unknown task '" + task_name + "' (known tasks: " + tasks_list() + ")");
  const auto task = data::make_task(task_name, static_cast<std::uint64_t>(seed), data::TaskOptions{ops, cot});
  const int difficulty =
      difficulty_text.empty()
          ? task->default_difficulty()
          : static_cast<int>(parse_count("data make", "--difficulty", difficulty_text, task->min_difficulty(),
                                         task->max_difficulty()));
  const data::Split split = data::parse_split(split_text);
  if (ctx.mpi.rank() != 0) return 0;

  data::JsonlWriter writer(out);
  std::set<std::string> distinct;
  std::size_t prompt_chars = 0, response_chars = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    data::Problem prob = task->generate(static_cast<std::uint64_t>(start + i), split, difficulty);
    distinct.insert(prob.meta.at("canonical").as_string());
    json::Value line = json::Value::object();
    line.set("id", prob.id);
    line.set("prompt", prob.prompt);
    line.set("answer", prob.answer);
    if (sft) {
      std::string response = data::sft_completion(prob);
      response_chars += response.size();
      line.set("response", std::move(response));
    }
    line.set("meta", std::move(prob.meta));
    prompt_chars += prob.prompt.size();
    writer.write(line);
  }
  writer.commit();
  std::printf("wrote %lld %s %s problems (difficulty %d, seed %lld, indices %lld..%lld) to %s\n",
              static_cast<long long>(n), task_name.c_str(), split_text.c_str(), difficulty,
              static_cast<long long>(seed), static_cast<long long>(start), static_cast<long long>(start + n - 1),
              out.c_str());
  std::printf("distinct problems: %zu; mean prompt %.0f chars", distinct.size(),
              static_cast<double>(prompt_chars) / static_cast<double>(n));
  if (sft) std::printf("; mean response %.0f chars", static_cast<double>(response_chars) / static_cast<double>(n));
  std::printf("\n");
  return 0;
}

int data_check(const CommandContext& ctx, const std::vector<std::string>& args) {
  std::string file, kind = "rl";
  bool skip = false;
  ArgParser p("data check", "Validate a JSONL dataset: every line must be a valid RL record (\"prompt\", \"answer\")\n"
                            "or SFT record (\"prompt\" + \"response\", or \"messages\"). Prints the counts;\n"
                            "exits with 1 when a line was bad.");
  p.positional("FILE", &file, "JSONL file")
      .option("--kind", &kind, "KIND", "rl or sft (default rl)")
      .flag("--skip-bad-lines", &skip, "count bad lines and show the first reasons instead of stopping at one");
  if (!p.parse(args)) return 0;
  if (kind != "rl" && kind != "sft")
    throw UsageError("crucible data check: --kind must be rl or sft, got '" + kind + "'");
  if (ctx.mpi.rank() != 0) return 0;
  data::JsonlOptions opts;
  opts.skip_bad_lines = skip;
  data::JsonlStats st;
  if (kind == "rl") data::load_rl_prompts(file, opts, &st);
  else data::load_sft(file, opts, &st);
  std::printf("%s: %lld lines, %lld valid %s records, %lld skipped\n", file.c_str(),
              static_cast<long long>(st.lines), static_cast<long long>(st.records), kind.c_str(),
              static_cast<long long>(st.skipped));
  for (const std::string& r : st.skip_reasons) std::printf("  skipped %s\n", r.c_str());
  return st.skipped == 0 ? 0 : 1;
}

constexpr const char* kDataHelp =
    "usage: crucible data SUBCOMMAND [ARGS]\n\n"
    "Datasets: synthetic verifiable tasks and JSONL validation.\n\n"
    "subcommands:\n"
    "  make TASK --n N --out FILE   generate problems of a task (arithmetic, countdown) as JSONL\n"
    "  check FILE [--kind rl|sft]   validate a JSONL dataset and print its counts\n\n"
    "'crucible data SUBCOMMAND --help' for the options of each.\n";

}  // namespace

int cmd_data(const CommandContext& ctx, const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "-h" || args[0] == "--help") {
    std::fputs(kDataHelp, stdout);
    return args.empty() ? 2 : 0;
  }
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (args[0] == "make") return data_make(ctx, rest);
  if (args[0] == "check") return data_check(ctx, rest);
  throw UsageError("crucible data: unknown subcommand '" + args[0] + "' (expected make or check); see 'crucible data --help'");
}

}  // namespace crucible::launch
