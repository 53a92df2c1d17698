// launch/config_fields.h: maps TOML onto each component's own config struct.
//
// Components own plain config structs with defaults and validate() (STYLE.md
// principle 12) and know nothing of TOML. launch/ describes each struct once as a
// list of fields with a `describe(Fields&, Struct&)` function; the same
// description then reads a TOML table (TomlReader), writes the resolved struct
// back as TOML (TomlWriter) and could print documentation. Errors a user can meet
// name the file, the line and the full dotted key:
//
//   configs/x.toml:12:1: model.hiden_size: unknown key (did you mean 'hidden_size'?)
//   configs/x.toml:3:9: model.layers: expected an integer, got a string
//   configs/x.toml:4:9: model.layers: must be >= 1, got 0
//   --set model.layers=0: model.layers: must be >= 1, got 0
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace toml {
inline namespace v3 {
class table;
}
}  // namespace toml

namespace crucible::launch {

// The explicit initializers let `{.min = 1}` compile without
// -Wmissing-field-initializers under GCC 12.
struct Range {
  std::optional<double> min = std::nullopt;  // inclusive
  std::optional<double> max = std::nullopt;  // inclusive
  bool min_exclusive = false; // then min itself is out of range ("must be > min")
};

// The visitor every describe() function talks to.
class Fields {
 public:
  virtual ~Fields() = default;

  virtual void field(std::string_view key, bool& v, std::string_view doc) = 0;
  virtual void field(std::string_view key, std::int64_t& v, std::string_view doc, Range r = {}) = 0;
  virtual void field(std::string_view key, double& v, std::string_view doc, Range r = {}) = 0;
  virtual void field(std::string_view key, std::string& v, std::string_view doc) = 0;
  virtual void field(std::string_view key, std::vector<std::int64_t>& v, std::string_view doc,
                     Range element_range = {}) = 0;
  virtual void field(std::string_view key, std::vector<std::string>& v, std::string_view doc) = 0;
  // A string that must be one of `choices`.
  virtual void choice(std::string_view key, std::string& v, std::span<const std::string_view> choices,
                      std::string_view doc) = 0;
  // A nested table [key]; body describes its fields.
  virtual void section(std::string_view key, const std::function<void(Fields&)>& body) = 0;
  // An optional value: nullopt is written as an absent key; reading an absent key
  // keeps the struct's value (TOML has no null), like every other field.
  virtual void optional(std::string_view key, std::optional<std::int64_t>& v, std::string_view doc,
                        Range r = {}) = 0;
  virtual void optional(std::string_view key, std::optional<double>& v, std::string_view doc,
                        Range r = {}) = 0;
  virtual void optional(std::string_view key, std::optional<std::string>& v, std::string_view doc) = 0;

  // Convenience for narrower integer and float members.
  void field(std::string_view key, int& v, std::string_view doc, Range r = {}) {
    // The narrowing below must not wrap: a value outside int is a range error.
    constexpr double lo = std::numeric_limits<int>::min(), hi = std::numeric_limits<int>::max();
    if (!r.min || *r.min < lo) {
      r.min = lo;
      r.min_exclusive = false;
    }
    if (!r.max || *r.max > hi) r.max = hi;
    std::int64_t w = v;
    field(key, w, doc, r);
    v = static_cast<int>(w);
  }
  void field(std::string_view key, float& v, std::string_view doc, Range r = {}) {
    double w = v;
    field(key, w, doc, r);
    v = static_cast<float>(w);
  }
  // Enums through a name table: {{"deepseek_v3", Arch::DeepseekV3}, ...}.
  template <typename E, std::size_t N>
  void enumeration(std::string_view key, E& v, const std::pair<std::string_view, E> (&names)[N],
                   std::string_view doc) {
    std::string_view list[N];
    std::string current;
    for (std::size_t i = 0; i < N; ++i) {
      list[i] = names[i].first;
      if (names[i].second == v) current = names[i].first;
    }
    choice(key, current, std::span<const std::string_view>(list, N), doc);
    for (std::size_t i = 0; i < N; ++i)
      if (names[i].first == current) v = names[i].second;
  }
};

// A TOML document with the name it came from (for error messages).
struct TomlSource {
  std::shared_ptr<toml::table> table;
  std::string path;  // file path, or "<string>"
  // Dotted keys that apply_override() set (and the tables it created for them),
  // each with its "--set a.b=value" text: errors at or below such a key name the
  // override instead of path:line:col.
  std::map<std::string, std::string, std::less<>> overrides;
};

// Parses a TOML file / string. Syntax errors become crucible::Error
// "path:line:col: message".
TomlSource parse_toml_file(const std::string& path);
TomlSource parse_toml_string(std::string_view text, std::string path = "<string>");

// Applies one `--set a.b.c=value` override: the value is parsed as a TOML value
// (1, 2.5, true, "x", [1, 2]) and, when that fails, taken as a bare string.
// Intermediate tables are created. Values set this way report "--set a.b.c=value"
// as their location in later errors.
void apply_override(TomlSource& doc, std::string_view assignment);

// Reads the fields described by `describe` from the table at dotted path `prefix`
// ("" = the root; a missing table reads as empty, keeping the struct's defaults).
// Every key present in that table that the description does not name is an error
// with a did-you-mean suggestion (edit distance). Throws crucible::Error.
void read_toml(const TomlSource& doc, std::string_view prefix,
               const std::function<void(Fields&)>& describe);

// Keys directly under the table at `prefix` that are not in `known` are errors
// (with did-you-mean). For documents whose top level is split between several
// describe() functions.
void check_known_keys(const TomlSource& doc, std::string_view prefix,
                      std::span<const std::string_view> known);

// Writes the described struct as TOML text (sections as [prefix.key] tables).
std::string write_toml(std::string_view prefix, const std::function<void(Fields&)>& describe);

// Edit distance (for did-you-mean); exposed for tests.
std::size_t edit_distance(std::string_view a, std::string_view b);

}  // namespace crucible::launch
