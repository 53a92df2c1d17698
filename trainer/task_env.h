// trainer/task_env.h: a verifiable task seen through a tokenizer and a chat format.
//
// Turns problem i of a split into what the stages consume: the rendered prompt
// (R1 template with the "<think>\n" prefill for the R1 recipe), its token ids, the
// SFT target (the programmatic chain of thought, the answer, EOS) with a loss mask
// over the response only, and the reference answer + metadata the rewards check.
// Deterministic: problem i is the same on every rank and after a resume.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "data/chat_template.h"
#include "data/packing.h"
#include "data/tasks.h"
#include "data/tokenizer.h"

namespace crucible::trainer {

struct TaskConfig {
  std::string task = "arithmetic";
  int difficulty = 2;
  std::string ops;                  // arithmetic: subset of "+-*" ("" = all)
  std::string cot = "full";         // arithmetic: "full" or "short" chain of thought
  std::uint64_t seed = 0;
  std::string tokenizer = "byte";  // "byte" or a tokenizer.json / HF directory
  std::string chat_format = "r1";
  bool think_prefill = true;        // the R1 recipe's "<think>\n" after the assistant tag
  void validate() const;
};

struct PromptItem {
  std::string id;
  std::string question;             // the task's prompt text
  std::string rendered;             // after the chat template
  std::vector<std::int32_t> ids;    // rendered, tokenized
  std::string answer;
  json::Value meta;
};

class TaskEnv {
 public:
  explicit TaskEnv(const TaskConfig& c);

  const data::Tokenizer& tokenizer() const { return *tok_; }
  const TaskConfig& config() const { return c_; }
  std::int32_t eos_id() const { return eos_; }

  PromptItem prompt(std::uint64_t index, data::Split split) const;
  // The SFT example of problem `index`: prompt ids, then the target completion with
  // loss mask 1 (EOS included).
  data::TokenizedExample sft_example(std::uint64_t index, data::Split split) const;
  // The completion text an SFT target teaches (what follows the rendered prompt).
  std::string target_completion(const data::Problem& p) const;
  // A completion as the rewards see it: with the prefilled "<think>\n" restored.
  std::string full_completion(const std::string& generated) const;
  // An SFT example from text pairs (rejection-sampled or distillation data).
  data::TokenizedExample example_from_text(const std::string& question, const std::string& completion) const;

 private:
  std::string render(const std::string& question) const;

  TaskConfig c_;
  std::unique_ptr<data::Task> task_;
  std::unique_ptr<data::Tokenizer> tok_;
  data::ChatFormat format_;
  std::int32_t eos_ = -1;
};

}  // namespace crucible::trainer
