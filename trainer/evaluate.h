// trainer/evaluate.h: held-out evaluation: pass@1 (greedy), pass@k (sampled),
// format rate and mean response length, with the sample size and standard error.
#pragma once

#include "dist/communicator.h"
#include "model/transformer.h"
#include "trainer/scorer.h"

namespace crucible::trainer {

struct EvalConfig {
  std::int64_t n = 100;               // held-out prompts (Test split, indices 0..n-1)
  std::int64_t max_new_tokens = 128;
  std::int64_t batch = 16;            // prompts decoded together
  std::int64_t k = 1;                 // pass@k with k samples at `temperature` (k = 1: greedy)
  double temperature = 0.8;
  std::int64_t samples = 3;           // greedy completions kept in the result (report.json)
  void validate() const;
};

// One greedy completion, kept so a report shows what the model writes.
struct EvalSample {
  std::string question, completion, answer;
  bool correct = false;
};

struct EvalResult {
  std::int64_t n = 0;
  double accuracy = 0, accuracy_se = 0;  // pass@1 (greedy)
  double format_rate = 0;
  double mean_length = 0;                // generated tokens
  double pass_at_k = 0;                  // when k > 1
  std::int64_t k = 1;
  double seconds = 0;
  std::vector<EvalSample> samples;       // rank 0's first EvalConfig::samples completions
};

EvalResult evaluate(Transformer& model, const TaskEnv& env, const Scorer& scorer, const EvalConfig& c,
                    std::uint64_t seed, dist::Communicator& comm);

}  // namespace crucible::trainer
