// launch/config_fields.cpp: TOML <-> config structs through the Fields visitor.
//
// TomlReader reads one table and requires every key in it to be named by the
// description; TomlWriter prints the same description back as TOML. Invariants:
// read_toml(parse_toml_string(write_toml(p, d))) restores the struct exactly
// (floats print in shortest round-trip form), and every user error names
// path:line:col (or the --set that put the value there) and the full dotted key.
// Reference: TOML v1.0.0 (https://toml.io/en/v1.0.0), toml++ 3.3.
#include "launch/config_fields.h"

#include <toml++/toml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace crucible::launch {

namespace {

std::string join_key(std::string_view prefix, std::string_view key) {
  if (prefix.empty()) return std::string(key);
  std::string out(prefix);
  out += '.';
  out += key;
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Splits a dotted path; empty segments are kept (callers reject them).
std::vector<std::string> split_dotted(std::string_view path) {
  std::vector<std::string> parts;
  if (path.empty()) return parts;
  std::size_t start = 0;
  while (true) {
    std::size_t dot = path.find('.', start);
    parts.emplace_back(trim(path.substr(start, dot - start)));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return parts;
}

// Shortest text that parses back to exactly v. As a TOML float it keeps a '.'
// or an exponent so that it is not read back as an integer.
std::string format_double(double v, bool as_toml_float) {
  if (std::isnan(v)) return std::signbit(v) ? "-nan" : "nan";
  if (std::isinf(v)) return v < 0 ? "-inf" : "inf";
  // Integral values below 2^53 print as integers in messages ("must be >= 1").
  if (!as_toml_float && v == std::floor(v) && std::fabs(v) < 9007199254740992.0)
    return std::to_string(static_cast<std::int64_t>(v));
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  std::string s(buf, end);
  if (as_toml_float && s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

// A TOML basic string: quotes, backslashes and control characters escaped;
// other UTF-8 passes through unchanged.
std::string quote(std::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    switch (ch) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          static const char* hex = "0123456789ABCDEF";
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 15];
        } else {
          out += ch;
        }
    }
  }
  out += '"';
  return out;
}

// A key as TOML text: bare when it can be, else quoted.
std::string toml_key(std::string_view key) {
  bool bare = !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
  return bare ? std::string(key) : quote(key);
}

const char* type_name(toml::node_type t) {
  switch (t) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

// "a string \"abc\"", "a float 2.5", "a table": what the user wrote.
std::string describe_node(const toml::node& n) {
  std::string out = type_name(n.type());
  if (auto* s = n.as_string()) {
    std::string_view v = s->get();
    out += ' ';
    out += v.size() > 40 ? quote(v.substr(0, 40)) + "..." : quote(v);
  } else if (auto* f = n.as_floating_point()) {
    out += ' ' + format_double(f->get(), true);
  } else if (auto* i = n.as_integer()) {
    out += ' ' + std::to_string(i->get());
  } else if (auto* b = n.as_boolean()) {
    out += b->get() ? " true" : " false";
  }
  return out;
}

// Where the user wrote key_path: the --set that set it or one of its parents,
// else path:line:col of `src` (just the path when toml++ has no position).
std::string where(const TomlSource& doc, std::string_view key_path,
                  const toml::source_region& src) {
  std::string_view p = key_path;
  while (!p.empty()) {
    if (auto it = doc.overrides.find(p); it != doc.overrides.end()) return it->second;
    std::size_t dot = p.rfind('.');
    if (dot == std::string_view::npos) break;
    p = p.substr(0, dot);
  }
  // A node keeps the file it was parsed from (a config merged onto a `base` holds
  // nodes of both files).
  const std::string& file = src.path && !src.path->empty() ? *src.path : doc.path;
  if (src.begin.line == 0) return file;
  return detail::concat(file, ':', src.begin.line, ':', src.begin.column);
}

// " (did you mean 'x'?)" when one known name is close, else a short list.
std::string suggestion(std::string_view given, const std::vector<std::string>& known) {
  const std::string* best = nullptr;
  std::size_t best_d = 0;
  for (const std::string& k : known) {
    std::size_t d = edit_distance(given, k);
    if (!best || d < best_d) {
      best = &k;
      best_d = d;
    }
  }
  // Close: a few edits, but never a whole replacement ("lr" is no typo of "xy").
  if (best && best_d <= std::max<std::size_t>(2, given.size() / 3) &&
      best_d < std::max(given.size(), best->size()))
    return " (did you mean '" + *best + "'?)";
  if (known.empty()) return "";
  std::string out = " (valid keys: ";
  constexpr std::size_t kMaxListed = 8;
  for (std::size_t i = 0; i < known.size() && i < kMaxListed; ++i)
    out += (i ? ", " : "") + known[i];
  if (known.size() > kMaxListed) out += ", ...";
  return out + ")";
}

// One error listing every key of `table` (at `prefix`) that is not in `known`,
// in the order they appear in the file.
void check_keys(const TomlSource& doc, std::string_view prefix, const toml::table& table,
                const std::vector<std::string>& known) {
  std::vector<const toml::key*> unknown;
  for (auto&& [k, v] : table)
    if (std::find(known.begin(), known.end(), k.str()) == known.end()) unknown.push_back(&k);
  if (unknown.empty()) return;
  auto pos = [](const toml::key* k) {
    const auto& b = k->source().begin;
    return std::tuple(b.line == 0, b.line, b.column, k->str());
  };
  std::sort(unknown.begin(), unknown.end(),
            [&](const toml::key* a, const toml::key* b) { return pos(a) < pos(b); });
  std::string msg;
  for (const toml::key* k : unknown) {
    std::string path = join_key(prefix, k->str());
    if (!msg.empty()) msg += '\n';
    msg +=
        where(doc, path, k->source()) + ": " + path + ": unknown key" + suggestion(k->str(), known);
  }
  CRUCIBLE_FAIL(msg);
}

// The table at dotted `prefix`; null when absent, an error when not a table.
const toml::table* table_at(const TomlSource& doc, std::string_view prefix) {
  const toml::table* t = doc.table.get();
  std::string path;
  for (const std::string& part : split_dotted(prefix)) {
    if (!t) return nullptr;
    path = join_key(path, part);
    const toml::node* n = t->get(part);
    if (!n) return nullptr;
    t = n->as_table();
    CRUCIBLE_USER_CHECK(t, where(doc, path, n->source()), ": ", path, ": expected a table, got ",
                        describe_node(*n));
  }
  return t;
}

// Reads the described fields from one table (null = absent: defaults kept).
class TomlReader final : public Fields {
 public:
  TomlReader(const TomlSource& doc, std::string prefix, const toml::table* table)
      : doc_(doc), prefix_(std::move(prefix)), table_(table) {}

  // Call after the description ran: any key it did not name is an error.
  void finish() const {
    if (table_) check_keys(doc_, prefix_, *table_, known_);
  }

  void field(std::string_view key, bool& v, std::string_view) override {
    const toml::node* n = take(key);
    if (!n) return;
    auto* b = n->as_boolean();
    if (!b) type_error(key, *n, "a boolean");
    v = b->get();
  }

  void field(std::string_view key, std::int64_t& v, std::string_view, Range r) override {
    if (const toml::node* n = take(key)) v = read_int(key, path(key), *n, r);
  }

  void field(std::string_view key, double& v, std::string_view, Range r) override {
    if (const toml::node* n = take(key)) v = read_double(key, *n, r);
  }

  void field(std::string_view key, std::string& v, std::string_view) override {
    if (const toml::node* n = take(key)) v = read_string(key, *n);
  }

  void field(std::string_view key, std::vector<std::int64_t>& v, std::string_view,
             Range element_range) override {
    const toml::node* n = take(key);
    if (!n) return;
    const toml::array& a = array_of(key, *n);
    std::vector<std::int64_t> out;
    for (std::size_t i = 0; i < a.size(); ++i)
      out.push_back(read_int(key, element_path(key, i), a[i], element_range));
    v = std::move(out);
  }

  void field(std::string_view key, std::vector<std::string>& v, std::string_view) override {
    const toml::node* n = take(key);
    if (!n) return;
    const toml::array& a = array_of(key, *n);
    std::vector<std::string> out;
    for (std::size_t i = 0; i < a.size(); ++i) {
      auto* s = a[i].as_string();
      if (!s)
        fail_at(key, element_path(key, i), a[i], "expected a string, got " + describe_node(a[i]));
      out.push_back(s->get());
    }
    v = std::move(out);
  }

  void choice(std::string_view key, std::string& v, std::span<const std::string_view> choices,
              std::string_view) override {
    const toml::node* n = take(key);
    if (!n) return;
    std::string s = read_string(key, *n);
    if (std::find(choices.begin(), choices.end(), s) == choices.end()) {
      std::string list;
      std::vector<std::string> names;
      for (std::string_view c : choices) {
        list += (list.empty() ? "" : ", ") + std::string(c);
        names.emplace_back(c);
      }
      std::string hint = suggestion(s, names);
      if (hint.starts_with(" (valid")) hint.clear();  // the list is already there
      fail_at(key, path(key), *n, "must be one of: " + list + "; got '" + s + "'" + hint);
    }
    v = std::move(s);
  }

  void section(std::string_view key, const std::function<void(Fields&)>& body) override {
    const toml::node* n = take(key);
    const toml::table* t = nullptr;
    if (n) {
      t = n->as_table();
      if (!t) type_error(key, *n, "a table");
    }
    TomlReader child(doc_, path(key), t);
    body(child);
    child.finish();
  }

  void optional(std::string_view key, std::optional<std::int64_t>& v, std::string_view,
                Range r) override {
    if (const toml::node* n = take(key)) v = read_int(key, path(key), *n, r);
  }

  void optional(std::string_view key, std::optional<double>& v, std::string_view,
                Range r) override {
    if (const toml::node* n = take(key)) v = read_double(key, *n, r);
  }

  void optional(std::string_view key, std::optional<std::string>& v, std::string_view) override {
    if (const toml::node* n = take(key)) v = read_string(key, *n);
  }

 private:
  std::string path(std::string_view key) const { return join_key(prefix_, key); }
  std::string element_path(std::string_view key, std::size_t i) const {
    return path(key) + "[" + std::to_string(i) + "]";
  }

  // Marks `key` as known and returns its node, or null when absent.
  const toml::node* take(std::string_view key) {
    CRUCIBLE_CHECK(std::find(known_.begin(), known_.end(), key) == known_.end(),
                   "describe() names '", path(key), "' twice");
    known_.emplace_back(key);
    return table_ ? table_->get(key) : nullptr;
  }

  // `shown` is what the message names (model.dims[2]); `key` finds the --set.
  [[noreturn]] void fail_at(std::string_view key, const std::string& shown, const toml::node& n,
                            const std::string& what) const {
    CRUCIBLE_FAIL(where(doc_, path(key), n.source()), ": ", shown, ": ", what);
  }
  [[noreturn]] void type_error(std::string_view key, const toml::node& n,
                               const char* expected) const {
    fail_at(key, path(key), n, std::string("expected ") + expected + ", got " + describe_node(n));
  }

  // `got` is x as the user wrote it (integers print exactly). NaN fails every bound.
  void check_range(std::string_view key, const std::string& shown, const toml::node& n, double x,
                   const std::string& got, const Range& r) const {
    if (r.min && (r.min_exclusive ? !(x > *r.min) : !(x >= *r.min)))
      fail_at(key, shown, n,
              detail::concat("must be ", r.min_exclusive ? "> " : ">= ",
                             format_double(*r.min, false), ", got ", got));
    if (r.max && !(x <= *r.max))
      fail_at(key, shown, n,
              detail::concat("must be <= ", format_double(*r.max, false), ", got ", got));
  }

  std::int64_t read_int(std::string_view key, const std::string& shown, const toml::node& n,
                        const Range& r) const {
    auto* i = n.as_integer();
    if (!i) fail_at(key, shown, n, "expected an integer, got " + describe_node(n));
    check_range(key, shown, n, static_cast<double>(i->get()), std::to_string(i->get()), r);
    return i->get();
  }

  double read_double(std::string_view key, const toml::node& n, const Range& r) const {
    double v = 0;
    if (auto* f = n.as_floating_point())
      v = f->get();
    else if (auto* i = n.as_integer())  // "lr = 1" means 1.0
      v = static_cast<double>(i->get());
    else
      type_error(key, n, "a float");
    check_range(key, path(key), n, v, format_double(v, false), r);
    return v;
  }

  std::string read_string(std::string_view key, const toml::node& n) const {
    if (auto* s = n.as_string()) return s->get();
    // `--set run.name=2024` parses as an integer; for a string field the user
    // meant the text they typed.
    if (auto it = doc_.overrides.find(path(key));
        it != doc_.overrides.end() && !n.is_table() && !n.is_array())
      return std::string(trim(std::string_view(it->second).substr(it->second.find('=') + 1)));
    type_error(key, n, "a string");
  }

  const toml::array& array_of(std::string_view key, const toml::node& n) const {
    auto* a = n.as_array();
    if (!a) type_error(key, n, "an array");
    return *a;
  }

  const TomlSource& doc_;
  std::string prefix_;
  const toml::table* table_;
  std::vector<std::string> known_;  // in description order (for suggestions)
};

// Prints the described fields of one table: its scalars, then its sub-tables.
class TomlWriter final : public Fields {
 public:
  explicit TomlWriter(std::vector<std::string> table_path) : table_path_(std::move(table_path)) {}

  std::string text() const {
    std::string out;
    if (!table_path_.empty()) {
      out += '[';
      for (std::size_t i = 0; i < table_path_.size(); ++i)
        out += (i ? "." : "") + toml_key(table_path_[i]);
      out += "]\n";
    }
    out += body_;
    for (const std::string& s : sections_) {
      if (!out.empty()) out += '\n';
      out += s;
    }
    return out;
  }

  void field(std::string_view key, bool& v, std::string_view) override {
    put(key, v ? "true" : "false");
  }
  void field(std::string_view key, std::int64_t& v, std::string_view, Range) override {
    put(key, std::to_string(v));
  }
  void field(std::string_view key, double& v, std::string_view, Range) override {
    put(key, format_double(v, true));
  }
  void field(std::string_view key, std::string& v, std::string_view) override {
    put(key, quote(v));
  }
  void field(std::string_view key, std::vector<std::int64_t>& v, std::string_view, Range) override {
    std::string s = "[";
    for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
    put(key, s + "]");
  }
  void field(std::string_view key, std::vector<std::string>& v, std::string_view) override {
    std::string s = "[";
    for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + quote(v[i]);
    put(key, s + "]");
  }
  void choice(std::string_view key, std::string& v, std::span<const std::string_view>,
              std::string_view) override {
    put(key, quote(v));
  }
  void section(std::string_view key, const std::function<void(Fields&)>& body) override {
    // Written now: `body` refers to the caller's struct only during this call.
    std::vector<std::string> path = table_path_;
    path.emplace_back(key);
    TomlWriter child(std::move(path));
    body(child);
    sections_.push_back(child.text());
  }
  void optional(std::string_view key, std::optional<std::int64_t>& v, std::string_view,
                Range) override {
    if (v) put(key, std::to_string(*v));
  }
  void optional(std::string_view key, std::optional<double>& v, std::string_view, Range) override {
    if (v) put(key, format_double(*v, true));
  }
  void optional(std::string_view key, std::optional<std::string>& v, std::string_view) override {
    if (v) put(key, quote(*v));
  }

 private:
  void put(std::string_view key, const std::string& value) {
    body_ += toml_key(key) + " = " + value + "\n";
  }

  std::vector<std::string> table_path_;
  std::string body_;
  std::vector<std::string> sections_;
};

}  // namespace

TomlSource parse_toml_file(const std::string& path) {
  std::error_code ec;
  CRUCIBLE_USER_CHECK(std::filesystem::exists(path, ec), path,
                      ": config file not found (give a path to a .toml file)");
  CRUCIBLE_USER_CHECK(!std::filesystem::is_directory(path, ec), path,
                      ": is a directory, expected a .toml config file");
  std::ifstream in(path, std::ios::binary);
  CRUCIBLE_USER_CHECK(in, path, ": cannot open config file for reading");
  std::ostringstream text;
  text << in.rdbuf();
  CRUCIBLE_USER_CHECK(!in.bad(), path, ": error while reading config file");
  return parse_toml_string(text.str(), path);
}

TomlSource parse_toml_string(std::string_view text, std::string path) {
  TomlSource doc;
  try {
    doc.table = std::make_shared<toml::table>(toml::parse(text, std::string_view(path)));
  } catch (const toml::parse_error& e) {
    const auto& b = e.source().begin;
    CRUCIBLE_FAIL(path, ':', b.line, ':', b.column, ": ", e.description());
  }
  doc.path = std::move(path);
  return doc;
}

void apply_override(TomlSource& doc, std::string_view assignment) {
  const std::string set = "--set " + std::string(assignment);
  const std::size_t eq = assignment.find('=');
  CRUCIBLE_USER_CHECK(eq != std::string_view::npos, set,
                      ": expected key=value (e.g. --set model.n_layers=4)");
  const std::string_view key = trim(assignment.substr(0, eq));
  const std::string_view value = trim(assignment.substr(eq + 1));
  const std::vector<std::string> parts = split_dotted(key);
  CRUCIBLE_USER_CHECK(
      !parts.empty() &&
          std::none_of(parts.begin(), parts.end(), [](const std::string& p) { return p.empty(); }),
      set, ": empty key (expected --set a.b.c=value)");
  if (!doc.table) doc.table = std::make_shared<toml::table>();

  // Walk down, creating missing tables; never through a scalar or an array.
  toml::table* t = doc.table.get();
  std::string path;
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    path = join_key(path, parts[i]);
    toml::node* n = t->get(parts[i]);
    if (!n) {
      n = t->insert(parts[i], toml::table{}).first->second.as_table();
      doc.overrides.try_emplace(path, set);
    }
    CRUCIBLE_USER_CHECK(n->is_table(), set, ": cannot set ", key, ": ", path, " is ",
                        describe_node(*n), " (", where(doc, path, n->source()), "), not a table");
    t = n->as_table();
  }

  // The value as TOML when it is one value; dates are no config type, so they
  // (and anything that is not TOML) stay the text as typed.
  std::optional<toml::table> parsed;
  try {
    parsed = toml::parse("v = " + std::string(value));
  } catch (const toml::parse_error&) {
  }
  toml::node* v = parsed && parsed->size() == 1 ? parsed->get("v") : nullptr;
  if (v && (v->is_date() || v->is_time() || v->is_date_time())) v = nullptr;
  if (v)
    t->insert_or_assign(parts.back(), std::move(*v));
  else
    t->insert_or_assign(parts.back(), std::string(value));

  // This --set now owns the key and everything below it.
  const std::string full = join_key(path, parts.back());
  for (auto it = doc.overrides.lower_bound(full + ".");
       it != doc.overrides.end() && it->first.starts_with(full + ".");)
    it = doc.overrides.erase(it);
  doc.overrides.insert_or_assign(full, set);
}

void read_toml(const TomlSource& doc, std::string_view prefix,
               const std::function<void(Fields&)>& describe) {
  TomlReader reader(doc, std::string(prefix), table_at(doc, prefix));
  describe(reader);
  reader.finish();
}

void check_known_keys(const TomlSource& doc, std::string_view prefix,
                      std::span<const std::string_view> known) {
  const toml::table* t = table_at(doc, prefix);
  if (!t) return;
  check_keys(doc, prefix, *t, std::vector<std::string>(known.begin(), known.end()));
}

std::string write_toml(std::string_view prefix, const std::function<void(Fields&)>& describe) {
  TomlWriter writer(split_dotted(prefix));
  describe(writer);
  return writer.text();
}

// Levenshtein distance (insert, delete, substitute; each costs 1).
std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j)
      cur[j] =
          std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

}  // namespace crucible::launch
