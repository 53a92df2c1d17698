// checkpoints/ollama.h: an Ollama Modelfile for an exported GGUF.
//
// `ollama create NAME -f Modelfile` imports the GGUF named by FROM (relative to the
// Modelfile) and uses TEMPLATE (a Go text/template over .System, .Prompt, .Response)
// to render prompts, PARAMETER stop to end generation and the sampling defaults.
// The template must render the same text as the model's chat format, or the model
// sees prompts it was not trained on. Reference: reference/checkpoint_formats.md §5,
// Ollama docs/modelfile.mdx.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/chat_template.h"

namespace crucible::checkpoints {

struct OllamaOptions {
  std::string gguf_file = "model.gguf";  // FROM ./<gguf_file>
  // R1:     [bos]{system}<｜User｜>{u}<｜Assistant｜>{a}<｜end▁of▁sentence｜>...<｜Assistant｜>[<think>\n]
  // ChatML: <|im_start|>{role}\n{content}<|im_end|>\n ... <|im_start|>assistant\n
  // Llama3: [bos]<|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|> ...
  data::ChatFormat format = data::ChatFormat::R1;
  // Text rendered first (R1, Llama3): the BOS token's text when the GGUF does not add BOS
  // itself (tokenizer.ggml.add_bos_token false, as for the byte tokenizer); "" when it does.
  std::string bos_token = "<｜begin▁of▁sentence｜>";
  // R1 token texts (the defaults are DeepSeek-R1's; the demo byte tokenizer uses them too).
  std::string user_token = "<｜User｜>";
  std::string assistant_token = "<｜Assistant｜>";
  std::string eos_token = "<｜end▁of▁sentence｜>";
  bool think_prefix = true;  // R1: end the prompt with "<think>\n" (DeepSeek-R1's updated template)
  std::vector<std::string> stop;  // PARAMETER stop; empty: the format's end tokens
  double temperature = 0.6;
  double top_p = 0.95;
  std::int64_t num_ctx = 0;  // 0: not written (Ollama's default)
  std::string system;        // SYSTEM; empty: none

  void validate() const;
};

// The Modelfile text.
std::string ollama_modelfile(const OllamaOptions& o);
// The Go template alone (TEMPLATE's body).
std::string ollama_template(const OllamaOptions& o);
// Writes <dir>/Modelfile atomically; the GGUF is expected beside it.
void write_ollama_modelfile(const std::string& dir, const OllamaOptions& o);

}  // namespace crucible::checkpoints
