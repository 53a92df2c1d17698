// trainer/task_env.cpp: prompts, SFT examples and completions of a task.
#include "trainer/task_env.h"

#include "core/error.h"

namespace crucible::trainer {

namespace {
constexpr std::string_view kThinkPrefill = "<think>\n";
}

void TaskConfig::validate() const {
  CRUCIBLE_USER_CHECK(data::parse_chat_format(chat_format).has_value(), "task.chat_format '", chat_format,
                      "' is not one of r1, chatml, llama3");
  CRUCIBLE_USER_CHECK(difficulty >= 1, "task.difficulty must be >= 1, got ", difficulty);
}

TaskEnv::TaskEnv(const TaskConfig& c) : c_(c) {
  c_.validate();
  task_ = data::make_task(c_.task, c_.seed, data::TaskOptions{c_.ops, c_.cot});
  tok_ = data::load_tokenizer(c_.tokenizer);
  format_ = *data::parse_chat_format(c_.chat_format);
  const auto eos = tok_->eos_id();
  CRUCIBLE_USER_CHECK(eos.has_value(), "tokenizer ", c_.tokenizer, " has no EOS token");
  eos_ = *eos;
}

std::string TaskEnv::render(const std::string& question) const {
  const data::ChatMessage msg{"user", question};
  data::ChatTemplateOptions o;
  o.add_generation_prompt = true;
  o.think_prefill = c_.think_prefill && format_ == data::ChatFormat::R1;
  return data::render_chat(format_, std::span<const data::ChatMessage>(&msg, 1), o);
}

PromptItem TaskEnv::prompt(std::uint64_t index, data::Split split) const {
  const data::Problem p = task_->generate(index, split, c_.difficulty);
  PromptItem item;
  item.id = p.id;
  item.question = p.prompt;
  item.rendered = render(p.prompt);
  item.ids = tok_->encode(item.rendered);
  item.answer = p.answer;
  item.meta = p.meta;
  return item;
}

std::string TaskEnv::target_completion(const data::Problem& p) const {
  std::string full = data::sft_completion(p);
  // The prompt already ends with the prefilled "<think>\n": the target continues it.
  if (c_.think_prefill && format_ == data::ChatFormat::R1 && full.starts_with(kThinkPrefill))
    full.erase(0, kThinkPrefill.size());
  return full;
}

std::string TaskEnv::full_completion(const std::string& generated) const {
  return c_.think_prefill && format_ == data::ChatFormat::R1 ? std::string(kThinkPrefill) + generated : generated;
}

data::TokenizedExample TaskEnv::example_from_text(const std::string& question, const std::string& completion) const {
  data::TokenizedExample ex;
  ex.ids = tok_->encode(render(question));
  ex.loss_mask.assign(ex.ids.size(), 0);
  std::vector<std::int32_t> resp = tok_->encode(completion);
  resp.push_back(eos_);
  ex.ids.insert(ex.ids.end(), resp.begin(), resp.end());
  ex.loss_mask.insert(ex.loss_mask.end(), resp.size(), 1);
  return ex;
}

data::TokenizedExample TaskEnv::sft_example(std::uint64_t index, data::Split split) const {
  const data::Problem p = task_->generate(index, split, c_.difficulty);
  return example_from_text(p.prompt, target_completion(p));
}

}  // namespace crucible::trainer
