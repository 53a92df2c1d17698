// trainer/evaluate.cpp: greedy and sampled evaluation on the held-out split.
#include "trainer/evaluate.h"

#include <chrono>
#include <cmath>

#include "core/error.h"
#include "data/tokenizer_unicode.h"
#include "rollout/generator.h"

namespace crucible::trainer {

void EvalConfig::validate() const {
  CRUCIBLE_USER_CHECK(n >= 1, "eval.n must be >= 1");
  CRUCIBLE_USER_CHECK(max_new_tokens >= 1, "eval.max_new_tokens must be >= 1");
  CRUCIBLE_USER_CHECK(batch >= 1, "eval.batch must be >= 1");
  CRUCIBLE_USER_CHECK(k >= 1, "eval.k must be >= 1");
  CRUCIBLE_USER_CHECK(samples >= 0, "eval.samples must be >= 0");
}

EvalResult evaluate(Transformer& model, const TaskEnv& env, const Scorer& scorer, const EvalConfig& c,
                    std::uint64_t seed, dist::Communicator& comm) {
  c.validate();
  const auto t0 = std::chrono::steady_clock::now();
  const int rank = comm.rank(), world = comm.world();
  double sums[5] = {0, 0, 0, 0, 0};  // n, correct, formatted, length, pass@k
  EvalResult r;
  std::vector<PromptItem> mine;
  for (std::int64_t i = rank; i < c.n; i += world) mine.push_back(env.prompt(static_cast<std::uint64_t>(i), data::Split::Test));
  for (std::size_t first = 0; first < mine.size(); first += static_cast<std::size_t>(c.batch)) {
    const std::size_t count = std::min(mine.size() - first, static_cast<std::size_t>(c.batch));
    std::vector<std::vector<std::int32_t>> prompts;
    std::int64_t longest = 0;
    for (std::size_t i = 0; i < count; ++i) {
      prompts.push_back(mine[first + i].ids);
      longest = std::max<std::int64_t>(longest, static_cast<std::int64_t>(mine[first + i].ids.size()));
    }
    rollout::Generator gen(model, static_cast<std::int64_t>(count), longest + c.max_new_tokens);
    rollout::SamplingParams greedy;
    greedy.temperature = 0;
    greedy.max_tokens = c.max_new_tokens;
    greedy.eos_ids = {env.eos_id()};
    const auto outs = gen.generate(prompts, greedy);
    for (std::size_t i = 0; i < count; ++i) {
      std::vector<std::int32_t> content = outs[i].tokens;
      if (!content.empty() && content.back() == env.eos_id()) content.pop_back();
      const std::string completion = env.full_completion(env.tokenizer().decode(content));
      const Score s = scorer.score(mine[first + i], completion, static_cast<std::int64_t>(outs[i].tokens.size()));
      if (rank == 0 && static_cast<std::int64_t>(r.samples.size()) < c.samples)
        r.samples.push_back({mine[first + i].question, data::unicode::utf8_lossy(completion), mine[first + i].answer,
                             s.correct});
      sums[0] += 1;
      sums[1] += s.correct;
      sums[2] += s.formatted;
      sums[3] += static_cast<double>(outs[i].tokens.size());
      bool any = s.correct;
      if (c.k > 1 && !any) {
        rollout::SamplingParams sp = greedy;
        sp.temperature = c.temperature;
        sp.seed = seed;
        // Streams keyed by the prompt's global index: independent of the rank split.
        const std::int64_t global = rank + static_cast<std::int64_t>(first + i) * world;
        sp.stream_base = static_cast<std::uint64_t>(global * c.k);
        rollout::Generator g2(model, c.k - 1, static_cast<std::int64_t>(mine[first + i].ids.size()) + c.max_new_tokens);
        const auto samples = g2.generate(std::vector<std::vector<std::int32_t>>(static_cast<std::size_t>(c.k - 1), mine[first + i].ids), sp);
        for (const auto& o : samples) {
          std::vector<std::int32_t> t = o.tokens;
          if (!t.empty() && t.back() == env.eos_id()) t.pop_back();
          any |= scorer.score(mine[first + i], env.full_completion(env.tokenizer().decode(t)),
                              static_cast<std::int64_t>(o.tokens.size())).correct;
        }
      }
      sums[4] += any;
    }
  }
  comm.all_reduce_f64(std::span<double>(sums, 5), dist::ReduceOp::Sum);
  r.n = static_cast<std::int64_t>(sums[0]);
  const double n = std::max(sums[0], 1.0);
  r.accuracy = sums[1] / n;
  r.accuracy_se = std::sqrt(r.accuracy * (1 - r.accuracy) / n);
  r.format_rate = sums[2] / n;
  r.mean_length = sums[3] / n;
  r.pass_at_k = sums[4] / n;
  r.k = c.k;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace crucible::trainer
