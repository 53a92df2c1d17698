// data/chat_template_render.cpp: render_chat for R1 (DeepSeek-V3/R1), ChatML (Qwen3), Llama3.
//
// Invariant: each renderer emits exactly the bytes the stock Jinja template emits through
// transformers' apply_chat_template for system/user/assistant messages with string content.
// The Python string operations the templates use (split, strip, lstrip('\n'), `in`,
// startswith) are mirrored by the small helpers below, with Python's semantics, including
// str.strip()'s Unicode whitespace.
// Reference: the templates in chat_template_sources.cpp; goldens in tests/data/chat_golden/.
#include <cstdint>
#include <string>
#include <string_view>

#include "core/error.h"
#include "data/chat_template.h"

namespace crucible::data {
namespace {

// ---- Python str semantics on UTF-8 bytes ---------------------------------------------

bool contains(std::string_view s, std::string_view sub) { return s.find(sub) != std::string_view::npos; }

// s.split(sep)[-1]: the text after the last sep (all of s when absent).
std::string_view after_last(std::string_view s, std::string_view sep) {
  const std::size_t at = s.rfind(sep);
  return at == std::string_view::npos ? s : s.substr(at + sep.size());
}

// s.split(sep)[0]: the text before the first sep (all of s when absent).
std::string_view before_first(std::string_view s, std::string_view sep) {
  const std::size_t at = s.find(sep);
  return at == std::string_view::npos ? s : s.substr(0, at);
}

std::string_view lstrip_newlines(std::string_view s) {
  const std::size_t at = s.find_first_not_of('\n');
  return at == std::string_view::npos ? std::string_view() : s.substr(at);
}

std::string_view rstrip_newlines(std::string_view s) {
  const std::size_t at = s.find_last_not_of('\n');
  return at == std::string_view::npos ? std::string_view() : s.substr(0, at + 1);
}

std::string_view strip_newlines(std::string_view s) { return rstrip_newlines(lstrip_newlines(s)); }

// Python's str.isspace() for one code point (Unicode White_Space minus U+180E etc.,
// exactly the 29 code points CPython reports).
bool is_python_space(std::uint32_t cp) {
  if ((cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20)) return true;
  switch (cp) {
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
      return true;
    default:
      return cp >= 0x2000 && cp <= 0x200A;
  }
}

// Decodes the code point starting at s[i] into cp and returns its length in bytes; 0 for
// a malformed sequence (never whitespace, so stripping stops there).
std::size_t decode_at(std::string_view s, std::size_t i, std::uint32_t& cp) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  std::size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  cp = n == 1 ? c : c & (0x7F >> n);
  for (std::size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b(i + k) & 0x3F);
  }
  constexpr std::uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};  // shortest form only
  return cp < kMin[n] ? 0 : n;
}

// The start of the UTF-8 code point that ends at s[end - 1].
std::size_t start_of_last(std::string_view s, std::size_t end) {
  std::size_t i = end - 1;
  while (i > 0 && end - i < 4 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) --i;
  return i;
}

// Jinja's `trim` filter: Python str.strip() with no argument.
std::string_view python_strip(std::string_view s) {
  std::size_t begin = 0;
  std::uint32_t cp = 0;
  while (begin < s.size()) {
    const std::size_t n = decode_at(s, begin, cp);
    if (n == 0 || !is_python_space(cp)) break;
    begin += n;
  }
  std::size_t end = s.size();
  while (end > begin) {
    const std::size_t i = start_of_last(s, end);
    if (decode_at(s, i, cp) != end - i || !is_python_space(cp)) break;
    end = i;
  }
  return s.substr(begin, end - begin);
}

std::string_view bos_of(ChatFormat f, const ChatTemplateOptions& o) {
  return o.bos_token ? std::string_view(*o.bos_token) : default_bos_token(f);
}

// ---- the three families ----------------------------------------------------------------

// DeepSeek-V3 (think_prefill false) and DeepSeek-R1 (true). System messages are collected
// first, wherever they stand; the turn loop skips them.
std::string render_r1(std::span<const ChatMessage> messages, const ChatTemplateOptions& o) {
  std::string out(bos_of(ChatFormat::R1, o));
  bool first_system = true;
  for (const ChatMessage& m : messages) {
    if (m.role != "system") continue;
    if (!first_system) out += "\n\n";
    out += m.content;
    first_system = false;
  }
  for (const ChatMessage& m : messages) {
    if (m.role == "user") {
      out += "<｜User｜>";
      out += m.content;
    } else if (m.role == "assistant") {
      out += "<｜Assistant｜>";
      // R1: {% if '</think>' in content %}{% set content = content.split('</think>')[-1] %}
      out += o.think_prefill ? after_last(m.content, "</think>") : std::string_view(m.content);
      out += "<｜end▁of▁sentence｜>";
    }
  }
  if (o.add_generation_prompt) out += o.think_prefill ? "<｜Assistant｜><think>\n" : "<｜Assistant｜>";
  return out;
}

// Qwen3. last_query is the index of the last user message that is not a tool response
// (a text wrapped in <tool_response>...</tool_response>); without one, the last index.
std::string render_chatml(std::span<const ChatMessage> messages, const ChatTemplateOptions& o) {
  const std::size_t n = messages.size();
  std::size_t last_query = n - 1;
  for (std::size_t i = n; i-- > 0;) {
    const std::string_view c = messages[i].content;
    const bool tool_response = c.starts_with("<tool_response>") && c.ends_with("</tool_response>");
    if (messages[i].role == "user" && !tool_response) {
      last_query = i;
      break;
    }
  }
  std::string out;
  for (std::size_t i = 0; i < n; ++i) {
    const ChatMessage& m = messages[i];
    if (m.role == "user" || m.role == "system") {
      out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
      continue;
    }
    // assistant: split off the reasoning as the template does.
    std::string_view content = m.content;
    std::string_view reasoning;
    if (contains(content, "</think>")) {
      content = lstrip_newlines(after_last(m.content, "</think>"));
      reasoning = lstrip_newlines(after_last(rstrip_newlines(before_first(m.content, "</think>")), "<think>"));
    }
    out += "<|im_start|>assistant\n";
    if (i > last_query && (i == n - 1 || !reasoning.empty())) {
      out += "<think>\n";
      out += strip_newlines(reasoning);
      out += "\n</think>\n\n";
      out += lstrip_newlines(content);
    } else {
      out += content;
    }
    out += "<|im_end|>\n";
  }
  if (o.add_generation_prompt) {
    out += "<|im_start|>assistant\n";
    if (!o.enable_thinking) out += "<think>\n\n</think>\n\n";
  }
  return out;
}

// Meta-Llama-3: BOS before the first message only; content trimmed (Jinja `trim`).
std::string render_llama3(std::span<const ChatMessage> messages, const ChatTemplateOptions& o) {
  std::string out(bos_of(ChatFormat::Llama3, o));
  for (const ChatMessage& m : messages) {
    out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n";
    out += python_strip(m.content);
    out += "<|eot_id|>";
  }
  if (o.add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return out;
}

}  // namespace

void check_chat_messages(std::span<const ChatMessage> messages) {
  CRUCIBLE_USER_CHECK(!messages.empty(), "chat template: the conversation is empty; it needs at least one message");
  for (std::size_t i = 0; i < messages.size(); ++i) {
    const std::string& role = messages[i].role;
    if (role == "system" || role == "user" || role == "assistant") continue;
    if (role == "tool" || role == "ipython" || role == "function")
      CRUCIBLE_FAIL("chat template: message ", i, " has role \"", role,
                    "\": tool calls and tool results are not supported (roles: system, user, assistant)");
    CRUCIBLE_FAIL("chat template: message ", i, " has role \"", role,
                  "\", which is not supported (roles: system, user, assistant)");
  }
}

std::string render_chat(ChatFormat f, std::span<const ChatMessage> messages, const ChatTemplateOptions& o) {
  check_chat_messages(messages);
  switch (f) {
    case ChatFormat::R1: return render_r1(messages, o);
    case ChatFormat::ChatML: return render_chatml(messages, o);
    case ChatFormat::Llama3: return render_llama3(messages, o);
  }
  CRUCIBLE_FAIL("render_chat: unknown ChatFormat ", static_cast<int>(f));
}

}  // namespace crucible::data
