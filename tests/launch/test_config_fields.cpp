// tests/launch/test_config_fields.cpp: TOML <-> config struct mapping (launch/config_fields.h).
//
// One test struct uses every field kind, an enum and nested sections; the tests
// assert the exact user-facing error text (location, dotted key, what was wrong)
// for files and --set overrides, and that write_toml round-trips.
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include "core/error.h"
#include "launch/config_fields.h"
#include "tests/catch.h"

namespace {

using namespace crucible::launch;

enum class Act { Relu, Gelu, Swiglu };

struct InnerCfg {
  std::int64_t depth = 2;
};

struct SubCfg {
  std::int64_t heads = 8;
  double dropout = 0.0;
  std::vector<std::string> tags;
  InnerCfg inner;
};

struct TestCfg {
  bool flag = false;
  int layers = 4;
  std::int64_t big = std::int64_t{1} << 40;
  double lr = 3e-4;
  float eps = 1e-6f;
  std::string name = "demo";
  std::vector<std::int64_t> dims = {1, 2};
  std::vector<std::string> names;
  std::string mode = "fast";
  Act act = Act::Gelu;
  std::optional<std::int64_t> seed;
  std::optional<double> clip;
  std::optional<std::string> note;
  SubCfg sub;
};

constexpr std::pair<std::string_view, Act> kActNames[] = {
    {"relu", Act::Relu}, {"gelu", Act::Gelu}, {"swiglu", Act::Swiglu}};
constexpr std::string_view kModes[] = {"fast", "exact", "debug"};

void describe(Fields& f, InnerCfg& c) { f.field("depth", c.depth, "nesting depth", {.min = 0}); }

void describe(Fields& f, SubCfg& c) {
  f.field("heads", c.heads, "attention heads", {.min = 1, .max = 128});
  f.field("dropout", c.dropout, "dropout probability", {.min = 0, .max = 1});
  f.field("tags", c.tags, "free-form tags");
  f.section("inner", [&](Fields& g) { describe(g, c.inner); });
}

void describe(Fields& f, TestCfg& c) {
  f.field("flag", c.flag, "a switch");
  f.field("layers", c.layers, "number of layers", {.min = 1});
  f.field("big", c.big, "a large count");
  f.field("lr", c.lr, "learning rate", {.min = 0, .min_exclusive = true});
  f.field("eps", c.eps, "norm epsilon");
  f.field("name", c.name, "run name");
  f.field("dims", c.dims, "dimensions", {.min = 1});
  f.field("names", c.names, "names");
  f.choice("mode", c.mode, kModes, "mode");
  f.enumeration("act", c.act, kActNames, "activation");
  f.optional("seed", c.seed, "RNG seed", {.min = 0});
  f.optional("clip", c.clip, "gradient clip", {.min = 0});
  f.optional("note", c.note, "a note");
  f.section("sub", [&](Fields& g) { describe(g, c.sub); });
}

bool operator==(const InnerCfg& a, const InnerCfg& b) { return a.depth == b.depth; }
bool operator==(const SubCfg& a, const SubCfg& b) {
  return a.heads == b.heads && a.dropout == b.dropout && a.tags == b.tags && a.inner == b.inner;
}
bool operator==(const TestCfg& a, const TestCfg& b) {
  return a.flag == b.flag && a.layers == b.layers && a.big == b.big && a.lr == b.lr &&
         a.eps == b.eps && a.name == b.name && a.dims == b.dims && a.names == b.names &&
         a.mode == b.mode && a.act == b.act && a.seed == b.seed && a.clip == b.clip &&
         a.note == b.note && a.sub == b.sub;
}

TestCfg read_cfg(const TomlSource& doc, std::string_view prefix = "") {
  TestCfg c;
  read_toml(doc, prefix, [&](Fields& f) { describe(f, c); });
  return c;
}

TestCfg read_text(std::string_view text, std::string_view prefix = "") {
  return read_cfg(parse_toml_string(text, "cfg.toml"), prefix);
}

// The user's part of a crucible::Error ("(at launch/...)" cut off); "" when
// nothing was thrown.
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const crucible::Error& e) {
    std::string msg = e.what();
    auto at = msg.rfind(" (at ");
    return at == std::string::npos ? msg : msg.substr(0, at);
  }
  return "";
}

std::string text_error(std::string_view text) {
  return error_of([&] { read_text(text); });
}

// A fresh folder under the system temp directory, removed at scope exit.
struct TempDir {
  std::filesystem::path dir = std::filesystem::temp_directory_path() /
                              ("crucible_test_config_fields_" + std::to_string(::getpid()));
  TempDir() { std::filesystem::create_directories(dir); }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  std::string write(const std::string& name, std::string_view text) const {
    std::string path = (dir / name).string();
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }
};

}  // namespace

TEST_CASE("config fields: absent keys keep defaults", "[config]") {
  const TestCfg defaults;
  CHECK(read_text("") == defaults);
  // A missing prefix table reads as empty.
  CHECK(read_text("x = 1", "model") == defaults);
  CHECK(read_cfg(TomlSource{}) == defaults);

  TestCfg c = read_text("layers = 12\n[sub]\nheads = 16\n");
  CHECK(c.layers == 12);
  CHECK(c.sub.heads == 16);
  CHECK(c.sub.dropout == defaults.sub.dropout);
  CHECK(c.sub.inner.depth == defaults.sub.inner.depth);
  CHECK(c.name == defaults.name);
  CHECK(c.dims == defaults.dims);
  CHECK(!c.seed);
}

TEST_CASE("config fields: every kind reads", "[config]") {
  TestCfg c = read_text(R"(
flag = true
layers = 61
big = 9007199254740993
lr = 1            # an integer is a fine float
eps = 1e-5
name = "r1"
dims = [7, 8, 9]
names = ["a", "b"]
mode = "exact"
act = "swiglu"
seed = 0
clip = 1.5
note = "hi"
[sub]
heads = 128
dropout = 0.25
tags = []
inner.depth = 5
)");
  CHECK(c.flag);
  CHECK(c.layers == 61);
  CHECK(c.big == 9007199254740993);
  CHECK(c.lr == 1.0);
  CHECK(c.eps == 1e-5f);
  CHECK(c.name == "r1");
  CHECK(c.dims == std::vector<std::int64_t>{7, 8, 9});
  CHECK(c.names == std::vector<std::string>{"a", "b"});
  CHECK(c.mode == "exact");
  CHECK(c.act == Act::Swiglu);
  CHECK(c.seed == 0);
  CHECK(c.clip == 1.5);
  CHECK(c.note == "hi");
  CHECK(c.sub.heads == 128);
  CHECK(c.sub.dropout == 0.25);
  CHECK(c.sub.tags.empty());
  CHECK(c.sub.inner.depth == 5);

  // The same struct under a prefix.
  CHECK(read_text("[model]\nlayers = 3\n[model.sub.inner]\ndepth = 9\n", "model").sub.inner.depth ==
        9);
}

TEST_CASE("config fields: unknown keys name file, line, key and a suggestion", "[config]") {
  CHECK(text_error("layers = 2\nlayrs = 3\n") ==
        "cfg.toml:2:1: layrs: unknown key (did you mean 'layers'?)");
  CHECK(text_error("[sub]\nheads = 2\n  dropuot = 0.1\n") ==
        "cfg.toml:3:3: sub.dropuot: unknown key (did you mean 'dropout'?)");
  CHECK(text_error("[sub.inner]\ndepht = 1\n") ==
        "cfg.toml:2:1: sub.inner.depht: unknown key (did you mean 'depth'?)");
  // A misspelled section header points at the key inside the brackets.
  CHECK(text_error("[subb]\nheads = 2\n") ==
        "cfg.toml:1:2: subb: unknown key (did you mean 'sub'?)");
  // Nothing close: a few valid keys instead.
  CHECK(text_error("[sub.inner]\nwidth_multiplier = 1\n") ==
        "cfg.toml:2:1: sub.inner.width_multiplier: unknown key (valid keys: depth)");
  CHECK(text_error("zzzzzz = 1\n") ==
        "cfg.toml:1:1: zzzzzz: unknown key (valid keys: flag, layers, big, lr, eps, name, dims, "
        "names, ...)");
  // Every unknown key of a table, in file order.
  CHECK(text_error("nmae = 'x'\nlayers = 1\nflga = true\n") ==
        "cfg.toml:1:1: nmae: unknown key (did you mean 'name'?)\n"
        "cfg.toml:3:1: flga: unknown key (did you mean 'flag'?)");
}

TEST_CASE("config fields: wrong types", "[config]") {
  CHECK(text_error("layers = \"12\"") ==
        "cfg.toml:1:10: layers: expected an integer, got a string \"12\"");
  CHECK(text_error("layers = 2.5") ==
        "cfg.toml:1:10: layers: expected an integer, got a float 2.5");
  CHECK(text_error("layers = 2.0") ==
        "cfg.toml:1:10: layers: expected an integer, got a float 2.0");
  CHECK(text_error("flag = 1") == "cfg.toml:1:8: flag: expected a boolean, got an integer 1");
  CHECK(text_error("lr = 'x'") == "cfg.toml:1:6: lr: expected a float, got a string \"x\"");
  CHECK(text_error("name = 3") == "cfg.toml:1:8: name: expected a string, got an integer 3");
  CHECK(text_error("clip = false") == "cfg.toml:1:8: clip: expected a float, got a boolean false");
  CHECK(text_error("note = [1]") == "cfg.toml:1:8: note: expected a string, got an array");
  CHECK(text_error("when = 2024-01-01").starts_with("cfg.toml:1:1: when: unknown key"));
  // A table where a scalar belongs, and a scalar where a table belongs.
  CHECK(text_error("[layers]\nx = 1\n") ==
        "cfg.toml:1:1: layers: expected an integer, got a table");
  CHECK(text_error("name = { a = 1 }") == "cfg.toml:1:8: name: expected a string, got a table");
  CHECK(text_error("sub = 3") == "cfg.toml:1:7: sub: expected a table, got an integer 3");
  CHECK(text_error("[sub]\ninner = 'deep'\n") ==
        "cfg.toml:2:9: sub.inner: expected a table, got a string \"deep\"");
  CHECK(text_error("[[sub]]\nheads = 1\n") == "cfg.toml:1:1: sub: expected a table, got an array");
  // Arrays: the array itself, then each element with its index.
  CHECK(text_error("dims = 3") == "cfg.toml:1:8: dims: expected an array, got an integer 3");
  CHECK(text_error("dims = [1, 2, \"x\"]") ==
        "cfg.toml:1:15: dims[2]: expected an integer, got a string \"x\"");
  CHECK(text_error("names = ['a', 1]") ==
        "cfg.toml:1:15: names[1]: expected a string, got an integer 1");
  CHECK(text_error("[sub]\ntags = [[1]]") ==
        "cfg.toml:2:9: sub.tags[0]: expected a string, got an array");
  // The prefix itself must be a table.
  CHECK(error_of([] { read_text("model = 1", "model"); }) ==
        "cfg.toml:1:9: model: expected a table, got an integer 1");
}

TEST_CASE("config fields: ranges and choices", "[config]") {
  CHECK(text_error("layers = 0") == "cfg.toml:1:10: layers: must be >= 1, got 0");
  CHECK(text_error("lr = 0") == "cfg.toml:1:6: lr: must be > 0, got 0");
  CHECK(text_error("lr = -1e-5") == "cfg.toml:1:6: lr: must be > 0, got -1e-05");
  CHECK(text_error("lr = nan") == "cfg.toml:1:6: lr: must be > 0, got nan");
  CHECK(text_error("[sub]\ndropout = 1.5\n") ==
        "cfg.toml:2:11: sub.dropout: must be <= 1, got 1.5");
  CHECK(text_error("[sub]\nheads = 129\n") == "cfg.toml:2:9: sub.heads: must be <= 128, got 129");
  CHECK(text_error("seed = -1") == "cfg.toml:1:8: seed: must be >= 0, got -1");
  CHECK(text_error("dims = [4, 0]") == "cfg.toml:1:12: dims[1]: must be >= 1, got 0");
  // An int member: values beyond int are range errors, not silent wrap-around.
  CHECK(text_error("layers = 4294967297") ==
        "cfg.toml:1:10: layers: must be <= 2147483647, got 4294967297");
  CHECK(read_text("layers = 2147483647").layers == 2147483647);
  // Bounds exactly at the limit pass.
  CHECK(read_text("[sub]\ndropout = 1\nheads = 1\n").sub.dropout == 1.0);

  CHECK(text_error("mode = \"exactt\"") ==
        "cfg.toml:1:8: mode: must be one of: fast, exact, debug; got 'exactt' (did you mean "
        "'exact'?)");
  CHECK(text_error("mode = \"slow\"") ==
        "cfg.toml:1:8: mode: must be one of: fast, exact, debug; got 'slow'");
  CHECK(text_error("act = \"GELU\"") ==
        "cfg.toml:1:7: act: must be one of: relu, gelu, swiglu; got 'GELU'");
  CHECK(text_error("act = 'sigmoid'") ==
        "cfg.toml:1:7: act: must be one of: relu, gelu, swiglu; got 'sigmoid'");
  CHECK(text_error("act = 'swigul'") ==
        "cfg.toml:1:7: act: must be one of: relu, gelu, swiglu; got 'swigul' (did you mean "
        "'swiglu'?)");
  CHECK(text_error("act = 1") == "cfg.toml:1:7: act: expected a string, got an integer 1");
  CHECK(read_text("act = 'relu'").act == Act::Relu);
}

TEST_CASE("config fields: files", "[config]") {
  TempDir tmp;
  const std::string good = tmp.write("good.toml", "layers = 7\n[sub]\nheads = 4\n");
  TestCfg c = read_cfg(parse_toml_file(good));
  CHECK(c.layers == 7);
  CHECK(c.sub.heads == 4);

  const std::string bad_key = tmp.write("bad_key.toml", "# a comment\n\n[sub]\nhaeds = 4\n");
  CHECK(error_of([&] { read_cfg(parse_toml_file(bad_key)); }) ==
        bad_key + ":4:1: sub.haeds: unknown key (did you mean 'heads'?)");
  const std::string bad_type = tmp.write("bad_type.toml", "layers = 1\nlr = \"fast\"\n");
  CHECK(error_of([&] { read_cfg(parse_toml_file(bad_type)); }) ==
        bad_type + ":2:6: lr: expected a float, got a string \"fast\"");

  const std::string missing = (tmp.dir / "nope.toml").string();
  CHECK(error_of([&] { parse_toml_file(missing); }) ==
        missing + ": config file not found (give a path to a .toml file)");
  CHECK(error_of([&] { parse_toml_file(tmp.dir.string()); }) ==
        tmp.dir.string() + ": is a directory, expected a .toml config file");

  // Syntax errors: path:line:col and toml++'s description.
  const std::string syntax = tmp.write("syntax.toml", "layers = 1\nlr = \n");
  CHECK(error_of([&] { parse_toml_file(syntax); }) ==
        syntax + ":2:6: Error while parsing key-value pair: expected value, saw '\\n'");
  const std::string dup = tmp.write("dup.toml", "layers = 1\nlayers = 2\n");
  std::string dup_error = error_of([&] { parse_toml_file(dup); });
  CHECK(dup_error.starts_with(dup + ":2:"));
  CHECK(dup_error.find("layers") != std::string::npos);
  CHECK(
      error_of([] { parse_toml_string("a = [1,", "inline.toml"); }).starts_with("inline.toml:1:"));
}

TEST_CASE("config fields: --set overrides", "[config]") {
  SECTION("replace and add keys, create tables") {
    TomlSource doc = parse_toml_string("layers = 2\n[sub]\nheads = 4\n", "cfg.toml");
    apply_override(doc, "layers=12");
    apply_override(doc, "sub.heads = 32");
    apply_override(doc, "sub.inner.depth=7");  // [sub.inner] did not exist
    apply_override(doc, "name=run one");       // not TOML: the text as typed
    apply_override(doc, "note=\"quoted # not a comment\"");
    apply_override(doc, "lr=2.5e-4");
    apply_override(doc, "flag=true");
    apply_override(doc, "dims=[3, 4, 5]");
    apply_override(doc, "names=[\"x\", 'y']");
    apply_override(doc, "sub.tags=[]");
    apply_override(doc, "mode=debug");
    apply_override(doc, "seed=2024");
    TestCfg c = read_cfg(doc);
    CHECK(c.layers == 12);
    CHECK(c.sub.heads == 32);
    CHECK(c.sub.inner.depth == 7);
    CHECK(c.name == "run one");
    CHECK(c.note == "quoted # not a comment");
    CHECK(c.lr == 2.5e-4);
    CHECK(c.flag);
    CHECK(c.dims == std::vector<std::int64_t>{3, 4, 5});
    CHECK(c.names == std::vector<std::string>{"x", "y"});
    CHECK(c.sub.tags.empty());
    CHECK(c.mode == "debug");
    CHECK(c.seed == 2024);
  }
  SECTION("on an empty document, and a later --set wins") {
    TomlSource doc;
    apply_override(doc, "sub.heads=3");
    apply_override(doc, "sub.heads=5");
    apply_override(doc, "sub = { dropout = 0.5 }");  // replaces the whole table
    TestCfg c = read_cfg(doc);
    CHECK(c.sub.heads == 8);
    CHECK(c.sub.dropout == 0.5);
  }
  SECTION("a string field takes what was typed") {
    TomlSource doc = parse_toml_string("", "cfg.toml");
    apply_override(doc, "name=2024");
    apply_override(doc, "note=true");
    apply_override(doc, "sub.tags=[2024-01-01]");  // a date in an array stays a date
    CHECK(error_of([&] { read_cfg(doc); }) ==
          "--set sub.tags=[2024-01-01]: sub.tags[0]: expected a string, got a date");
    apply_override(doc, "sub.tags=[]");
    apply_override(doc, "eps=2024-01-01");  // a date is no config type: kept as text
    CHECK(error_of([&] { read_cfg(doc); }) ==
          "--set eps=2024-01-01: eps: expected a float, got a string \"2024-01-01\"");
    apply_override(doc, "eps=1e-5");
    TestCfg c = read_cfg(doc);
    CHECK(c.name == "2024");
    CHECK(c.note == "true");
    apply_override(doc, "mode=fsat");
    CHECK(error_of([&] { read_cfg(doc); }) ==
          "--set mode=fsat: mode: must be one of: fast, exact, debug; got 'fsat' (did you mean "
          "'fast'?)");
  }
  SECTION("errors in overridden values name the --set") {
    auto set_error = [](std::string_view file, std::string_view set) {
      TomlSource doc = parse_toml_string(file, "cfg.toml");
      apply_override(doc, set);
      return error_of([&] { read_cfg(doc); });
    };
    CHECK(set_error("layers = 3", "layers=0") == "--set layers=0: layers: must be >= 1, got 0");
    CHECK(set_error("", "layers=abc") ==
          "--set layers=abc: layers: expected an integer, got a string \"abc\"");
    CHECK(set_error("", "layers=2.5") ==
          "--set layers=2.5: layers: expected an integer, got a float 2.5");
    CHECK(set_error("", "sub.dropout=high") ==
          "--set sub.dropout=high: sub.dropout: expected a float, got a string \"high\"");
    CHECK(set_error("", "sub.hedas=3") ==
          "--set sub.hedas=3: sub.hedas: unknown key (did you mean 'heads'?)");
    CHECK(set_error("", "sub.inner.x.y=1") ==
          "--set sub.inner.x.y=1: sub.inner.x: unknown key (valid keys: depth)");
    CHECK(set_error("", "dims=[1, \"a\"]") ==
          "--set dims=[1, \"a\"]: dims[1]: expected an integer, got a string \"a\"");
    CHECK(set_error("", "dims=[1, 0]") == "--set dims=[1, 0]: dims[1]: must be >= 1, got 0");
    CHECK(set_error("", "sub=3") == "--set sub=3: sub: expected a table, got an integer 3");
    CHECK(set_error("", "sub={ heads = 0 }") ==
          "--set sub={ heads = 0 }: sub.heads: must be >= 1, got 0");
    // A file error next to an override still names the file.
    CHECK(set_error("[sub]\nheads = 0\n", "sub.dropout=0.5") ==
          "cfg.toml:2:9: sub.heads: must be >= 1, got 0");
    // A later --set on the same key is the one named.
    TomlSource doc;
    apply_override(doc, "sub={ heads = 0 }");
    apply_override(doc, "sub.heads=-2");
    CHECK(error_of([&] { read_cfg(doc); }) ==
          "--set sub.heads=-2: sub.heads: must be >= 1, got -2");
  }
  SECTION("malformed assignments") {
    TomlSource doc = parse_toml_string("layers = 2\n[sub]\nheads = 4\n", "cfg.toml");
    CHECK(error_of([&] { apply_override(doc, "layers"); }) ==
          "--set layers: expected key=value (e.g. --set model.n_layers=4)");
    CHECK(error_of([&] { apply_override(doc, "=3"); }) ==
          "--set =3: empty key (expected --set a.b.c=value)");
    CHECK(error_of([&] { apply_override(doc, "sub..heads=3"); }) ==
          "--set sub..heads=3: empty key (expected --set a.b.c=value)");
    CHECK(error_of([&] { apply_override(doc, "sub.=3"); }) ==
          "--set sub.=3: empty key (expected --set a.b.c=value)");
    // Through a scalar: names where the scalar came from.
    CHECK(error_of([&] { apply_override(doc, "layers.x=1"); }) ==
          "--set layers.x=1: cannot set layers.x: layers is an integer 2 (cfg.toml:1:10), not a "
          "table");
    CHECK(error_of([&] { apply_override(doc, "sub.heads.n=1"); }) ==
          "--set sub.heads.n=1: cannot set sub.heads.n: sub.heads is an integer 4 (cfg.toml:3:9), "
          "not a table");
    apply_override(doc, "flag=false");
    CHECK(error_of([&] { apply_override(doc, "flag.on=1"); }) ==
          "--set flag.on=1: cannot set flag.on: flag is a boolean false (--set flag=false), not a "
          "table");
  }
}

TEST_CASE("config fields: check_known_keys", "[config]") {
  constexpr std::string_view kTop[] = {"model", "train", "data"};
  TomlSource doc = parse_toml_string("[model]\nx = 1\n[train]\n[dta]\n", "cfg.toml");
  CHECK(error_of([&] { check_known_keys(doc, "", kTop); }) ==
        "cfg.toml:4:2: dta: unknown key (did you mean 'data'?)");
  TomlSource ok = parse_toml_string("[model]\n[data]\n", "cfg.toml");
  CHECK_NOTHROW(check_known_keys(ok, "", kTop));
  CHECK_NOTHROW(check_known_keys(ok, "absent.table", kTop));
  constexpr std::string_view kModel[] = {"x"};
  CHECK_NOTHROW(check_known_keys(doc, "model", kModel));
  apply_override(ok, "trian.steps=5");
  CHECK(error_of([&] { check_known_keys(ok, "", kTop); }) ==
        "--set trian.steps=5: trian: unknown key (did you mean 'train'?)");
}

TEST_CASE("config fields: write_toml round-trips", "[config]") {
  TestCfg c;
  c.flag = true;
  c.layers = 3;
  c.big = std::numeric_limits<std::int64_t>::min();
  c.lr = 0.1;
  c.eps = 1.17549435e-38f;
  c.name = "quote \" backslash \\ tab \t newline \n bell \x07 del \x7f unicode é 漢";
  c.dims = {std::numeric_limits<std::int64_t>::max(), 1, 2};
  c.names = {"", "a b", "[x]", "#", "'single'"};
  c.mode = "debug";
  c.act = Act::Relu;
  c.seed = 42;
  c.clip = 1e300;
  c.note = std::nullopt;
  c.sub.heads = 1;
  c.sub.dropout = 1.0;
  c.sub.tags = {"t"};
  c.sub.inner.depth = 0;

  auto describe_c = [&](Fields& f) { describe(f, c); };
  std::string text = write_toml("", describe_c);
  INFO(text);
  TestCfg back = read_text(text);
  CHECK(back == c);
  CHECK(text.find("note") == std::string::npos);  // nullopt: omitted
  CHECK(text.find("clip = 1e+300\n") != std::string::npos);
  CHECK(text.find("dropout = 1.0\n") != std::string::npos);  // a float stays a float
  // Scalars first, then [sub] and [sub.inner] headers.
  auto sub = text.find("\n[sub]\nheads = 1\n");
  auto inner = text.find("\n[sub.inner]\ndepth = 0\n");
  CHECK(sub != std::string::npos);
  CHECK(inner != std::string::npos);
  CHECK(sub < inner);
  CHECK(text.find("act = \"relu\"\n") < sub);

  // Under a prefix, with awkward floats (clip allows >= 0, so -0.0 too).
  for (double v : {5e-324, 2.2250738585072014e-308, 0.30000000000000004, 123456789.0, -0.0, 1e16,
                   1.7976931348623157e308, std::numeric_limits<double>::infinity()}) {
    c.clip = v;
    if (v > 0) c.lr = v;
    std::string nested = write_toml("model.main", describe_c);
    CHECK(nested.starts_with("[model.main]\n"));
    TestCfg r = read_text(nested, "model.main");
    CHECK(r == c);
    CHECK(std::signbit(*r.clip) == std::signbit(v));
  }
  c.eps = std::numeric_limits<float>::quiet_NaN();  // eps has no range
  TestCfg r = read_text(write_toml("", describe_c));
  CHECK(std::isnan(r.eps));

  // Defaults write and read back too.
  TestCfg d;
  CHECK(read_text(write_toml("", [&](Fields& f) { describe(f, d); })) == TestCfg{});
}

TEST_CASE("config fields: edit_distance", "[config]") {
  CHECK(edit_distance("", "") == 0);
  CHECK(edit_distance("abc", "") == 3);
  CHECK(edit_distance("", "abc") == 3);
  CHECK(edit_distance("layers", "layers") == 0);
  CHECK(edit_distance("kitten", "sitting") == 3);
  CHECK(edit_distance("hiden_size", "hidden_size") == 1);
  CHECK(edit_distance("hidden_size", "hiden_size") == 1);
  CHECK(edit_distance("heads", "haeds") == 2);  // a transposition is two edits
  CHECK(edit_distance("flaw", "lawn") == 2);
}
