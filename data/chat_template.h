// data/chat_template.h: chat templates, rendered natively in C++.
//
// Each format renders a conversation byte for byte as Hugging Face transformers'
// apply_chat_template(tokenize=False) renders the stock Jinja template of that family;
// there is no Jinja interpreter. Supported: roles system/user/assistant with plain string
// content, add_generation_prompt, and each family's thinking behaviour. Anything else
// (tool calls, tool results, images, other roles, an empty conversation) is a crucible::Error.
//
//   R1      DeepSeek. think_prefill = false: DeepSeek-V3's template (the deepseek_v3
//           tokenizer_config.json). think_prefill = true: DeepSeek-R1's hub template.
//           Both: "<bos>" + every system message joined by "\n\n" (hoisted to the front,
//           wherever it stands) + "<｜User｜>{u}" / "<｜Assistant｜>{a}<｜end▁of▁sentence｜>";
//           the generation prompt is "<｜Assistant｜>". R1 adds "<think>\n" after it and keeps
//           only the text after the last "</think>" of every assistant turn (earlier
//           reasoning is not shown again; note that this applies to a final turn too).
//           The byte-level demo tokenizer uses the same special strings, so R1 works with it.
//   ChatML  Qwen3's template: "<|im_start|>{role}\n{content}<|im_end|>\n"; an assistant
//           turn's "<think>...</think>" is cut out, and re-rendered as
//           "<think>\n{reasoning}\n</think>\n\n" only for turns after the last user query
//           that have reasoning or are the last message; enable_thinking = false appends
//           "<think>\n\n</think>\n\n" to the generation prompt "<|im_start|>assistant\n".
//           Other ChatML templates (Qwen2.5's default system prompt) are not reproduced.
//   Llama3  Meta-Llama-3's template (the one in the shared llama3_1 tokenizer_config.json):
//           "<bos>" once, then "<|start_header_id|>{role}<|end_header_id|>\n\n{content
//           stripped of Unicode whitespace}<|eot_id|>"; no date or default system lines.
//
// Reference: tokenizer_config.json "chat_template" of deepseek-ai/DeepSeek-V3, DeepSeek-R1,
// Qwen/Qwen3, meta-llama/Meta-Llama-3; reference/checkpoint_formats.md §3.3. Goldens:
// tests/data/chat_golden/*.json, made with transformers by tools/make_chat_goldens.py.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace crucible::json {
class Value;
}

namespace crucible::data {

struct ChatMessage {
  std::string role;     // "system", "user" or "assistant"
  std::string content;  // UTF-8, any text (template markup inside is data, never interpreted)
};

enum class ChatFormat { R1, ChatML, Llama3 };

struct ChatTemplateOptions {
  // Append the opening of an assistant turn (the prompt for generation).
  bool add_generation_prompt = true;
  // R1 only: render DeepSeek-R1's template instead of DeepSeek-V3's (see above): the
  // generation prompt ends "<｜Assistant｜><think>\n" and reasoning is cut from assistant
  // turns. The R1 recipe's prompts use true.
  bool think_prefill = false;
  // ChatML (Qwen3) only: false closes an empty think block in the generation prompt
  // (Qwen3's non-thinking mode). true is also what the template does when it is not set.
  bool enable_thinking = true;
  // R1 and Llama3: the text rendered for {{ bos_token }}. nullopt: the format's stock
  // token (default_bos_token). "" when the tokenizer adds BOS as an id itself.
  std::optional<std::string> bos_token;
};

// Renders the conversation; throws crucible::Error naming the message for an unsupported
// one (see check_chat_messages).
std::string render_chat(ChatFormat f, std::span<const ChatMessage> messages,
                        const ChatTemplateOptions& o = {});

// Throws unless the conversation has at least one message and only the roles system,
// user and assistant (transformers refuses an empty conversation too).
void check_chat_messages(std::span<const ChatMessage> messages);

// The exact Jinja text of the stock template that transformers renders identically to
// render_chat(f, messages, o) for every supported conversation (with o's
// add_generation_prompt and enable_thinking passed as its arguments and o's bos_token as
// the tokenizer's). For R1 it depends on o.think_prefill (R1's or V3's template), so an
// exporter passes the options it renders with. Reference: tokenizer_config.json files.
std::string_view chat_template_source(ChatFormat f, const ChatTemplateOptions& o);

// True when `jinja` is, byte for byte, a template that render_chat reproduces for f.
bool is_stock_chat_template(ChatFormat f, std::string_view jinja);

// "<｜begin▁of▁sentence｜>" (R1), "" (ChatML: Qwen has no BOS), "<|begin_of_text|>" (Llama3).
std::string_view default_bos_token(ChatFormat f);

// The text that ends an assistant turn and stops generation: "<｜end▁of▁sentence｜>" (R1),
// "<|im_end|>" (ChatML), "<|eot_id|>" (Llama3).
std::string_view chat_end_of_turn(ChatFormat f);

// "r1", "chatml", "llama3" (the names configs use); parse_chat_format is their inverse.
std::string_view chat_format_name(ChatFormat f);
std::optional<ChatFormat> parse_chat_format(std::string_view name);

// The family of a Jinja template, by its markers: "<｜Assistant｜>" (R1), "<|im_start|>"
// (ChatML), "<|start_header_id|>" (Llama3); nullopt when none or several are present.
std::optional<ChatFormat> chat_format_of_template(std::string_view jinja);

// Reads tokenizer_config.json's "chat_template" (a string, or the entry named "default" of
// a list of {name, template}; when absent, a chat_template.jinja file beside it, as newer
// transformers save it) and returns its family. Throws crucible::Error when the file has
// no template or it is not recognized. Logs a warning when the family is recognized but
// the text is not a stock template (render_chat then follows the stock one).
ChatFormat detect_chat_format(const std::string& tokenizer_config_json_path);

// Converts a JSON array of {"role": ..., "content": "..."} (OpenAI/HF messages, as in
// JSONL datasets) and checks it. Throws, naming `where` and the message index, for content
// that is not a string (null with tool calls, a list of parts with images), for the keys
// tool_calls, function_call, tool_call_id and reasoning_content, and for unsupported roles.
// Other keys are ignored.
std::vector<ChatMessage> chat_messages_from_json(const json::Value& messages, std::string_view where);

}  // namespace crucible::data
