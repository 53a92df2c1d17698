// bench/tokenizer_encode.cpp: encode throughput (MB/s of UTF-8 input, one thread) of the
// BPE tokenizer beside Hugging Face `tokenizers` on the same text.
//
//   bench_tokenizer_encode [--tokenizer DIR]... [--file TEXT] [--passes 5] [--no-peer]
// Defaults: the Qwen3, DeepSeek-V3 and Llama 3.1 directories under $CRUCIBLE_TOKENIZER_DIR
// (or /work/shared/data/tokenizers), and as text the English license texts of
// /usr/share/common-licenses (a built-in English sample when that is missing).
// Two figures per side, best of --passes: the whole text in one encode() call ("doc"),
// and one call per paragraph ("para", split on blank lines). The peer runs through
// `python3 tools/make_tokenizer_goldens.py bench` (single thread); without python3 or
// the `tokenizers` package it is skipped. The ids of the whole text are compared by hash.
// NOTE: crucible's encode keeps a cache of pre-token -> ids that later passes reuse, as
// `tokenizers`' BPE cache does; both sides get the same passes.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "core/error.h"
#include "core/json.h"
#include "data/tokenizer.h"

using namespace crucible;
namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

const char* kSample =
    "The tokenizer turns text into the integer ids a language model reads. A byte-level BPE first "
    "splits the text into words, numbers, punctuation and runs of whitespace with a regular "
    "expression, then merges the bytes of each piece, pair by pair, in the order the merges were "
    "learned. Most English words end up as one token; rare words, names and numbers take several.\n\n"
    "We measured the throughput on a single core. It's the figure that matters when a data loader "
    "tokenizes a corpus once, or when rewards decode thousands of sampled completions per step: "
    "\"fast enough\" means the GPU never waits for it. Don't forget the cache, though; we'll come "
    "back to that in section 3.2, after Table 4 (pages 17-19).\n\n";

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The default text and a line saying where it came from.
std::string default_text(std::string& origin) {
  const fs::path dir = "/usr/share/common-licenses";
  std::error_code ec;
  std::set<fs::path> files;  // canonical paths: the directory has symlinks to the same texts
  if (fs::is_directory(dir, ec))
    for (const auto& e : fs::directory_iterator(dir, ec))
      if (fs::is_regular_file(e.path(), ec)) files.insert(fs::canonical(e.path(), ec));
  std::string text;
  for (const fs::path& f : files) text += read_file(f);
  if (!text.empty()) {
    origin = dir.string() + " (" + std::to_string(files.size()) + " files)";
    return text;
  }
  while (text.size() < 200000) text += kSample;
  origin = "built-in English sample";
  return text;
}

std::uint64_t fnv1a(const std::vector<std::int32_t>& ids) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (std::int32_t id : ids)
    for (int k = 0; k < 4; ++k) {
      h ^= (static_cast<std::uint32_t>(id) >> (8 * k)) & 0xFF;
      h *= 0x100000001b3ull;
    }
  return h;
}

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

struct Peer {
  bool ok = false;
  std::string why;
  double doc = 0, para = 0;
  std::string hash;
};

Peer run_peer(const std::string& tok_dir, const std::string& text_path, int passes) {
  Peer p;
  const std::string script = std::string(CRUCIBLE_SOURCE_DIR) + "/tools/make_tokenizer_goldens.py";
  const std::string cmd = "python3 " + shell_quote(script) + " bench --tokenizer " + shell_quote(tok_dir) +
                          " --file " + shell_quote(text_path) + " --passes " + std::to_string(passes) + " 2>&1";
  FILE* f = popen(cmd.c_str(), "r");
  if (!f) {
    p.why = "cannot run python3";
    return p;
  }
  std::string out;
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, f)) out.append(buf, n);
  const int status = pclose(f);
  std::string last = out;
  while (!last.empty() && last.back() == '\n') last.pop_back();
  last = last.substr(last.rfind('\n') == std::string::npos ? 0 : last.rfind('\n') + 1);
  if (status != 0) {
    p.why = last.empty() ? "python3 peer failed" : last;
    return p;
  }
  try {
    const json::Value v = json::parse(last, "peer output");
    p.doc = v.at("mb_per_s_document").as_double();
    p.para = v.at("mb_per_s_paragraphs").as_double();
    p.hash = v.at("ids_fnv1a").as_string();
    p.ok = true;
  } catch (const Error& e) {
    p.why = std::string("unreadable peer output: ") + e.what();
  }
  return p;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> dirs;
  std::string file;
  int passes = 5;
  bool peer = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--tokenizer" && i + 1 < argc) dirs.push_back(argv[++i]);
    else if (a == "--file" && i + 1 < argc) file = argv[++i];
    else if (a == "--passes" && i + 1 < argc) passes = std::max(1, std::atoi(argv[++i]));
    else if (a == "--no-peer") peer = false;
    else {
      std::fprintf(stderr, "usage: %s [--tokenizer DIR]... [--file TEXT] [--passes N] [--no-peer]\n", argv[0]);
      return 2;
    }
  }
  if (dirs.empty()) {
    const char* env = std::getenv("CRUCIBLE_TOKENIZER_DIR");
    const std::string root = env ? env : "/work/shared/data/tokenizers";
    for (const char* m : {"qwen3", "deepseek_v3", "llama3_1"})
      if (fs::exists(fs::path(root) / m / "tokenizer.json")) dirs.push_back(root + "/" + m);
    if (dirs.empty()) {
      std::printf("no tokenizer directories under %s: nothing to measure (set CRUCIBLE_TOKENIZER_DIR)\n", root.c_str());
      return 0;
    }
  }
  std::string origin = file;
  const std::string text = file.empty() ? default_text(origin) : read_file(file);
  std::vector<std::string_view> paragraphs;
  for (std::size_t at = 0;;) {  // str.split("\n\n"), as the peer does
    const std::size_t next = text.find("\n\n", at);
    paragraphs.push_back(std::string_view(text).substr(at, next == std::string::npos ? std::string::npos : next - at));
    if (next == std::string::npos) break;
    at = next + 2;
  }
  const fs::path tmp = fs::temp_directory_path() / ("crucible_bench_tokenizer_" + std::to_string(::getpid()) + ".txt");
  if (peer) std::ofstream(tmp, std::ios::binary) << text;
  const double mb = static_cast<double>(text.size()) / 1e6;
  std::printf("text: %s, %zu bytes, %zu paragraphs; best of %d passes, one thread\n", origin.c_str(), text.size(),
              paragraphs.size(), passes);
  std::printf("%-12s %7s %8s | %-21s | %-21s | %-15s | %s\n", "tokenizer", "load s", "tokens", "crucible MB/s doc/para",
              "tokenizers MB/s doc/para", "ratio doc/para", "ids");
  for (const std::string& dir : dirs) {
    const auto t0 = Clock::now();
    const auto tok = data::load_tokenizer(dir);
    const double load_s = std::chrono::duration<double>(Clock::now() - t0).count();
    double doc = 0, para = 0;
    std::vector<std::int32_t> ids;
    for (int p = 0; p < passes; ++p) {
      auto a = Clock::now();
      ids = tok->encode(text);
      doc = std::max(doc, mb / std::chrono::duration<double>(Clock::now() - a).count());
      a = Clock::now();
      std::size_t n = 0;
      for (std::string_view par : paragraphs) n += tok->encode(par).size();
      para = std::max(para, mb / std::chrono::duration<double>(Clock::now() - a).count());
      if (n == 0 && !text.empty()) return 1;  // keeps the loop from being optimized away
    }
    char hash[17];
    std::snprintf(hash, sizeof hash, "%016llx", static_cast<unsigned long long>(fnv1a(ids)));
    const std::string name = fs::path(dir).filename().string();
    std::printf("%-12s %7.2f %8zu | %9.1f %9.1f   |", name.c_str(), load_s, ids.size(), doc, para);
    if (!peer) {
      std::printf(" %-21s | %-15s | %s\n", "(peer off)", "", hash);
      continue;
    }
    const Peer pr = run_peer(dir, tmp.string(), passes);
    if (!pr.ok) {
      std::printf(" peer skipped: %s\n", pr.why.c_str());
      continue;
    }
    std::printf(" %9.1f %9.1f   | %6.1fx %6.1fx  | %s\n", pr.doc, pr.para, doc / pr.doc, para / pr.para,
                pr.hash == hash ? "identical" : "DIFFER");
  }
  if (peer) fs::remove(tmp);
  return 0;
}
