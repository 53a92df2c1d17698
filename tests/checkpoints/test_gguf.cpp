// GGUF: writer/reader round trip, the exported qwen2/llama files (exact key types,
// tensor names and types, data, the Llama Q/K permutation), Q8_0 bit-exactness and
// error bound, and rejection of truncated or corrupt files.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>

#include "checkpoints/gguf_export.h"
#include "checkpoints/gguf_reader.h"
#include "checkpoints/gguf_writer.h"
#include "core/numerics.h"
#include "core/rng.h"
#include "tests/catch.h"
#include "tests/worst.h"

using namespace crucible;
using namespace crucible::checkpoints;
namespace fs = std::filesystem;

namespace export_fixtures {  // test_export.cpp
ExportTokenizer r1_byte_tokenizer();
ModelConfig preset(const std::string& name);
std::unique_ptr<ModelWeights> random_weights(const ModelConfig& c, std::uint64_t seed);
fs::path fresh_dir(const std::string& name);
}  // namespace export_fixtures
using namespace export_fixtures;

namespace {

std::vector<std::uint8_t> f32_bytes(const std::vector<float>& v) {
  std::vector<std::uint8_t> b(v.size() * 4);
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

// A small file with every value type and four tensor types.
GgufWriter sample_writer() {
  GgufWriter g;
  g.set("general.architecture", GgufValue::string("llama"));
  g.set("a.u8", GgufValue::u8(200));
  g.set("a.i8", GgufValue::i8(-5));
  g.set("a.u16", GgufValue::u16(60000));
  g.set("a.i16", GgufValue::i16(-30000));
  g.set("a.u32", GgufValue::u32(4000000000u));
  g.set("a.i32", GgufValue::i32(-7));
  g.set("a.f32", GgufValue::f32(1e-5f));
  g.set("a.bool", GgufValue::boolean(true));
  g.set("a.u64", GgufValue::u64(1ull << 40));
  g.set("a.i64", GgufValue::i64(-(1ll << 40)));
  g.set("a.f64", GgufValue::f64(0.1));
  g.set("a.strings", GgufValue::string_array({"Ġa", "", "<｜User｜>"}));
  g.set("a.ints", GgufValue::i32_array({1, 3, 3}));
  g.set("a.empty", GgufValue::string_array({}));
  std::vector<float> x(64);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.37f * static_cast<float>(i));
  g.add_tensor("t.f32", {3}, GgmlType::F32, [] { return f32_bytes({1, 2, 3}); });
  g.add_tensor("t.f16", {2, 2}, GgmlType::F16, [] {
    std::vector<std::uint8_t> b(8);
    for (int i = 0; i < 4; ++i) {
      const std::uint16_t h = f32_to_f16(0.5f * static_cast<float>(i));
      std::memcpy(b.data() + 2 * i, &h, 2);
    }
    return b;
  });
  g.add_tensor("t.q8", {32, 2}, GgmlType::Q8_0, [x] {
    std::vector<std::uint8_t> b(68);
    quantize_q8_0(x.data(), 64, b.data());
    return b;
  });
  g.add_tensor("t.bf16", {1}, GgmlType::BF16, [] { return std::vector<std::uint8_t>{0x80, 0x3F}; });
  return g;
}

void put_u64(std::string& s, std::size_t at, std::uint64_t v) { std::memcpy(&s[at], &v, 8); }
void put_u32(std::string& s, std::size_t at, std::uint32_t v) { std::memcpy(&s[at], &v, 4); }

// A header-only file with one KV of `type` whose value bytes are `value`.
std::string one_kv_file(const std::string& key, std::uint32_t type, const std::string& value) {
  std::string s;
  auto u32 = [&](std::uint32_t v) { s.append(reinterpret_cast<const char*>(&v), 4); };
  auto u64 = [&](std::uint64_t v) { s.append(reinterpret_cast<const char*>(&v), 8); };
  u32(kGgufMagic);
  u32(3);
  u64(0);
  u64(1);
  u64(key.size());
  s += key;
  u32(type);
  s += value;
  return s;
}

std::string le32(std::uint32_t v) { return std::string(reinterpret_cast<const char*>(&v), 4); }
std::string le64(std::uint64_t v) { return std::string(reinterpret_cast<const char*>(&v), 8); }

}  // namespace

TEST_CASE("GGUF writer output reads back: keys with their types, tensors, alignment", "[gguf]") {
  const std::string bytes = sample_writer().encode();
  const GgufFile f = GgufFile::from_bytes(bytes, "sample");
  CHECK(f.version() == 3);
  CHECK(f.alignment() == 32);
  CHECK(f.at("general.alignment") == GgufValue::u32(32));
  CHECK(f.kvs().front().first == "general.alignment");
  CHECK(f.at("a.u8") == GgufValue::u8(200));
  CHECK(f.at("a.i8") == GgufValue::i8(-5));
  CHECK(f.at("a.u16") == GgufValue::u16(60000));
  CHECK(f.at("a.i16") == GgufValue::i16(-30000));
  CHECK(f.at("a.u32") == GgufValue::u32(4000000000u));
  CHECK(f.at("a.i32") == GgufValue::i32(-7));
  CHECK(f.at("a.f32") == GgufValue::f32(1e-5f));
  CHECK(f.at("a.bool") == GgufValue::boolean(true));
  CHECK(f.at("a.u64") == GgufValue::u64(1ull << 40));
  CHECK(f.at("a.i64") == GgufValue::i64(-(1ll << 40)));
  CHECK(f.at("a.f64") == GgufValue::f64(0.1));
  CHECK(f.at("a.strings") == GgufValue::string_array({"Ġa", "", "<｜User｜>"}));
  CHECK(f.at("a.ints") == GgufValue::i32_array({1, 3, 3}));
  CHECK(f.at("a.empty").elem_type() == GgufType::String);
  CHECK(f.at("a.empty").size() == 0);
  CHECK_FALSE(f.at("a.u32") == GgufValue::i32(-7));
  CHECK_THROWS_WITH(f.at("a.u32").as_int(), Catch::Contains("expected a signed integer, got u32"));

  REQUIRE(f.tensors().size() == 4);
  CHECK(f.data_offset() % 32 == 0);
  std::uint64_t off = 0;
  for (const GgufTensorInfo& t : f.tensors()) {
    CHECK(t.offset == off);
    CHECK(t.offset % 32 == 0);
    off += gguf_pad(t.nbytes, 32);
  }
  CHECK(bytes.size() == f.data_offset() + off);  // padded after the last tensor too
  CHECK(f.read_f32("t.f32") == std::vector<float>{1, 2, 3});
  CHECK(f.read_f32("t.f16") == std::vector<float>{0, 0.5f, 1, 1.5f});
  CHECK(f.read_f32("t.bf16") == std::vector<float>{1});
  CHECK(f.tensor("t.q8").ne == std::vector<std::int64_t>{32, 2});
  CHECK(f.tensor("t.q8").nbytes == 68);
  // Written to disk (atomically) it reads the same through the mapping.
  const fs::path p = fresh_dir("sample") += ".gguf";
  sample_writer().write(p.string());
  CHECK_FALSE(fs::exists(p.string() + ".tmp"));
  const GgufFile g = GgufFile::open(p.string());
  CHECK(g.kvs() == f.kvs());
  CHECK(g.read_f32("t.q8") == f.read_f32("t.q8"));
  fs::remove(p);
}

TEST_CASE("GGUF writer refuses what llama.cpp would refuse", "[gguf]") {
  GgufWriter g;
  g.set("x", GgufValue::u32(1));
  CHECK_THROWS_WITH(g.set("x", GgufValue::u32(2)), Catch::Contains("set twice"));
  CHECK_THROWS_WITH(g.set("general.alignment", GgufValue::u32(64)), Catch::Contains("constructor"));
  CHECK_THROWS_WITH(g.add_tensor(std::string(64, 'n'), {1}, GgmlType::F32, {}), Catch::Contains("1..63"));
  CHECK_THROWS_WITH(g.add_tensor("q", {48, 2}, GgmlType::Q8_0, {}), Catch::Contains("multiple of 32"));
  CHECK_THROWS_WITH(GgufValue::array(GgufType::Array, {}), Catch::Contains("nested"));
  g.add_tensor("short", {4}, GgmlType::F32, [] { return std::vector<std::uint8_t>(12); });
  CHECK_THROWS_WITH(g.encode(), Catch::Contains("produced 12 bytes"));
}

TEST_CASE("Q8_0: bit-exact with ggml's reference, ties away from zero, error within d/2", "[gguf]") {
  // amax 127 -> d = 1, id = 1: q = roundf(x), so halves round away from zero.
  std::vector<float> x(32, 0.0f);
  x[0] = 127.0f;
  x[1] = 2.5f;
  x[2] = -2.5f;
  x[3] = 0.49f;
  x[4] = -126.5f;
  std::vector<std::uint8_t> b(34);
  quantize_q8_0(x.data(), 32, b.data());
  CHECK((b[0] | (b[1] << 8)) == 0x3C00);  // fp16(1.0)
  CHECK(static_cast<std::int8_t>(b[2]) == 127);
  CHECK(static_cast<std::int8_t>(b[3]) == 3);
  CHECK(static_cast<std::int8_t>(b[4]) == -3);
  CHECK(static_cast<std::int8_t>(b[5]) == 0);
  CHECK(static_cast<std::int8_t>(b[6]) == -127);
  // All zeros: d = 0 and q = 0.
  std::vector<float> z(32, 0.0f);
  quantize_q8_0(z.data(), 32, b.data());
  CHECK(std::all_of(b.begin(), b.end(), [](std::uint8_t v) { return v == 0; }));
  // Random blocks of very different scales: |x - deq| <= d/2 + 127 |fp16(d) - d|.
  Rng rng(9, 0);
  const std::int64_t n = 32 * 200;
  std::vector<float> v(static_cast<std::size_t>(n)), back(v.size());
  for (std::int64_t i = 0; i < n; ++i) v[i] = rng.normal() * std::ldexp(1.0f, static_cast<int>(i / 32 % 20) - 10);
  std::vector<std::uint8_t> q(static_cast<std::size_t>(n / 32 * 34));
  quantize_q8_0(v.data(), n, q.data());
  dequantize_q8_0(q.data(), n, back.data());
  double worst = 0;
  for (std::int64_t blk = 0; blk < n / 32; ++blk) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(v[blk * 32 + j]));
    const float d = amax / 127.0f, d16 = f16_to_f32(f32_to_f16(d));
    const double bound = 0.5 * d + 127.0 * std::fabs(d16 - d) + 1e-12;
    for (int j = 0; j < 32; ++j) worst = testing::worst_of(worst, std::fabs(v[blk * 32 + j] - back[blk * 32 + j]) / bound);
  }
  CHECK(worst <= 1.0);
  std::vector<float> bad(32, 1.0f);
  bad[7] = std::nanf("");
  CHECK_THROWS_WITH(quantize_q8_0(bad.data(), 32, q.data()), Catch::Contains("finite"));
}

TEST_CASE("Llama q/k permutation: hand case, inverse, and RoPE equivalence", "[gguf]") {
  // One head, hd = 4, one column: HF rows (pairs j, j+2) -> GGUF rows (pairs 2j, 2j+1).
  const std::vector<float> src = {0, 1, 2, 3, 10, 11, 12, 13};
  std::vector<float> dst(8), inv(8);
  llama_permute_qk(src.data(), dst.data(), 8, 1, 2);
  CHECK(dst == std::vector<float>{0, 2, 1, 3, 10, 12, 11, 13});
  // hd = 6, two columns: row 2j+t <- row t*3+j.
  std::vector<float> w(12);
  for (int i = 0; i < 12; ++i) w[i] = static_cast<float>(i);
  std::vector<float> p(12);
  llama_permute_qk(w.data(), p.data(), 6, 2, 1);
  CHECK(p == std::vector<float>{0, 1, 6, 7, 2, 3, 8, 9, 4, 5, 10, 11});
  // permute then inverse is the identity on random matrices (GQA-like head counts).
  Rng rng(4, 0);
  for (std::int64_t heads : {1, 2, 4}) {
    const std::int64_t rows = heads * 24, cols = 5;
    std::vector<float> a(static_cast<std::size_t>(rows * cols)), b(a.size()), c(a.size());
    for (float& x : a) x = rng.normal();
    llama_permute_qk(a.data(), b.data(), rows, cols, heads);
    llama_unpermute_qk(b.data(), c.data(), rows, cols, heads);
    CHECK(c == a);
    CHECK(b != a);
  }
  // The reason for it: HF's rotate-half RoPE on q, k equals the interleaved (NORM)
  // RoPE on the permuted q, k, so attention scores are unchanged.
  const int hd = 8, half = hd / 2;
  std::vector<float> q(hd), k(hd), qp(hd), kp(hd);
  for (int i = 0; i < hd; ++i) q[i] = rng.normal(), k[i] = rng.normal();
  llama_permute_qk(q.data(), qp.data(), hd, 1, 1);
  llama_permute_qk(k.data(), kp.data(), hd, 1, 1);
  auto rope_half = [&](std::vector<float> x, int pos) {
    for (int j = 0; j < half; ++j) {
      const double a = pos * std::pow(10000.0, -2.0 * j / hd);
      const double x0 = x[j], x1 = x[j + half];
      x[j] = static_cast<float>(x0 * std::cos(a) - x1 * std::sin(a));
      x[j + half] = static_cast<float>(x1 * std::cos(a) + x0 * std::sin(a));
    }
    return x;
  };
  auto rope_interleaved = [&](std::vector<float> x, int pos) {
    for (int j = 0; j < half; ++j) {
      const double a = pos * std::pow(10000.0, -2.0 * j / hd);
      const double x0 = x[2 * j], x1 = x[2 * j + 1];
      x[2 * j] = static_cast<float>(x0 * std::cos(a) - x1 * std::sin(a));
      x[2 * j + 1] = static_cast<float>(x1 * std::cos(a) + x0 * std::sin(a));
    }
    return x;
  };
  auto dot = [](const std::vector<float>& a, const std::vector<float>& b) {
    double s = 0;
    for (std::size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
    return s;
  };
  const double hf = dot(rope_half(q, 7), rope_half(k, 3));
  const double gg = dot(rope_interleaved(qp, 7), rope_interleaved(kp, 3));
  CHECK(std::fabs(hf - gg) < 1e-5);
  CHECK(std::fabs(dot(rope_half(q, 7), rope_half(k, 3)) - dot(rope_interleaved(q, 7), rope_interleaved(k, 3))) > 1e-3);
}

TEST_CASE("exported qwen2/llama GGUF: key types, tensor names, types and data", "[gguf][export]") {
  for (const char* name : {"tiny-qwen2", "tiny-llama"}) {
    const ModelConfig c = preset(name);
    auto w = random_weights(c, 21);
    const bool llama = c.arch == Arch::Llama;
    const std::string arch = llama ? "llama" : "qwen2";
    for (GgufExportDType dt : {GgufExportDType::F32, GgufExportDType::F16, GgufExportDType::BF16, GgufExportDType::Q8_0}) {
      INFO(name << " " << gguf_export_dtype_name(dt));
      const fs::path p = fresh_dir(std::string(name) + gguf_export_dtype_name(dt)) += ".gguf";
      GgufExportOptions o;
      o.dtype = dt;
      export_gguf(*w, r1_byte_tokenizer(), o, p.string());
      const GgufFile f = GgufFile::open(p.string());
      // Exact types as llama.cpp's loader reads them.
      CHECK(f.at("general.architecture") == GgufValue::string(arch));
      CHECK(f.at("general.alignment") == GgufValue::u32(32));
      CHECK(f.at("general.quantization_version") == GgufValue::u32(2));
      const std::uint32_t ft = dt == GgufExportDType::F32 ? 0 : dt == GgufExportDType::F16 ? 1 : dt == GgufExportDType::BF16 ? 32 : 7;
      CHECK(f.at("general.file_type") == GgufValue::u32(ft));
      CHECK(f.at(arch + ".block_count") == GgufValue::u32(3));
      CHECK(f.at(arch + ".context_length") == GgufValue::u32(512));
      CHECK(f.at(arch + ".embedding_length") == GgufValue::u32(96));
      CHECK(f.at(arch + ".feed_forward_length") == GgufValue::u32(256));
      CHECK(f.at(arch + ".attention.head_count") == GgufValue::u32(4));
      CHECK(f.at(arch + ".attention.head_count_kv") == GgufValue::u32(2));
      CHECK(f.at(arch + ".rope.dimension_count") == GgufValue::u32(24));
      CHECK(f.at(arch + ".rope.freq_base") == GgufValue::f32(static_cast<float>(c.rope.theta)));
      CHECK(f.at(arch + ".attention.layer_norm_rms_epsilon") == GgufValue::f32(static_cast<float>(c.rms_norm_eps)));
      CHECK(f.find(arch + ".rope.scaling.type") == nullptr);
      CHECK(f.at("tokenizer.ggml.model") == GgufValue::string("gpt2"));
      CHECK(f.at("tokenizer.ggml.pre") == GgufValue::string(kByteLevelGgufPre));
      const GgufValue& tokens = f.at("tokenizer.ggml.tokens");
      REQUIRE(tokens.elem_type() == GgufType::String);
      REQUIRE(tokens.size() == 272);
      CHECK(tokens.items()[32].as_string() == "Ġ");
      CHECK(tokens.items()[257].as_string() == "<｜end▁of▁sentence｜>");
      const GgufValue& types = f.at("tokenizer.ggml.token_type");
      REQUIRE(types.elem_type() == GgufType::I32);
      CHECK(types.items()[65] == GgufValue::i32(1));
      CHECK(types.items()[260] == GgufValue::i32(3));
      CHECK(f.at("tokenizer.ggml.merges").elem_type() == GgufType::String);
      CHECK(f.at("tokenizer.ggml.merges").size() == 0);
      CHECK(f.at("tokenizer.ggml.bos_token_id") == GgufValue::u32(256));
      CHECK(f.at("tokenizer.ggml.eos_token_id") == GgufValue::u32(257));
      CHECK(f.at("tokenizer.ggml.padding_token_id") == GgufValue::u32(262));
      CHECK(f.at("tokenizer.ggml.add_bos_token") == GgufValue::boolean(false));
      CHECK(f.at("tokenizer.chat_template").as_string().find("<｜Assistant｜>") != std::string::npos);

      // Tensor names: exactly the llama.cpp set, with ggml dims and types.
      std::map<std::string, const GgufTensorInfo*> seen;
      for (const GgufTensorInfo& t : f.tensors()) seen[t.name] = &t;
      std::size_t expected = parameter_table(c).size() + (llama ? 1 : 0);
      CHECK(f.tensors().size() == expected);
      CHECK((seen.count("output.weight") == 1) == llama);  // qwen2 tiny is tied
      CHECK((seen.count("rope_freqs.weight") == 1) == llama);
      CHECK((seen.count("blk.0.attn_q.bias") == 1) == !llama);
      for (const char* n : {"token_embd.weight", "output_norm.weight", "blk.2.attn_norm.weight", "blk.2.ffn_norm.weight",
                            "blk.1.attn_q.weight", "blk.1.attn_k.weight", "blk.1.attn_v.weight", "blk.1.attn_output.weight",
                            "blk.0.ffn_gate.weight", "blk.0.ffn_up.weight", "blk.0.ffn_down.weight"})
        CHECK(seen.count(n) == 1);
      CHECK(seen.at("token_embd.weight")->ne == std::vector<std::int64_t>{96, 272});
      CHECK(seen.at("blk.0.attn_k.weight")->ne == std::vector<std::int64_t>{96, 48});
      CHECK(seen.at("blk.0.ffn_down.weight")->ne == std::vector<std::int64_t>{256, 96});
      const GgmlType want2d = dt == GgufExportDType::F32 ? GgmlType::F32 : dt == GgufExportDType::F16 ? GgmlType::F16
                              : dt == GgufExportDType::BF16 ? GgmlType::BF16 : GgmlType::Q8_0;
      for (const GgufTensorInfo& t : f.tensors()) CHECK(t.type == (t.ne.size() == 1 ? GgmlType::F32 : want2d));

      // Data: dims reversed with bytes untouched; llama q/k rows permuted.
      for (const ParamSpec& ps : parameter_table(c)) {
        const auto ref = w->param(ps.name).span<float>();
        std::vector<float> want(ref.begin(), ref.end());
        const bool permuted = llama && (ps.name.find("q_proj") != std::string::npos || ps.name.find("k_proj") != std::string::npos);
        if (permuted) {
          const std::int64_t heads = ps.name.find("q_proj") != std::string::npos ? c.num_attention_heads : c.kv_heads();
          llama_permute_qk(ref.data(), want.data(), ps.shape[0], ps.shape.size() > 1 ? ps.shape[1] : 1, heads);
        }
        const std::vector<float> got = f.read_f32(gguf_tensor_name(ps.name));
        REQUIRE(got.size() == want.size());
        double worst = 0, amax = 0;
        for (std::size_t i = 0; i < got.size(); ++i) {
          worst = testing::worst_of(worst, static_cast<double>(std::fabs(got[i] - want[i])));
          amax = std::max(amax, static_cast<double>(std::fabs(want[i])));
        }
        INFO(ps.name);
        if (dt == GgufExportDType::F32 || ps.shape.size() == 1) CHECK(worst == 0);
        else if (dt == GgufExportDType::Q8_0) CHECK(worst <= amax / 127 * 0.57);
        else CHECK(worst <= amax * (dt == GgufExportDType::F16 ? 1.0 / 2048 : 1.0 / 256));
      }
      if (llama) {
        const std::vector<float> rf = f.read_f32("rope_freqs.weight");
        CHECK(rf == llama3_rope_freq_factors(c));
        REQUIRE(rf.size() == 12);
        CHECK(rf.front() == 1.0f);  // high frequencies untouched
        CHECK(rf.back() == 8.0f);   // low frequencies divided by the factor
      }
      fs::remove(p);
    }
  }
}

TEST_CASE("GGUF export refuses deepseek_v3 and tokenizers larger than the model", "[gguf][export]") {
  auto ds = random_weights(preset("tiny-deepseek-v3"), 1);
  const std::string p = (fresh_dir("ds") += ".gguf").string();
  CHECK_THROWS_WITH(export_gguf(*ds, r1_byte_tokenizer(), {}, p), Catch::Contains("qwen2 and llama"));
  ModelConfig small = preset("tiny-qwen2");
  small.vocab_size = 260;
  auto w = random_weights(small, 1);
  CHECK_THROWS_WITH(export_gguf(*w, r1_byte_tokenizer(), {}, p), Catch::Contains("vocab_size"));
  CHECK_FALSE(fs::exists(p));
}

TEST_CASE("GGUF reader rejects truncated and corrupt files with clear errors", "[gguf]") {
  const std::string good = sample_writer().encode();
  REQUIRE_NOTHROW(GgufFile::from_bytes(good));
  // Every strict prefix that cuts into the header or the tensor data is rejected
  // (the trailing padding of the last tensor is not needed).
  const GgufFile full = GgufFile::from_bytes(good);
  const GgufTensorInfo& last = full.tensors().back();
  const std::size_t needed = full.data_offset() + last.offset + last.nbytes;
  for (std::size_t n = 0; n < needed; ++n) {
    INFO("prefix " << n);
    CHECK_THROWS_AS(GgufFile::from_bytes(good.substr(0, n)), Error);
  }
  CHECK_THROWS_WITH(GgufFile::from_bytes(good.substr(0, 20), "cut.gguf"), Catch::Contains("cut.gguf") &&
                    Catch::Contains("truncated"));
  CHECK_THROWS_WITH(GgufFile::from_bytes(good.substr(0, needed - 1)), Catch::Contains("truncated: tensor 't.bf16'"));

  std::string s = good;
  s[0] = 'X';
  CHECK_THROWS_WITH(GgufFile::from_bytes(s), Catch::Contains("bad magic"));
  s = good;
  put_u32(s, 4, 1);
  CHECK_THROWS_WITH(GgufFile::from_bytes(s), Catch::Contains("v1 is not supported"));
  put_u32(s, 4, 4);
  CHECK_THROWS_WITH(GgufFile::from_bytes(s), Catch::Contains("unsupported GGUF version 4"));
  s = good;
  put_u64(s, 8, 1ull << 60);
  CHECK_THROWS_WITH(GgufFile::from_bytes(s), Catch::Contains("tensor count"));
  s = good;
  put_u64(s, 16, 1ull << 60);
  CHECK_THROWS_WITH(GgufFile::from_bytes(s), Catch::Contains("metadata count"));

  CHECK_THROWS_WITH(GgufFile::from_bytes(one_kv_file("", 4, le32(1))), Catch::Contains("empty"));
  CHECK_THROWS_WITH(GgufFile::from_bytes(one_kv_file("k", 13, le32(1))), Catch::Contains("invalid value type 13"));
  CHECK_THROWS_WITH(GgufFile::from_bytes(one_kv_file("k", 7, std::string(1, '\2'))), Catch::Contains("0 or 1"));
  CHECK_THROWS_WITH(GgufFile::from_bytes(one_kv_file("k", 9, le32(9) + le64(0))), Catch::Contains("nested"));
  CHECK_THROWS_WITH(GgufFile::from_bytes(one_kv_file("k", 9, le32(4) + le64(1ull << 40))), Catch::Contains("cannot fit"));
  CHECK_THROWS_WITH(GgufFile::from_bytes(one_kv_file("k", 8, le64(1000) + "abc")), Catch::Contains("claims 1000 bytes"));
  CHECK_THROWS_WITH(GgufFile::from_bytes(one_kv_file("general.alignment", 5, le32(32))),
                    Catch::Contains("general.alignment must be u32, got i32"));
  CHECK_THROWS_WITH(GgufFile::from_bytes(one_kv_file("general.alignment", 4, le32(24))),
                    Catch::Contains("not a power of two"));
  CHECK_NOTHROW(GgufFile::from_bytes(one_kv_file("general.alignment", 4, le32(64))));
  {
    std::string d = one_kv_file("k", 4, le32(1));
    put_u64(d, 16, 2);
    d += le64(1) + "k" + le32(4) + le32(2);
    CHECK_THROWS_WITH(GgufFile::from_bytes(d), Catch::Contains("duplicate key 'k'"));
  }

  // Tensor infos: locate the first one ("t.f32") after the KVs and corrupt its fields.
  const std::size_t info = good.find(std::string("\x05\0\0\0\0\0\0\0t.f32", 13));
  REQUIRE(info != std::string::npos);
  const std::size_t n_dims_at = info + 13, ne0_at = n_dims_at + 4, type_at = ne0_at + 8, off_at = type_at + 4;
  s = good;
  put_u32(s, n_dims_at, 5);
  CHECK_THROWS_WITH(GgufFile::from_bytes(s), Catch::Contains("has 5 dims"));
  s = good;
  put_u64(s, ne0_at, static_cast<std::uint64_t>(-3));
  CHECK_THROWS_WITH(GgufFile::from_bytes(s), Catch::Contains("negative"));
  s = good;
  put_u32(s, type_at, 4);
  CHECK_THROWS_WITH(GgufFile::from_bytes(s), Catch::Contains("unknown ggml type 4"));
  s = good;
  put_u32(s, type_at, 8);  // q8_0 with ne[0] = 3
  CHECK_THROWS_WITH(GgufFile::from_bytes(s), Catch::Contains("not a multiple of the block size 32"));
  s = good;
  put_u64(s, off_at, 32);
  CHECK_THROWS_WITH(GgufFile::from_bytes(s), Catch::Contains("has offset 32, expected 0"));
  s = good;
  s.replace(info + 8, 5, "t.f16");  // two tensors named t.f16
  CHECK_THROWS_WITH(GgufFile::from_bytes(s), Catch::Contains("duplicate tensor name 't.f16'"));
  CHECK_THROWS_WITH(GgufFile::open("/nonexistent/x.gguf"), Catch::Contains("cannot open GGUF file"));
}
