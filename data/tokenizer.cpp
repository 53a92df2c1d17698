// data/tokenizer.cpp: the Tokenizer defaults and load_tokenizer().
//
// Invariant: load_tokenizer either returns a ready tokenizer or throws an Error that
// names the path and says what was expected there.
// Reference: data/tokenizer.h; checkpoint_formats.md §3 (tokenizer files).
#include "data/tokenizer.h"

#include <filesystem>

#include "core/error.h"
#include "data/byte_tokenizer.h"
#include "data/tokenizer_bpe.h"

namespace crucible::data {

Tokenizer::~Tokenizer() = default;
std::optional<std::int32_t> Tokenizer::bos_id() const { return std::nullopt; }
std::optional<std::int32_t> Tokenizer::eos_id() const { return std::nullopt; }
bool Tokenizer::is_special(std::int32_t) const { return false; }
std::string Tokenizer::name() const { return "tokenizer"; }

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path_or_dir) {
  namespace fs = std::filesystem;
  if (path_or_dir == "byte") return std::make_unique<ByteTokenizer>();
  std::error_code ec;
  const fs::path p(path_or_dir);
  fs::path json, config;
  if (fs::is_directory(p, ec)) {
    json = p / "tokenizer.json";
    CRUCIBLE_USER_CHECK(fs::is_regular_file(json, ec), "tokenizer directory '", path_or_dir,
                        "' has no tokenizer.json (expected a Hugging Face tokenizer directory)");
    config = p / "tokenizer_config.json";
  } else {
    CRUCIBLE_USER_CHECK(fs::is_regular_file(p, ec), "tokenizer '", path_or_dir,
                        "' not found: give 'byte', a directory with tokenizer.json, or a tokenizer.json file");
    json = p;
    config = p.parent_path() / "tokenizer_config.json";
  }
  if (!fs::is_regular_file(config, ec)) config.clear();
  return BpeTokenizer::load(json.string(), config.string());
}

}  // namespace crucible::data
