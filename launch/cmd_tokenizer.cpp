// launch/cmd_tokenizer.cpp: `crucible tokenizer encode|decode`: run a tokenizer from the
// command line (a Hugging Face tokenizer directory, a tokenizer.json, or "byte").
//
//   crucible tokenizer encode --tokenizer PATH|byte [--text T | --file F] [--json]
//   crucible tokenizer decode --tokenizer PATH|byte --ids 1,2,3 [--skip-special]
// Invariant: encode prints exactly the ids data::Tokenizer::encode returns (no BOS added);
// decode prints exactly the text decode returns, then a newline. Only rank 0 prints.
// Reference: data/tokenizer.h.
#include <charconv>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "core/json.h"
#include "data/tokenizer.h"
#include "launch/args.h"
#include "launch/commands.h"

namespace crucible::launch {

namespace {

std::string read_input(const std::string& file) {
  if (file == "-") return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  std::ifstream in(file, std::ios::binary);
  if (!in) throw UsageError("crucible tokenizer encode: cannot open --file '" + file + "'");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// "1,2,3", "1 2 3" or "[1, 2, 3]".
std::vector<std::int32_t> parse_ids(const std::string& text) {
  std::vector<std::int32_t> ids;
  std::size_t i = 0;
  auto is_sep = [](char c) { return c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '[' || c == ']'; };
  while (i < text.size()) {
    if (is_sep(text[i])) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < text.size() && !is_sep(text[j])) ++j;
    std::int32_t v = 0;
    const auto [end, ec] = std::from_chars(text.data() + i, text.data() + j, v);
    if (ec != std::errc() || end != text.data() + j || v < 0)
      throw UsageError("crucible tokenizer decode: --ids must be non-negative integers separated by commas, got '" +
                       text.substr(i, j - i) + "'");
    ids.push_back(v);
    i = j;
  }
  return ids;
}

int tokenizer_encode(const CommandContext& ctx, const std::vector<std::string>& args) {
  std::string path, text, file;
  bool has_text = false, as_json = false;
  ArgParser p("tokenizer encode", "Print the token ids of a text (no BOS is added; special tokens written in the\n"
                                  "text are matched).");
  p.option("--tokenizer", &path, "PATH", "tokenizer directory, tokenizer.json file, or 'byte' (required)")
      .option("--text", &text, "T", "the text to encode")
      .option("--file", &file, "F", "read the text from a file ('-' for stdin)")
      .flag("--json", &as_json, "print {\"ids\": [...], \"tokens\": [...]} instead of comma-separated ids")
      .epilog("example: crucible tokenizer encode --tokenizer /path/to/qwen3 --text 'Hello world' --json");
  for (const std::string& a : args) has_text |= a == "--text" || a.rfind("--text=", 0) == 0;
  if (!p.parse(args)) return 0;
  if (path.empty()) throw UsageError("crucible tokenizer encode: --tokenizer is required; see 'crucible tokenizer encode --help'");
  if (has_text == !file.empty())
    throw UsageError("crucible tokenizer encode: give exactly one of --text or --file");
  if (!file.empty()) text = read_input(file);
  const auto tok = data::load_tokenizer(path);
  const std::vector<std::int32_t> ids = tok->encode(text);
  if (ctx.mpi.rank() != 0) return 0;
  if (!as_json) {
    std::string line;
    for (std::size_t i = 0; i < ids.size(); ++i) line += (i ? "," : "") + std::to_string(ids[i]);
    std::printf("%s\n", line.c_str());
    return 0;
  }
  json::Value j = json::Value::object();
  j.set("tokenizer", tok->name());
  json::Value jids = json::Value::array(), tokens = json::Value::array();
  for (std::int32_t id : ids) {
    jids.push_back(static_cast<std::int64_t>(id));
    tokens.push_back(tok->token_text(id));
  }
  j.set("count", static_cast<std::int64_t>(ids.size()));
  j.set("ids", std::move(jids));
  j.set("tokens", std::move(tokens));
  std::printf("%s\n", json::dump(j).c_str());
  return 0;
}

int tokenizer_decode(const CommandContext& ctx, const std::vector<std::string>& args) {
  std::string path, ids_text;
  bool skip_special = false;
  ArgParser p("tokenizer decode", "Print the text of token ids (ids that name no token are skipped).");
  p.option("--tokenizer", &path, "PATH", "tokenizer directory, tokenizer.json file, or 'byte' (required)")
      .option("--ids", &ids_text, "1,2,3", "the token ids (required)")
      .flag("--skip-special", &skip_special, "leave special tokens out")
      .epilog("example: crucible tokenizer decode --tokenizer byte --ids 72,105,257");
  if (!p.parse(args)) return 0;
  if (path.empty()) throw UsageError("crucible tokenizer decode: --tokenizer is required; see 'crucible tokenizer decode --help'");
  if (ids_text.empty()) throw UsageError("crucible tokenizer decode: --ids is required; see 'crucible tokenizer decode --help'");
  const std::vector<std::int32_t> ids = parse_ids(ids_text);
  const auto tok = data::load_tokenizer(path);
  const std::string text = tok->decode(ids, skip_special);
  if (ctx.mpi.rank() != 0) return 0;
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fputc('\n', stdout);
  return 0;
}

constexpr const char* kTokenizerHelp =
    "usage: crucible tokenizer SUBCOMMAND [ARGS]\n\n"
    "Run a tokenizer: a Hugging Face tokenizer directory (tokenizer.json, tokenizer_config.json),\n"
    "a tokenizer.json file, or 'byte' (bytes + DeepSeek-R1 specials, for tiny demos).\n\n"
    "subcommands:\n"
    "  encode --tokenizer PATH (--text T | --file F) [--json]   print token ids\n"
    "  decode --tokenizer PATH --ids 1,2,3 [--skip-special]      print the text of ids\n\n"
    "'crucible tokenizer SUBCOMMAND --help' for the options of each.\n";

}  // namespace

int cmd_tokenizer(const CommandContext& ctx, const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "-h" || args[0] == "--help") {
    std::fputs(kTokenizerHelp, stdout);
    return args.empty() ? 2 : 0;
  }
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (args[0] == "encode") return tokenizer_encode(ctx, rest);
  if (args[0] == "decode") return tokenizer_decode(ctx, rest);
  throw UsageError("crucible tokenizer: unknown subcommand '" + args[0] +
                   "' (expected encode or decode); see 'crucible tokenizer --help'");
}

}  // namespace crucible::launch
