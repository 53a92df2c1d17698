// data/chat_template.cpp: chat format names, special strings, detection from
// tokenizer_config.json, and messages from JSON.
//
// Invariant: detection only recognizes a family (by markers no other family's template
// contains) and never guesses: no template, no marker or markers of several families is an
// error that says what to pass instead. Rendering lives in chat_template_render.cpp, the
// template texts in chat_template_sources.cpp.
// Reference: reference/checkpoint_formats.md §3.2 (tokenizer_config.json keys, chat_template
// as a string or a list of {name, template}).
#include <array>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>

#include "core/error.h"
#include "core/json.h"
#include "core/log.h"
#include "data/chat_template.h"

namespace crucible::data {
namespace {

struct FormatInfo {
  ChatFormat format;
  std::string_view name;
  std::string_view marker;  // a string only this family's templates contain
  std::string_view bos;
  std::string_view end_of_turn;
};

constexpr std::array<FormatInfo, 3> kFormats = {{
    {ChatFormat::R1, "r1", "<｜Assistant｜>", "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"},
    {ChatFormat::ChatML, "chatml", "<|im_start|>", "", "<|im_end|>"},
    {ChatFormat::Llama3, "llama3", "<|start_header_id|>", "<|begin_of_text|>", "<|eot_id|>"},
}};

const FormatInfo& info(ChatFormat f) {
  for (const FormatInfo& i : kFormats)
    if (i.format == f) return i;
  CRUCIBLE_FAIL("chat template: unknown ChatFormat ", static_cast<int>(f));
}

std::string read_text_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  CRUCIBLE_USER_CHECK(in, path.string(), ": cannot be read");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The template text of a tokenizer_config.json; `origin` says where it came from.
std::string template_of_config(const std::string& path, std::string& origin) {
  const json::Value config = json::parse_file(path);
  CRUCIBLE_USER_CHECK(config.is_object(), path, ": a tokenizer_config.json is a JSON object, this is ",
                      json::kind_name(config.kind()));
  origin = path;
  if (const json::Value* t = config.find("chat_template"); t != nullptr && !t->is_null()) {
    if (t->is_string()) return t->as_string();
    CRUCIBLE_USER_CHECK(t->is_array(), path, ":", t->line(), ": chat_template is a ", json::kind_name(t->kind()),
                        "; expected a string or a list of {\"name\", \"template\"}");
    for (const json::Value& entry : t->as_array()) {
      const json::Value* name = entry.find("name");
      if (name != nullptr && name->is_string() && name->as_string() == "default") return entry.at("template").as_string();
    }
    CRUCIBLE_FAIL(path, ":", t->line(), ": chat_template is a list without an entry named \"default\"");
  }
  const std::filesystem::path jinja = std::filesystem::path(path).parent_path() / "chat_template.jinja";
  CRUCIBLE_USER_CHECK(std::filesystem::exists(jinja), path,
                      ": no chat_template (and no chat_template.jinja beside it); choose the chat format "
                      "explicitly (r1, chatml or llama3)");
  origin = jinja.string();
  return read_text_file(jinja);
}

}  // namespace

std::string_view default_bos_token(ChatFormat f) { return info(f).bos; }
std::string_view chat_end_of_turn(ChatFormat f) { return info(f).end_of_turn; }
std::string_view chat_format_name(ChatFormat f) { return info(f).name; }

std::optional<ChatFormat> parse_chat_format(std::string_view name) {
  for (const FormatInfo& i : kFormats)
    if (i.name == name) return i.format;
  return std::nullopt;
}

std::optional<ChatFormat> chat_format_of_template(std::string_view jinja) {
  std::optional<ChatFormat> found;
  for (const FormatInfo& i : kFormats) {
    if (jinja.find(i.marker) == std::string_view::npos) continue;
    if (found) return std::nullopt;  // markers of two families: not one we know
    found = i.format;
  }
  return found;
}

ChatFormat detect_chat_format(const std::string& tokenizer_config_json_path) {
  std::string origin;
  const std::string jinja = template_of_config(tokenizer_config_json_path, origin);
  const std::optional<ChatFormat> f = chat_format_of_template(jinja);
  CRUCIBLE_USER_CHECK(f.has_value(), origin,
                      ": chat template not recognized: crucible renders DeepSeek (marker \"<｜Assistant｜>\"), "
                      "ChatML/Qwen3 (\"<|im_start|>\") and Llama 3 (\"<|start_header_id|>\") templates, and this "
                      "one has none or several of those markers; choose the chat format explicitly");
  if (!is_stock_chat_template(*f, jinja) && log_enabled(LogLevel::Warn))
    log_line(LogLevel::Warn, detail::concat(origin, ": chat template looks like ", chat_format_name(*f),
                                            " but is not the stock text; crucible renders the stock ",
                                            chat_format_name(*f), " template, so check a rendered prompt"));
  return *f;
}

std::vector<ChatMessage> chat_messages_from_json(const json::Value& messages, std::string_view where) {
  CRUCIBLE_USER_CHECK(messages.is_array(), where, ": messages must be a JSON array of {\"role\", \"content\"}, not ",
                      json::kind_name(messages.kind()));
  std::vector<ChatMessage> out;
  out.reserve(messages.size());
  const json::Array& items = messages.as_array();
  for (std::size_t i = 0; i < items.size(); ++i) {
    const json::Value& m = items[i];
    CRUCIBLE_USER_CHECK(m.is_object(), where, ": message ", i, " is a ", json::kind_name(m.kind()),
                        ", expected an object {\"role\", \"content\"}");
    for (std::string_view key : {"tool_calls", "function_call", "tool_call_id"})
      CRUCIBLE_USER_CHECK(m.find(key) == nullptr, where, ": message ", i, " has \"", key,
                          "\": tool calls are not supported by crucible's chat templates");
    CRUCIBLE_USER_CHECK(m.find("reasoning_content") == nullptr, where, ": message ", i,
                        " has \"reasoning_content\", which is not supported; put the reasoning in content as "
                        "\"<think>\\n...\\n</think>\\n\\n\" before the answer");
    const json::Value* role = m.find("role");
    CRUCIBLE_USER_CHECK(role != nullptr && role->is_string(), where, ": message ", i,
                        " needs a string \"role\" (system, user or assistant)");
    const json::Value* content = m.find("content");
    CRUCIBLE_USER_CHECK(content != nullptr, where, ": message ", i, " has no \"content\"");
    CRUCIBLE_USER_CHECK(!content->is_array(), where, ": message ", i,
                        " has content as a list of parts (images or other multimodal input), which is not "
                        "supported; content must be a string");
    CRUCIBLE_USER_CHECK(content->is_string(), where, ": message ", i, " has content of type ",
                        json::kind_name(content->kind()), "; content must be a string");
    out.push_back({role->as_string(), content->as_string()});
  }
  try {
    check_chat_messages(out);
  } catch (const Error& e) {
    throw Error(detail::concat(where, ": ", e.what()));
  }
  return out;
}

}  // namespace crucible::data
