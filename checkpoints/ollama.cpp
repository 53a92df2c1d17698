// checkpoints/ollama.cpp: Ollama Modelfile text (FROM, TEMPLATE, PARAMETER, SYSTEM).
//
// Invariant: the TEMPLATE renders a conversation as the model's chat format does
// (for R1: earlier assistant turns end with the eos token, the prompt ends with the
// assistant token), every end token is a PARAMETER stop, and the file is written by
// rename so a Modelfile is never half-written.
// Reference: reference/checkpoint_formats.md §5; Ollama docs/modelfile.mdx,
// docs/template.md (.Messages, $last idiom of Ollama's own deepseek-r1/qwen2 templates).
#include "checkpoints/ollama.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>

#include "core/error.h"

namespace crucible::checkpoints {

namespace {

std::string number(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, end);
}

std::vector<std::string> stops(const OllamaOptions& o) {
  if (!o.stop.empty()) return o.stop;
  switch (o.format) {
    case data::ChatFormat::R1: return {o.eos_token, o.user_token};
    case data::ChatFormat::ChatML: return {"<|im_end|>", "<|endoftext|>"};
    case data::ChatFormat::Llama3: return {"<|eot_id|>", "<|end_of_text|>"};
  }
  return {};
}

// A PARAMETER value in double quotes (Ollama's parser unescapes \" and \\).
std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace

void OllamaOptions::validate() const {
  CRUCIBLE_USER_CHECK(!gguf_file.empty() && gguf_file.find('\n') == std::string::npos,
                      "Ollama Modelfile: gguf_file must be a file name");
  CRUCIBLE_USER_CHECK(temperature >= 0, "Ollama Modelfile: temperature must be >= 0, got ", temperature);
  CRUCIBLE_USER_CHECK(top_p > 0 && top_p <= 1, "Ollama Modelfile: top_p must be in (0, 1], got ", top_p);
  CRUCIBLE_USER_CHECK(num_ctx >= 0, "Ollama Modelfile: num_ctx must be >= 0");
  for (const std::string* t : {&bos_token, &user_token, &assistant_token, &eos_token, &system})
    CRUCIBLE_USER_CHECK(t->find("\"\"\"") == std::string::npos && t->find("{{") == std::string::npos,
                        "Ollama Modelfile: '", *t, "' cannot hold \"\"\" or {{");
  for (const std::string& s : stop)
    CRUCIBLE_USER_CHECK(!s.empty() && s.find('\n') == std::string::npos, "Ollama Modelfile: empty or multi-line stop");
  if (format == data::ChatFormat::R1)
    CRUCIBLE_USER_CHECK(!user_token.empty() && !assistant_token.empty() && !eos_token.empty(),
                        "Ollama Modelfile: the R1 format needs user, assistant and eos token texts");
}

std::string ollama_template(const OllamaOptions& o) {
  o.validate();
  std::string t;
  // Ollama's own templates' idiom: range over .Messages, $last marks the final one.
  const std::string range = "{{- range $i, $_ := .Messages }}\n{{- $last := eq (len (slice $.Messages $i)) 1 }}\n";
  switch (o.format) {
    case data::ChatFormat::R1:
      t += o.bos_token + "{{- if .System }}{{ .System }}{{ end }}\n" + range;
      t += "{{- if eq .Role \"user\" }}" + o.user_token + "{{ .Content }}\n";
      t += "{{- else if eq .Role \"assistant\" }}" + o.assistant_token + "{{ .Content }}";
      t += "{{ if not $last }}" + o.eos_token + "{{ end }}\n";
      t += "{{- end }}\n";
      t += "{{- if and $last (ne .Role \"assistant\") }}" + o.assistant_token + (o.think_prefix ? "<think>\n" : "") +
           "{{ end }}\n";
      break;
    case data::ChatFormat::ChatML:
      t += "{{- if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}\n" + range;
      t += "{{- if eq .Role \"user\" }}<|im_start|>user\n{{ .Content }}<|im_end|>\n";
      t += "{{ else if eq .Role \"assistant\" }}<|im_start|>assistant\n{{ .Content }}";
      t += "{{ if not $last }}<|im_end|>\n{{ end }}\n";
      t += "{{- end }}\n";
      t += "{{- if and $last (ne .Role \"assistant\") }}<|im_start|>assistant\n{{ end }}\n";
      break;
    case data::ChatFormat::Llama3:
      t += o.bos_token + "{{- if .System }}<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>{{ end }}\n";
      t += range;
      t += "{{- if or (eq .Role \"user\") (eq .Role \"assistant\") }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n";
      t += "{{ .Content }}{{ if or (not $last) (ne .Role \"assistant\") }}<|eot_id|>{{ end }}{{ end }}\n";
      t += "{{- if and $last (ne .Role \"assistant\") }}<|start_header_id|>assistant<|end_header_id|>\n\n{{ end }}\n";
      break;
  }
  t += "{{- end }}";
  return t;
}

std::string ollama_modelfile(const OllamaOptions& o) {
  o.validate();
  std::string m = "# Written by crucible export. Import with: ollama create <name> -f Modelfile\n";
  m += "FROM ./" + o.gguf_file + "\n\n";
  m += "TEMPLATE \"\"\"" + ollama_template(o) + "\"\"\"\n\n";
  if (!o.system.empty()) m += "SYSTEM \"\"\"" + o.system + "\"\"\"\n\n";
  for (const std::string& s : stops(o)) m += "PARAMETER stop " + quoted(s) + "\n";
  m += "PARAMETER temperature " + number(o.temperature) + "\n";
  m += "PARAMETER top_p " + number(o.top_p) + "\n";
  if (o.num_ctx > 0) m += "PARAMETER num_ctx " + std::to_string(o.num_ctx) + "\n";
  return m;
}

void write_ollama_modelfile(const std::string& dir, const OllamaOptions& o) {
  const std::string text = ollama_modelfile(o);
  const std::string path = dir + "/Modelfile", tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  CRUCIBLE_USER_CHECK(f != nullptr, "cannot create ", tmp, ": ", std::strerror(errno));
  const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size() && std::fflush(f) == 0 &&
                  ::fsync(fileno(f)) == 0;
  const int err = errno;
  std::fclose(f);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    CRUCIBLE_FAIL("cannot write ", path, ": ", std::strerror(ok ? errno : err));
  }
}

}  // namespace crucible::checkpoints
