// tests/checkpoints/test_safetensors.cpp: safetensors reading, writing and sharding.
//
// Invariant under test: what crucible writes reads back bit for bit in every dtype
// (header order kept, data aligned), the header bytes are those the spec and the
// reference writer give, a file written by Python's safetensors reads with its exact
// values, and each class of damaged file is rejected with a message naming the path
// and the problem. Reference: reference/checkpoint_formats.md §1;
// tools/make_safetensors_golden.py made tests/data/safetensors/golden.safetensors.
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "checkpoints/safetensors.h"
#include "core/error.h"
#include "core/numerics.h"
#include "tests/catch.h"

using namespace crucible;
using namespace crucible::checkpoints;
namespace fs = std::filesystem;

namespace {

// A fresh directory per test case (unique per process), removed at the end.
struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& name)
      : path(fs::temp_directory_path() / ("crucible_st_" + std::to_string(::getpid()) + "_" + name)) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

std::string le64(std::uint64_t n) {
  std::string s;
  for (int i = 0; i < 8; ++i) s += static_cast<char>((n >> (8 * i)) & 0xff);
  return s;
}

// A file with this exact header text (no padding) and data section.
std::string with_header(const std::string& header, const std::string& data) { return le64(header.size()) + header + data; }

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Distinct, deterministic bytes in every element (NaN patterns included: compared as bytes).
Tensor patterned(Shape shape, DType dtype, int seed) {
  Tensor t(shape, dtype);
  auto* p = static_cast<std::uint8_t*>(t.raw());
  for (std::size_t i = 0; i < t.nbytes(); ++i) p[i] = static_cast<std::uint8_t>(i * 131 + seed * 7 + 1);
  return t;
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

std::vector<float> values(const Tensor& t) { return {t.data<float>(), t.data<float>() + t.numel()}; }

const DType kAllDTypes[] = {DType::F64, DType::F32, DType::BF16, DType::F16, DType::E4M3,
                            DType::E5M2, DType::I64, DType::I32, DType::U8};

}  // namespace

TEST_CASE("safetensors: round trip of every dtype keeps order, bytes and alignment", "[safetensors]") {
  TempDir dir("roundtrip");
  NamedTensors tensors;
  const Shape shapes[] = {{3, 5}, {7}, {2, 3, 4}, {}, {0, 3}};
  // Header order mixes element sizes on purpose: the data order differs from it.
  for (int i = 0; i < 9; ++i) {
    const DType d = kAllDTypes[(i * 4) % 9];
    tensors.emplace_back("layer." + std::to_string(i) + "." + std::string(dtype_name(d)),
                         patterned(shapes[i % 5], d, i));
  }
  tensors.emplace_back("odd_u8", patterned({3}, DType::U8, 42));
  tensors.emplace_back("then_f64", patterned({2}, DType::F64, 43));
  const std::string path = dir.file("all.safetensors");
  write_safetensors(path, tensors, {{"step", "12"}});
  CHECK_FALSE(fs::exists(path + ".tmp"));
  CHECK(read_bytes(path) == encode_safetensors(tensors, {{"step", "12"}}));

  const SafetensorsFile f(path);
  REQUIRE(f.size() == tensors.size());
  CHECK(f.data_offset() % 8 == 0);
  CHECK(f.metadata() == SafetensorsMetadata{{"format", "pt"}, {"step", "12"}});
  REQUIRE(f.metadata_value("step"));
  CHECK(*f.metadata_value("step") == "12");
  CHECK(f.metadata_value("nope") == nullptr);
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const auto& [name, t] = tensors[i];
    CAPTURE(name);
    CHECK(f.names()[i] == name);
    const SafetensorsTensorInfo& info = f.info(name);
    CHECK(info.dtype == to_safetensors_dtype(t.dtype()));
    CHECK(info.shape == t.shape());
    CHECK(info.begin % dtype_size(t.dtype()) == 0);  // aligned to its element size
    const Tensor back = f.read(name);
    CHECK(back.name() == name);
    CHECK(same_bytes(back, t));
    CHECK(f.bytes(name).size() == t.nbytes());
  }
  CHECK(f.info("layer.0.f64").dtype_name() == "F64");
  CHECK(f.info("layer.1.e4m3").dtype_name() == "F8_E4M3");
  CHECK(f.info("layer.8.e5m2").dtype_name() == "F8_E5M2");
  CHECK_THROWS_WITH(f.info("missing"), Catch::Contains(path) && Catch::Contains("no tensor \"missing\""));

  // The same bytes parse from memory.
  const SafetensorsFile m = SafetensorsFile::from_bytes(read_bytes(path), "mem");
  CHECK(m.names() == f.names());
}

TEST_CASE("safetensors: header golden bytes of a one-tensor file", "[safetensors]") {
  // Spec: u64 LE header size, the JSON, spaces up to a multiple of 8, then the data.
  // The JSON is 85 bytes, so 3 spaces pad it to 88. Python safetensors 0.8 writes
  // exactly these bytes for save({"a": [1, -2] f32}, metadata={"format": "pt"}).
  const std::string json = R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  REQUIRE(json.size() == 85);
  std::string expected = std::string("\x58\0\0\0\0\0\0\0", 8) + json + "   ";
  expected += std::string("\x00\x00\x80\x3f\x00\x00\x00\xc0", 8);  // 1.0f, -2.0f little-endian
  Tensor a({2}, DType::F32);
  a.data<float>()[0] = 1.0f;
  a.data<float>()[1] = -2.0f;
  CHECK(encode_safetensors({{"a", a}}) == expected);
  TempDir dir("golden_bytes");
  write_safetensors(dir.file("a.safetensors"), {{"a", a}});
  CHECK(read_bytes(dir.file("a.safetensors")) == expected);
}

TEST_CASE("safetensors: reads the file Python's safetensors wrote with exact values", "[safetensors]") {
  const SafetensorsFile f(std::string(CRUCIBLE_SOURCE_DIR) + "/tests/data/safetensors/golden.safetensors");
  CHECK(f.metadata() == SafetensorsMetadata{{"format", "pt"}, {"source", "tools/make_safetensors_golden.py"}});
  CHECK(f.names() == std::vector<std::string>{"i64", "empty", "f32", "scalar", "bf16", "f16", "e4m3"});

  const Tensor bf16 = f.read("bf16");
  CHECK(bf16.dtype() == DType::BF16);
  CHECK(bf16.shape() == Shape{2, 3});
  CHECK(std::vector<std::uint16_t>(bf16.data<std::uint16_t>(), bf16.data<std::uint16_t>() + 6) ==
        std::vector<std::uint16_t>{0x3f80, 0xc000, 0x3f00, 0x4049, 0xbc00, 0x4380});
  CHECK(values(f.read_f32("bf16")) == std::vector<float>{1.0f, -2.0f, 0.5f, 3.140625f, -0.0078125f, 256.0f});

  const float inf = std::numeric_limits<float>::infinity();
  CHECK(f.read("f16").dtype() == DType::F16);
  CHECK(values(f.read_f32("f16")) == std::vector<float>{1.0f, -0.333251953125f, 65504.0f, 0x1p-24f, inf});
  CHECK(values(f.read("f32")) == std::vector<float>{0.1f, -1e-30f, 3.4028235e38f, 1.5f});
  CHECK(f.read("f32").shape() == Shape{2, 2});

  const Tensor i64 = f.read("i64");
  CHECK(std::vector<std::int64_t>(i64.data<std::int64_t>(), i64.data<std::int64_t>() + 3) ==
        std::vector<std::int64_t>{-1, (std::int64_t{1} << 40) + 3, std::numeric_limits<std::int64_t>::min()});
  CHECK(values(f.read_f32("i64")) == std::vector<float>{-1.0f, 0x1p40f, -0x1p63f});  // 2^40+3 rounds to 2^40

  CHECK(f.read("e4m3").dtype() == DType::E4M3);
  CHECK(values(f.read_f32("e4m3")) == std::vector<float>{1.0f, -2.0f, 448.0f, 0x1p-9f});

  const Tensor scalar = f.read("scalar");
  CHECK(scalar.rank() == 0);
  CHECK(scalar.data<float>()[0] == 7.0f);
  CHECK(f.read("empty").shape() == Shape{0, 3});
  CHECK(f.read_f32("empty").numel() == 0);
}

TEST_CASE("safetensors: read_f32 decodes every stored dtype", "[safetensors]") {
  // BF16 bit patterns: 1, -2, pi in bf16, +inf, NaN, -0, the smallest subnormal.
  const std::uint16_t bits[] = {0x3f80, 0xc000, 0x4049, 0x7f80, 0x7fc0, 0x8000, 0x0001};
  Tensor bf16({7}, DType::BF16);
  std::memcpy(bf16.raw(), bits, sizeof bits);
  Tensor f64({4}, DType::F64);
  const double big = static_cast<double>(std::numeric_limits<float>::max());
  const double f64_values[] = {0.1, big + 0x1p102, big + 0x1p103, -1e300};  // < halfway rounds down
  std::memcpy(f64.raw(), f64_values, sizeof f64_values);
  Tensor i32({2}, DType::I32);
  i32.data<std::int32_t>()[0] = -7;
  i32.data<std::int32_t>()[1] = 16777217;  // 2^24 + 1: nearest float is 2^24
  Tensor u8({2}, DType::U8);
  u8.data<std::uint8_t>()[0] = 0;
  u8.data<std::uint8_t>()[1] = 255;
  Tensor e5m2({3}, DType::E5M2);
  e5m2.data<std::uint8_t>()[0] = 0x3c;  // 1.0
  e5m2.data<std::uint8_t>()[1] = 0x7b;  // 57344, max normal
  e5m2.data<std::uint8_t>()[2] = 0xfc;  // -inf

  const SafetensorsFile f =
      SafetensorsFile::from_bytes(encode_safetensors({{"bf16", bf16}, {"f64", f64}, {"i32", i32}, {"u8", u8}, {"e5m2", e5m2}}));
  const std::vector<float> b = values(f.read_f32("bf16"));
  const float inf = std::numeric_limits<float>::infinity();
  CHECK(b[0] == 1.0f);
  CHECK(b[1] == -2.0f);
  CHECK(b[2] == 3.140625f);
  CHECK(b[3] == inf);
  CHECK(std::isnan(b[4]));
  CHECK((b[5] == 0.0f && std::signbit(b[5])));
  CHECK(b[6] == 0x1p-133f);
  CHECK(values(f.read_f32("f64")) == std::vector<float>{0.1f, std::numeric_limits<float>::max(), inf, -inf});
  CHECK(values(f.read_f32("i32")) == std::vector<float>{-7.0f, 16777216.0f});
  CHECK(values(f.read_f32("u8")) == std::vector<float>{0.0f, 255.0f});
  CHECK(values(f.read_f32("e5m2")) == std::vector<float>{1.0f, 57344.0f, -inf});
  for (int i = 0; i < 7; ++i)  // the same decode as core/numerics
    if (!std::isnan(b[i])) CHECK(b[i] == bf16_to_f32(bits[i]));

  // I16, I8 and BOOL (no crucible DType; files from elsewhere): read_f32 only.
  const std::string data = std::string("\xfe\xff\x00\x80", 4) + "\x80\x7f" + std::string("\x01\x00", 2);
  const SafetensorsFile g = SafetensorsFile::from_bytes(with_header(
      R"({"i16":{"dtype":"I16","shape":[2],"data_offsets":[0,4]},"i8":{"dtype":"I8","shape":[2],"data_offsets":[4,6]},)"
      R"("b":{"dtype":"BOOL","shape":[2],"data_offsets":[6,8]}})", data), "hand.safetensors");
  CHECK(values(g.read_f32("i16")) == std::vector<float>{-2.0f, -32768.0f});
  CHECK(values(g.read_f32("i8")) == std::vector<float>{-128.0f, 127.0f});
  CHECK(values(g.read_f32("b")) == std::vector<float>{1.0f, 0.0f});
  CHECK_THROWS_WITH(g.read("i16"), Catch::Contains("hand.safetensors") && Catch::Contains("I16") &&
                                       Catch::Contains("read_f32"));
}

TEST_CASE("safetensors: sharded round trip through the index, shards opened lazily", "[safetensors]") {
  TempDir dir("sharded");
  NamedTensors tensors = {{"embed", patterned({16, 8}, DType::BF16, 1)},   // 256 bytes
                          {"l0.q", patterned({8, 8}, DType::F32, 2)},      // 256
                          {"l0.norm", patterned({8}, DType::F32, 3)},      // 32
                          {"huge", patterned({200}, DType::F64, 5)},       // 1600: over the cap, alone
                          {"l0.fp8", patterned({8, 16}, DType::E4M3, 4)},  // 128
                          {"ids", patterned({3}, DType::I64, 6)}};         // 24
  const std::vector<std::string> files = write_safetensors_sharded(dir.path.string(), tensors, 300);
  CHECK(files == std::vector<std::string>{"model-00001-of-00004.safetensors", "model-00002-of-00004.safetensors",
                                          "model-00003-of-00004.safetensors", "model-00004-of-00004.safetensors",
                                          "model.safetensors.index.json"});
  {
    const SafetensorsIndex index = SafetensorsIndex::open(dir.path.string());
    CHECK(index.path() == dir.file(SafetensorsIndex::kIndexFile));
    CHECK(index.shard_paths().size() == 4);
    CHECK(index.metadata().at("total_size").as_int64() == 2296);
    REQUIRE(index.names().size() == tensors.size());
    for (std::size_t i = 0; i < tensors.size(); ++i) {
      CHECK(index.names()[i] == tensors[i].first);
      CHECK(same_bytes(index.read(tensors[i].first), tensors[i].second));
    }
    CHECK(index.shard_path("huge") == dir.file("model-00003-of-00004.safetensors"));
    CHECK(index.read_f32("l0.norm").dtype() == DType::F32);
    CHECK(index.info("l0.fp8").dtype == StDType::F8_E4M3);
    CHECK_NOTHROW(index.check_all());
    CHECK_THROWS_WITH(index.read("nope"), Catch::Contains("no tensor \"nope\""));
  }
  {
    // Lazy: a missing shard only matters to the tensors in it.
    fs::remove(dir.file("model-00004-of-00004.safetensors"));
    const SafetensorsIndex index = SafetensorsIndex::open(dir.file(SafetensorsIndex::kIndexFile));
    CHECK(same_bytes(index.read("embed"), tensors[0].second));
    CHECK_THROWS_WITH(index.read("ids"), Catch::Contains("model-00004-of-00004.safetensors") &&
                                             Catch::Contains("does not exist"));
  }
  // Saving again under a large cap gives one model.safetensors and removes the old set.
  CHECK(write_safetensors_sharded(dir.path.string(), tensors, 1 << 20) == std::vector<std::string>{"model.safetensors"});
  CHECK_FALSE(fs::exists(dir.file(SafetensorsIndex::kIndexFile)));
  CHECK_FALSE(fs::exists(dir.file("model-00001-of-00004.safetensors")));
  const SafetensorsIndex single = SafetensorsIndex::open(dir.path.string());
  CHECK(single.path() == dir.file("model.safetensors"));
  CHECK(same_bytes(single.read("huge"), tensors[3].second));
}

TEST_CASE("safetensors: bad indexes and directories are named", "[safetensors]") {
  TempDir dir("bad_index");
  write_safetensors(dir.file("s.safetensors"), {{"a", patterned({2}, DType::F32, 1)}});
  auto index_with = [&](const std::string& text) {
    write_bytes(dir.file("i.json"), text);
    return SafetensorsIndex::open(dir.file("i.json"));
  };
  CHECK_THROWS_WITH(SafetensorsIndex::open(dir.path.string()), Catch::Contains("no model.safetensors"));
  CHECK_THROWS_WITH(index_with(R"({"metadata":{}})"), Catch::Contains("i.json") && Catch::Contains("missing \"weight_map\""));
  CHECK_THROWS_WITH(index_with(R"({"weight_map":{"a":"../s.safetensors"}})"), Catch::Contains("inside the index's directory"));
  CHECK_THROWS_WITH(index_with(R"({"weight_map":{"a":"s.safetensors","a":"t.safetensors"}})"),
                    Catch::Contains("duplicate key \"a\""));
  const SafetensorsIndex wrong = index_with(R"({"weight_map":{"a":"s.safetensors","b":"s.safetensors"}})");
  CHECK_NOTHROW(wrong.read("a"));
  CHECK_THROWS_WITH(wrong.read("b"), Catch::Contains("puts tensor \"b\" in") && Catch::Contains("no such tensor"));
  CHECK_THROWS_WITH(wrong.check_all(), Catch::Contains("\"b\""));
}

TEST_CASE("safetensors: the writer refuses bad input and never leaves a half-written file", "[safetensors]") {
  TempDir dir("writer");
  const std::string path = dir.file("w.safetensors");
  const Tensor t = patterned({4}, DType::F32, 1);
  write_safetensors(path, {{"a", t}});
  const std::string before = read_bytes(path);
  CHECK_THROWS_WITH(write_safetensors(path, {{"a", t}, {"a", t}}), Catch::Contains("two tensors are named \"a\""));
  CHECK_THROWS_WITH(write_safetensors(path, {{"", t}}), Catch::Contains("empty name"));
  CHECK_THROWS_WITH(write_safetensors(path, {{"__metadata__", t}}), Catch::Contains("cannot be named"));
  CHECK_THROWS_WITH(write_safetensors(path, {{"\xff", t}}), Catch::Contains("not valid UTF-8"));
  CHECK_THROWS_WITH(write_safetensors(path, {{"u", Tensor()}}), Catch::Contains("undefined"));
  CHECK_THROWS_WITH(write_safetensors(path, {{"a", t}}, {{"k", "1"}, {"k", "2"}}), Catch::Contains("\"k\" given twice"));
  CHECK_THROWS_WITH(write_safetensors(dir.file("no/such/dir/x.safetensors"), {{"a", t}}),
                    Catch::Contains("no/such/dir/x.safetensors.tmp") && Catch::Contains("cannot create"));
  CHECK(read_bytes(path) == before);
  CHECK_FALSE(fs::exists(path + ".tmp"));
  // A caller's "format" replaces the default one, in the caller's position.
  write_safetensors(path, {{"b", t}}, {{"note", "x"}, {"format", "mlx"}});
  CHECK(SafetensorsFile(path).metadata() == SafetensorsMetadata{{"note", "x"}, {"format", "mlx"}});
}

TEST_CASE("safetensors: damaged files are rejected with a message naming the problem", "[safetensors]") {
  const std::string f32x2 = R"("dtype":"F32","shape":[2],"data_offsets":[0,8])";
  const std::string eight(8, '\0');
  auto one = [](const std::string& entry) { return R"({"a":{)" + entry + "}}"; };
  const std::string valid = with_header(one(R"("dtype":"F32","shape":[2],"data_offsets":[0,8])"), eight);
  struct Case {
    const char* what;
    std::string bytes;
    const char* message;
  };
  const Case cases[] = {
      {"empty file", "", "truncated: the file is 0 bytes"},
      {"truncated size", std::string("\x10\0\0", 3), "truncated: the file is 3 bytes"},
      {"header size past the end", le64(1000) + "{}", "header size 1000 (bytes 0-7) runs past the end of the file"},
      {"header size over 100 MB", le64(200'000'000) + "{}", "exceeds the 100000000-byte limit"},
      {"empty header", le64(0), "the header is empty"},
      {"header not JSON", with_header(R"({"a":{"dtype":)", ""), "header:1:"},
      {"header not an object", with_header("[1,2]", ""), "must be a JSON object starting with '{', found byte 0x5b"},
      {"garbage after the header", with_header("{} x", ""), "header:1:4"},
      {"entry not an object", with_header(R"({"a":3})", ""), "tensor \"a\": expected an object"},
      {"missing dtype", with_header(one(R"("shape":[2],"data_offsets":[0,8])"), eight), "tensor \"a\": missing \"dtype\""},
      {"dtype not a string", with_header(one(R"("dtype":4,"shape":[2],"data_offsets":[0,8])"), eight), "\"dtype\" must be a string"},
      {"unknown dtype", with_header(one(R"("dtype":"F7","shape":[2],"data_offsets":[0,8])"), eight), "unknown dtype \"F7\""},
      {"unsupported dtype", with_header(one(R"("dtype":"U32","shape":[2],"data_offsets":[0,8])"), eight),
       "dtype \"U32\" is not supported by crucible"},
      {"negative shape", with_header(one(R"("dtype":"F32","shape":[-2],"data_offsets":[0,8])"), eight),
       "shape dims must be non-negative integers, found -2"},
      {"float shape", with_header(one(R"("dtype":"F32","shape":[2.0],"data_offsets":[0,8])"), eight),
       "shape dims must be non-negative integers, found 2.0"},
      {"too many dims", with_header(one(R"("dtype":"F32","shape":[1,1,1,1,1,1,1,1,2],"data_offsets":[0,8])"), eight),
       "shape has 9 dims"},
      {"element count overflow", with_header(one(R"("dtype":"F32","shape":[4294967296,4294967296,0],"data_offsets":[0,0])"), ""),
       "more elements than fit in 64 bits"},
      {"missing data_offsets", with_header(one(R"("dtype":"F32","shape":[2])"), eight), "missing \"data_offsets\""},
      {"one offset", with_header(one(R"("dtype":"F32","shape":[2],"data_offsets":[8])"), eight),
       "\"data_offsets\" must be an array [begin, end], got [8]"},
      {"reversed offsets", with_header(one(R"("dtype":"F32","shape":[2],"data_offsets":[8,0])"), eight), "are reversed"},
      {"offsets out of range", with_header(one(R"("dtype":"F32","shape":[2],"data_offsets":[100,108])"), eight),
       "data_offsets [100, 108] run past the end of the data section (8 bytes"},
      {"size mismatch vs shape", with_header(one(R"("dtype":"F32","shape":[3],"data_offsets":[0,8])"), eight),
       "data_offsets [0, 8] span 8 bytes but shape [3] of F32 needs 12 bytes"},
      {"overlapping tensors",
       with_header(R"({"a":{)" + f32x2 + R"(},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", std::string(12, '\0')),
       "tensor \"b\" (data_offsets [4, 12]) overlaps tensor \"a\" (data_offsets [0, 8])"},
      {"hole between tensors",
       with_header(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                   std::string(12, '\0')),
       "bytes [4, 8) of the data section belong to no tensor"},
      {"trailing bytes", with_header(one(f32x2), std::string(12, '\0')), "4 trailing bytes after the last tensor"},
      {"duplicate name", with_header(R"({"a":{)" + f32x2 + R"(},"a":{)" + f32x2 + "}}", eight), "duplicate key \"a\" at byte offset"},
      {"duplicate name through an escape", with_header(R"({"a":{)" + f32x2 + R"(},"\u0061":{)" + f32x2 + "}}", eight),
       "duplicate key \"a\""},
      {"duplicate key in an entry", with_header(one(R"("dtype":"F32","dtype":"F16","shape":[2],"data_offsets":[0,8])"), eight),
       "duplicate key \"dtype\""},
      {"non-UTF-8 name", with_header(R"({")" + std::string("\xff") + R"(":{)" + f32x2 + "}}", eight), "UTF-8"},
      {"metadata not an object", with_header(R"({"__metadata__":[1]})", ""), "\"__metadata__\" must be an object of strings"},
      {"metadata value not a string", with_header(R"({"__metadata__":{"format":1}})", ""),
       "\"__metadata__\" value of \"format\" must be a string"},
      {"data section truncated", valid.substr(0, valid.size() - 3),
       "run past the end of the data section (5 bytes, file bytes 62-67): the file is truncated"},
  };
  TempDir dir("damaged");
  int i = 0;
  for (const Case& c : cases) {
    CAPTURE(c.what);
    const std::string path = dir.file("case" + std::to_string(i++) + ".safetensors");
    write_bytes(path, c.bytes);
    CHECK_THROWS_WITH(SafetensorsFile(path), Catch::Contains(c.message) && Catch::Contains(path));
    CHECK_THROWS_AS(SafetensorsFile::from_bytes(c.bytes, "mem"), Error);
  }
  // The valid base of these cases opens; a directory is named as such.
  CHECK(SafetensorsFile::from_bytes(valid).names() == std::vector<std::string>{"a"});
  CHECK_THROWS_WITH(SafetensorsFile(dir.path.string()), Catch::Contains("is a directory"));
  CHECK_THROWS_WITH(SafetensorsFile(dir.file("absent.safetensors")), Catch::Contains("cannot open"));
}
