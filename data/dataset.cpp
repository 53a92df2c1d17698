// data/dataset.cpp: RL / SFT record validation, loaders, epoch permutations, sharding.
//
// Invariant: a record either converts completely or throws BadRecord naming the key;
// epoch_permutation(n, seed, e) is a permutation of [0, n) that depends only on
// (n, seed, e) and is the same on every platform (Philox + exact Rng::below).
// Reference: Fisher-Yates / Knuth shuffle (TAOCP vol. 2, Algorithm P); DESIGN.md §4.
#include "data/dataset.h"

#include <numeric>
#include <string_view>

#include "core/rng.h"

namespace crucible::data {

namespace {

[[noreturn]] void bad(const std::string& why) { throw BadRecord(why); }

std::string kind_of(const json::Value& v) { return std::string(json::kind_name(v.kind())); }

const json::Value& require(const json::Value& obj, std::string_view key, std::string_view form) {
  const json::Value* v = obj.find(key);
  if (!v) bad(detail::concat("key '", key, "' is missing (", form, ")"));
  return *v;
}

const std::string& require_string(const json::Value& obj, std::string_view key, std::string_view form,
                                  bool allow_empty) {
  const json::Value& v = require(obj, key, form);
  if (!v.is_string()) bad(detail::concat("key '", key, "' must be a string, got ", kind_of(v)));
  if (!allow_empty && v.as_string().empty()) bad(detail::concat("key '", key, "' is an empty string"));
  return v.as_string();
}

std::string read_id(const json::Value& obj, std::int64_t line) {
  const json::Value* v = obj.find("id");
  if (!v || v->is_null()) return std::to_string(line);
  if (v->is_string()) return v->as_string();
  if (v->is_integer()) return std::to_string(v->as_int64());
  bad("key 'id' must be a string or an integer, got " + kind_of(*v));
}

json::Value read_meta(const json::Value& obj) {
  const json::Value* v = obj.find("meta");
  if (!v || v->is_null()) return json::Value::object();
  if (!v->is_object()) bad("key 'meta' must be an object, got " + kind_of(*v));
  return *v;
}

bool known_role(std::string_view r) { return r == "system" || r == "user" || r == "assistant" || r == "tool"; }

template <typename T>
std::vector<T> load_with(JsonlReader reader, JsonlStats* stats,
                         T (*convert)(const json::Value&, std::int64_t)) {
  std::vector<T> out = reader.read_all<T>(convert);
  if (stats) *stats = reader.stats();
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------- records

RlPrompt rl_prompt_from_json(const json::Value& obj, std::int64_t line) {
  static constexpr std::string_view kForm = "an RL record needs \"prompt\" and \"answer\"";
  RlPrompt p;
  p.prompt = require_string(obj, "prompt", kForm, /*allow_empty=*/false);
  const json::Value& a = require(obj, "answer", kForm);
  if (a.is_string()) {
    if (a.as_string().empty()) bad("key 'answer' is an empty string");
    p.answer = a.as_string();
  } else if (a.is_number()) {
    p.answer = json::dump(a);  // integers exactly, doubles in shortest round-trip form
  } else {
    bad("key 'answer' must be a string or a number, got " + kind_of(a));
  }
  p.id = read_id(obj, line);
  p.meta = read_meta(obj);
  return p;
}

SftExample sft_example_from_json(const json::Value& obj, std::int64_t line) {
  static constexpr std::string_view kForm =
      "an SFT record needs \"prompt\" + \"response\", or \"messages\"";
  SftExample e;
  const json::Value* msgs = obj.find("messages");
  if (msgs) {
    if (obj.find("prompt") || obj.find("response"))
      bad("has both 'messages' and 'prompt'/'response'; use one form");
    if (!msgs->is_array()) bad("key 'messages' must be an array, got " + kind_of(*msgs));
    bool has_assistant = false;
    std::size_t i = 0;
    for (const json::Value& m : msgs->as_array()) {
      const std::string where = detail::concat("messages[", i++, "]");
      if (!m.is_object()) bad(where + " must be an object, got " + kind_of(m));
      const json::Value* role = m.find("role");
      const json::Value* content = m.find("content");
      if (!role || !role->is_string())
        bad(where + ": key 'role' must be a string (" + (role ? "got " + kind_of(*role) : "missing") + ")");
      if (!known_role(role->as_string()))
        bad(where + ": role '" + role->as_string() + "' is not one of system, user, assistant, tool");
      if (!content || !content->is_string())
        bad(where + ": key 'content' must be a string (" + (content ? "got " + kind_of(*content) : "missing") +
            ")");
      has_assistant = has_assistant || (role->as_string() == "assistant" && !content->as_string().empty());
      e.messages.push_back({role->as_string(), content->as_string()});
    }
    if (!has_assistant) bad("key 'messages' has no non-empty assistant message (nothing to train on)");
  } else {
    const json::Value* sys = obj.find("system");
    if (sys && !sys->is_null()) {
      if (!sys->is_string()) bad("key 'system' must be a string, got " + kind_of(*sys));
      e.messages.push_back({"system", sys->as_string()});
    }
    e.messages.push_back({"user", require_string(obj, "prompt", kForm, /*allow_empty=*/false)});
    e.messages.push_back({"assistant", require_string(obj, "response", kForm, /*allow_empty=*/false)});
  }
  e.id = read_id(obj, line);
  e.meta = read_meta(obj);
  return e;
}

json::Value to_json(const RlPrompt& p) {
  json::Value j = json::Value::object();
  j.set("id", p.id);
  j.set("prompt", p.prompt);
  j.set("answer", p.answer);
  j.set("meta", p.meta.is_null() ? json::Value::object() : p.meta);
  return j;
}

json::Value to_json(const SftExample& e) {
  json::Value j = json::Value::object();
  j.set("id", e.id);
  json::Value msgs = json::Value::array();
  for (const SftMessage& m : e.messages) {
    json::Value o = json::Value::object();
    o.set("role", m.role);
    o.set("content", m.content);
    msgs.push_back(std::move(o));
  }
  j.set("messages", std::move(msgs));
  j.set("meta", e.meta.is_null() ? json::Value::object() : e.meta);
  return j;
}

// ---------------------------------------------------------------------------- loaders

std::vector<RlPrompt> load_rl_prompts(const std::string& path, const JsonlOptions& opts, JsonlStats* stats) {
  return load_with<RlPrompt>(JsonlReader::open(path, opts), stats, rl_prompt_from_json);
}

std::vector<SftExample> load_sft(const std::string& path, const JsonlOptions& opts, JsonlStats* stats) {
  return load_with<SftExample>(JsonlReader::open(path, opts), stats, sft_example_from_json);
}

std::vector<RlPrompt> parse_rl_prompts(std::string text, std::string source, const JsonlOptions& opts,
                                       JsonlStats* stats) {
  return load_with<RlPrompt>(JsonlReader::from_string(std::move(text), std::move(source), opts), stats,
                             rl_prompt_from_json);
}

std::vector<SftExample> parse_sft(std::string text, std::string source, const JsonlOptions& opts,
                                  JsonlStats* stats) {
  return load_with<SftExample>(JsonlReader::from_string(std::move(text), std::move(source), opts), stats,
                               sft_example_from_json);
}

// ---------------------------------------------------------------------------- order

std::vector<std::size_t> epoch_permutation(std::size_t n, std::uint64_t seed, std::uint64_t epoch, bool shuffle) {
  std::vector<std::size_t> perm(n);
  std::iota(perm.begin(), perm.end(), std::size_t{0});
  if (!shuffle || n < 2) return perm;
  // One Philox stream per epoch; the high tag keeps these streams apart from
  // other users of the same seed that count streams from 0.
  constexpr std::uint64_t kShuffleStreams = 0x5348554646000000ull;  // "SHUFF"
  Rng rng(seed, kShuffleStreams ^ epoch);
  for (std::size_t i = n - 1; i > 0; --i) {
    const std::size_t j = static_cast<std::size_t>(rng.below(i + 1));
    std::swap(perm[i], perm[j]);
  }
  return perm;
}

std::size_t shard_size(std::size_t n, int rank, int world) {
  CRUCIBLE_CHECK(world >= 1 && rank >= 0 && rank < world, "rank ", rank, " world ", world);
  const auto r = static_cast<std::size_t>(rank), w = static_cast<std::size_t>(world);
  return n > r ? (n - r + w - 1) / w : 0;
}

json::Value DataCursor::to_json() const {
  json::Value j = json::Value::object();
  // Both fit int64 in any real run; json::Value(std::uint64_t) checks it.
  j.set("epoch", json::Value(epoch));
  j.set("position", json::Value(position));
  return j;
}

DataCursor DataCursor::from_json(const json::Value& v) {
  CRUCIBLE_USER_CHECK(v.is_object(), "data cursor: expected an object {\"epoch\", \"position\"}, got ",
                      json::kind_name(v.kind()));
  DataCursor c;
  const std::int64_t e = v.at("epoch").as_int64(), p = v.at("position").as_int64();
  CRUCIBLE_USER_CHECK(e >= 0 && p >= 0, "data cursor: epoch and position must be >= 0, got ", e, ", ", p);
  c.epoch = static_cast<std::uint64_t>(e);
  c.position = static_cast<std::uint64_t>(p);
  return c;
}

}  // namespace crucible::data
