// HF directory export: config/tokenizer files parse with the right keys; safetensors
// read back bit-exact (F32), RNE (BF16), dequant-exact (FP8); sharding; atomicity;
// copied HF tokenizers; the Ollama Modelfile. Python parity lives in test_export_python.cpp.
#include <unistd.h>

#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>

#include "checkpoints/gguf_vocab.h"
#include "checkpoints/hf_export.h"
#include "checkpoints/hf_import.h"
#include "checkpoints/ollama.h"
#include "checkpoints/safetensors.h"
#include "core/fp8_tensor.h"
#include "core/numerics.h"
#include "core/rng.h"
#include "data/byte_tokenizer.h"
#include "data/chat_template.h"
#include "launch/model_config_fields.h"
#include "tests/catch.h"

using namespace crucible;
using namespace crucible::checkpoints;
namespace fs = std::filesystem;

// Shared with test_gguf.cpp and test_export_python.cpp (one test binary).
namespace export_fixtures {

std::string r1_chat_template() {
  data::ChatTemplateOptions o;
  o.think_prefill = true;
  return std::string(data::chat_template_source(data::ChatFormat::R1, o));
}

// The demo's ByteTokenizer through the adapter the export command uses.
ExportTokenizer r1_byte_tokenizer() { return export_tokenizer_for(data::ByteTokenizer{}, "", r1_chat_template()); }

ModelConfig preset(const std::string& name) {
  return launch::load_model_config(std::string(CRUCIBLE_SOURCE_DIR) + "/configs/models/" + name + ".toml");
}

// Random weights that exercise everything: norms around 1, biases non-zero.
std::unique_ptr<ModelWeights> random_weights(const ModelConfig& c, std::uint64_t seed) {
  auto w = std::make_unique<ModelWeights>(c, Device::cpu(), false);
  w->init_random(seed);
  const auto& entries = w->layout().entries();
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const std::string& n = entries[i].name;
    const bool norm = n.find("norm.weight") != std::string::npos, bias = n.find(".bias") != std::string::npos;
    if (!norm && !bias) continue;
    Rng rng(seed + 1, i);
    for (float& x : w->param(n).span<float>()) x = norm ? 1.0f + 0.2f * rng.normal() : 0.05f * rng.normal();
  }
  return w;
}

fs::path fresh_dir(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("crucible_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  return d;
}

}  // namespace export_fixtures

using namespace export_fixtures;

namespace {

std::string read_text(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

}  // namespace

TEST_CASE("HF export f32: config, generation, tokenizer files and exact weights", "[export]") {
  const ModelConfig c = preset("tiny-qwen2");
  auto w = random_weights(c, 7);
  const fs::path out = fresh_dir("hf_f32");
  HfExportOptions o;
  o.dtype = HfExportDType::F32;
  export_hf(*w, r1_byte_tokenizer(), o, out.string());

  const json::Value cfg = json::parse_file((out / "config.json").string());
  CHECK(cfg.at("architectures").as_array()[0].as_string() == "Qwen2ForCausalLM");
  CHECK(cfg.at("model_type").as_string() == "qwen2");
  CHECK(cfg.at("torch_dtype").as_string() == "float32");
  CHECK(cfg.at("tie_word_embeddings").as_bool());
  CHECK(cfg.at("bos_token_id").as_int64() == 256);
  CHECK(cfg.at("eos_token_id").as_int64() == 257);
  CHECK(cfg.at("pad_token_id").as_int64() == 262);
  CHECK(cfg.at("rope_theta").as_double() == 10000.0);
  CHECK(cfg.find("quantization_config") == nullptr);

  const json::Value gen = json::parse_file((out / "generation_config.json").string());
  CHECK(gen.at("bos_token_id").as_int64() == 256);
  CHECK(gen.at("eos_token_id").as_int64() == 257);
  CHECK(gen.at("do_sample").as_bool());
  CHECK(gen.at("temperature").as_double() == 0.6);
  CHECK(gen.at("top_p").as_double() == 0.95);

  const json::Value tj = json::parse_file((out / "tokenizer.json").string());
  const json::Value& vocab = tj.at("model").at("vocab");
  REQUIRE(vocab.size() == 256);
  for (int b = 0; b < 256; ++b) CHECK(vocab.as_object()[b].second.as_int64() == b);  // byte order
  CHECK(vocab.at("Ġ").as_int64() == ' ');
  CHECK(vocab.at("Ċ").as_int64() == '\n');
  CHECK(vocab.at("A").as_int64() == 'A');
  CHECK(tj.at("model").at("merges").size() == 0);
  CHECK(tj.at("pre_tokenizer").at("type").as_string() == "ByteLevel");
  CHECK_FALSE(tj.at("pre_tokenizer").at("use_regex").as_bool());
  CHECK(tj.at("decoder").at("type").as_string() == "ByteLevel");
  REQUIRE(tj.at("added_tokens").size() == 16);
  CHECK(tj.at("added_tokens").as_array()[1].at("content").as_string() == "<｜end▁of▁sentence｜>");
  CHECK(tj.at("added_tokens").as_array()[1].at("special").as_bool());

  const json::Value tc = json::parse_file((out / "tokenizer_config.json").string());
  CHECK(tc.at("bos_token").as_string() == "<｜begin▁of▁sentence｜>");
  CHECK(tc.at("eos_token").as_string() == "<｜end▁of▁sentence｜>");
  CHECK(tc.at("pad_token").as_string() == "<｜pad｜>");
  CHECK(tc.at("chat_template").as_string() == r1_chat_template());
  CHECK(tc.at("model_max_length").as_int64() == c.max_position_embeddings);
  CHECK(tc.at("tokenizer_class").as_string() == "PreTrainedTokenizerFast");
  CHECK(tc.at("added_tokens_decoder").at("260").at("content").as_string() == "<think>");
  const json::Value sm = json::parse_file((out / "special_tokens_map.json").string());
  CHECK(sm.at("eos_token").as_string() == "<｜end▁of▁sentence｜>");

  REQUIRE(fs::exists(out / "model.safetensors"));
  CHECK_FALSE(fs::exists(out / "model.safetensors.index.json"));
  SafetensorsFile st((out / "model.safetensors").string());
  CHECK_FALSE(st.contains("lm_head.weight"));  // tied
  REQUIRE(st.size() == parameter_table(c).size());
  for (const ParamSpec& p : parameter_table(c)) {
    INFO(p.name);
    REQUIRE(st.info(p.name).dtype == StDType::F32);
    const auto bytes = st.bytes(p.name);
    const Tensor ref = w->param(p.name);
    REQUIRE(bytes.size() == ref.nbytes());
    CHECK(std::memcmp(bytes.data(), ref.raw(), bytes.size()) == 0);
  }
  // And the importer reads the directory back to the same model.
  auto back = import_hf_model(out.string());
  CHECK(back->config().arch == Arch::Qwen2);
  CHECK(std::memcmp(back->params().flat().raw(), w->params().flat().raw(), w->params().bytes()) == 0);
  fs::remove_all(out);
}

TEST_CASE("HF export bf16 rounds to nearest even; llama unties the head", "[export]") {
  const ModelConfig c = preset("tiny-llama");
  auto w = random_weights(c, 11);
  w->param("model.norm.weight").data<float>()[0] = 1.00390625f;  // halfway between two BF16 values: even wins
  const fs::path out = fresh_dir("hf_bf16");
  export_hf(*w, r1_byte_tokenizer(), HfExportOptions{}, out.string());
  const json::Value cfg = json::parse_file((out / "config.json").string());
  CHECK(cfg.at("architectures").as_array()[0].as_string() == "LlamaForCausalLM");
  CHECK(cfg.at("torch_dtype").as_string() == "bfloat16");
  CHECK(cfg.at("rope_scaling").at("rope_type").as_string() == "llama3");
  SafetensorsFile st((out / "model.safetensors").string());
  REQUIRE(st.contains("lm_head.weight"));
  for (const ParamSpec& p : parameter_table(c)) {
    INFO(p.name);
    REQUIRE(st.info(p.name).dtype == StDType::BF16);
    const auto bytes = st.bytes(p.name);
    const auto ref = w->param(p.name).span<float>();
    bool same = true;
    for (std::size_t i = 0; i < ref.size(); ++i) {
      std::uint16_t h;
      std::memcpy(&h, bytes.data() + 2 * i, 2);
      same = same && h == f32_to_bf16(ref[i]);
    }
    CHECK(same);
  }
  std::uint16_t h;
  std::memcpy(&h, st.bytes("model.norm.weight").data(), 2);
  CHECK(h == 0x3F80);  // 1.00390625 -> 1.0 (ties to even)
  fs::remove_all(out);
}

TEST_CASE("HF export fp8 (deepseek_v3): E4M3 + 128x128 weight_scale_inv, dequant-exact", "[export][fp8]") {
  const ModelConfig c = preset("tiny-deepseek-v3");
  auto w = random_weights(c, 3);
  const fs::path out = fresh_dir("hf_fp8");
  HfExportOptions o;
  o.dtype = HfExportDType::FP8;
  o.max_shard_bytes = 400'000;  // several shards + index
  export_hf(*w, r1_byte_tokenizer(), o, out.string());
  const json::Value cfg = json::parse_file((out / "config.json").string());
  CHECK(cfg.at("architectures").as_array()[0].as_string() == "DeepseekV3ForCausalLM");
  const json::Value& q = cfg.at("quantization_config");
  CHECK(q.at("quant_method").as_string() == "fp8");
  CHECK(q.at("fmt").as_string() == "e4m3");
  CHECK(q.at("activation_scheme").as_string() == "dynamic");
  CHECK(q.at("weight_block_size").as_array()[0].as_int64() == 128);
  REQUIRE(fs::exists(out / "model.safetensors.index.json"));
  CHECK_FALSE(fs::exists(out / "model.safetensors"));
  const SafetensorsIndex idx = SafetensorsIndex::open(out.string());
  idx.check_all();
  CHECK(idx.shard_paths().size() > 1);
  int fp8 = 0;
  for (const ParamSpec& p : parameter_table(c)) {
    INFO(p.name);
    const Tensor ref = w->param(p.name);
    if (p.fp8) {
      ++fp8;
      REQUIRE(idx.info(p.name).dtype == StDType::F8_E4M3);
      REQUIRE(idx.info(p.name + "_scale_inv").dtype == StDType::F32);
      const Fp8Tensor want = quantize_fp8(ref, ScaleLayout::Block128x128);
      const Tensor got = dequantize_fp8(make_fp8_tensor(idx.read(p.name), idx.read(p.name + "_scale_inv"),
                                                        ScaleLayout::Block128x128));
      const Tensor exp = dequantize_fp8(want);
      CHECK(std::memcmp(got.raw(), exp.raw(), exp.nbytes()) == 0);
    } else {
      REQUIRE(idx.info(p.name).dtype == StDType::BF16);
      CHECK_FALSE(idx.contains(p.name + "_scale_inv"));
    }
  }
  CHECK(fp8 > 0);
  // The importer dequantizes to the same FP32 masters.
  auto back = import_hf_model(out.string());
  for (const ParamSpec& p : parameter_table(c))
    if (p.fp8) {
      const Tensor exp = dequantize_fp8(quantize_fp8(w->param(p.name), ScaleLayout::Block128x128));
      CHECK(std::memcmp(back->param(p.name).raw(), exp.raw(), exp.nbytes()) == 0);
    }
  fs::remove_all(out);
}

TEST_CASE("HF export refuses fp8 for dense students and bad tokenizers", "[export]") {
  const ModelConfig c = preset("tiny-qwen2");
  auto w = random_weights(c, 1);
  const fs::path out = fresh_dir("hf_bad");
  HfExportOptions o;
  o.dtype = HfExportDType::FP8;
  CHECK_THROWS_WITH(export_hf(*w, r1_byte_tokenizer(), o, out.string()), Catch::Contains("deepseek_v3"));
  ExportTokenizer t = r1_byte_tokenizer();
  t.specials.push_back({100, "<bad>", true});
  CHECK_THROWS_WITH(export_hf(*w, t, HfExportOptions{}, out.string()), Catch::Contains("byte tokens"));
  t = r1_byte_tokenizer();
  t.specials.push_back({300, "<far>", true});
  CHECK_THROWS_WITH(export_hf(*w, t, HfExportOptions{}, out.string()), Catch::Contains("vocab_size"));
  t = r1_byte_tokenizer();
  t.eos_id = 65;
  CHECK_THROWS_WITH(export_hf(*w, t, HfExportOptions{}, out.string()), Catch::Contains("byte token"));
  CHECK_FALSE(fs::exists(out));
}

TEST_CASE("export is atomic: a failed or refused export leaves out_dir untouched", "[export]") {
  const ModelConfig c = preset("tiny-qwen2");
  auto w = random_weights(c, 5);
  const fs::path out = fresh_dir("hf_atomic");
  fs::create_directories(out);
  std::ofstream(out / "marker.txt") << "old";
  // Refused: exists and no overwrite.
  CHECK_THROWS_WITH(export_hf(*w, r1_byte_tokenizer(), HfExportOptions{}, out.string()),
                    Catch::Contains("already exists"));
  CHECK(read_text(out / "marker.txt") == "old");
  // Failing half-way: the temporary directory goes, out_dir stays as it was.
  CHECK_THROWS_WITH(write_directory_atomically(out.string(), true,
                                               [](const std::string& tmp) {
                                                 std::ofstream(tmp + "/config.json") << "{}";
                                                 throw Error("disk full (simulated)");
                                               }),
                    Catch::Contains("simulated"));
  CHECK(read_text(out / "marker.txt") == "old");
  CHECK_FALSE(fs::exists(out / "config.json"));
  for (const auto& e : fs::directory_iterator(out.parent_path()))
    CHECK(e.path().filename().string().find("." + out.filename().string() + ".tmp") == std::string::npos);
  // Succeeding with overwrite: replaced as a whole.
  HfExportOptions o;
  o.overwrite = true;
  export_hf(*w, r1_byte_tokenizer(), o, out.string());
  CHECK_FALSE(fs::exists(out / "marker.txt"));
  CHECK(fs::exists(out / "config.json"));
  CHECK(fs::exists(out / "model.safetensors"));
  fs::remove_all(out);
}

TEST_CASE("HF tokenizer files are copied; GGUF vocab, merges and pre come from tokenizer.json", "[export][gguf]") {
  const fs::path src = fresh_dir("hf_tok_src");
  fs::create_directories(src);
  // A small byte-level BPE in the Qwen2 layout, merges in the pair form of tokenizers >= 0.20.
  json::Value tj = byte_level_tokenizer_json(r1_byte_tokenizer());
  json::Value split = json::parse(
      R"({"type":"Split","pattern":{"Regex":"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},"behavior":"Isolated","invert":false})");
  json::Value seq = json::Value::object();
  seq.set("type", "Sequence");
  seq.set("pretokenizers", json::Value(json::Array{split, tj.at("pre_tokenizer")}));
  tj.set("pre_tokenizer", seq);
  tj.find("model")->find("vocab")->set("Ġt", 272);  // beyond the model's 272 rows: must be refused
  tj.find("model")->set("merges", json::parse(R"([["Ġ", "t"]])"));
  std::ofstream(src / "tokenizer.json") << json::dump(tj);
  std::ofstream(src / "tokenizer_config.json")
      << R"({"bos_token": "<｜begin▁of▁sentence｜>", "eos_token": {"content": "<｜end▁of▁sentence｜>"}, "chat_template": "old", "tokenizer_class": "LlamaTokenizerFast"})";
  ExportTokenizer t;
  t.tokenizer_json_path = (src / "tokenizer.json").string();
  t.tokenizer_config_path = (src / "tokenizer_config.json").string();
  ModelConfig c = preset("tiny-qwen2");
  CHECK_THROWS_WITH(build_gguf_vocab(t, c), Catch::Contains("outside the model's vocab_size"));
  c.vocab_size = 280;  // room for the merged token and 7 padding rows
  const GgufVocab v = build_gguf_vocab(t, c);
  CHECK(v.pre == "qwen2");
  REQUIRE(v.merges.size() == 1);
  CHECK(v.merges[0] == "Ġ t");
  CHECK(v.tokens[272] == "Ġt");
  CHECK(v.types[272] == 1);
  CHECK(v.tokens[279] == "[PAD279]");
  CHECK(v.types[279] == 5);
  CHECK(v.types[257] == 3);
  CHECK(v.specials.bos == 256);
  CHECK(v.specials.eos == 257);  // from the {"content": ...} form
  CHECK(v.specials.chat_template == "old");

  auto w = random_weights(c, 2);
  const fs::path out = fresh_dir("hf_tok_out");
  t.chat_template = "new";
  fs::permissions(src / "tokenizer.json", fs::perms::owner_write | fs::perms::group_write | fs::perms::others_write,
                  fs::perm_options::remove);  // as in a read-only shared tokenizer directory
  export_hf(*w, t, HfExportOptions{}, out.string());
  fs::permissions(src / "tokenizer.json", fs::perms::owner_write, fs::perm_options::add);
  CHECK(read_text(out / "tokenizer.json") == read_text(src / "tokenizer.json"));  // verbatim copy
  // Owned by the export: writable even when copied from a read-only source.
  CHECK((fs::status(out / "tokenizer.json").permissions() & fs::perms::owner_write) != fs::perms::none);
  const json::Value tc = json::parse_file((out / "tokenizer_config.json").string());
  CHECK(tc.at("chat_template").as_string() == "new");
  CHECK(tc.at("tokenizer_class").as_string() == "LlamaTokenizerFast");
  CHECK(json::parse_file((out / "generation_config.json").string()).at("eos_token_id").as_int64() == 257);
  // An unknown pre-tokenizer is refused unless named.
  json::Value odd = json::parse(R"({"type":"Whitespace"})");
  CHECK_THROWS_WITH(detect_gguf_pre(odd, "x/tokenizer.json"), Catch::Contains("gguf_pre"));
  // The real tokenizers' pre_tokenizers name llama.cpp's: DeepSeek-V3 spells CR LF in its
  // regexes as raw characters, Qwen3 and Llama 3.1 as escapes.
  {
    const char* dir = std::getenv("CRUCIBLE_TOKENIZER_DIR");
    const std::string base = dir ? dir : "/work/shared/data/tokenizers";
    for (const auto& [model, pre] : {std::pair{"deepseek_v3", "deepseek-v3"}, std::pair{"qwen3", "qwen2"},
                                     std::pair{"llama3_1", "llama-bpe"}}) {
      const std::string path = base + "/" + model + "/tokenizer.json";
      INFO(path);
      REQUIRE(fs::is_regular_file(path));
      CHECK(detect_gguf_pre(json::parse_file(path).at("pre_tokenizer"), path) == pre);
    }
  }
  fs::remove_all(src);
  fs::remove_all(out);
}

TEST_CASE("the ByteTokenizer adapter gives the demo specials", "[export]") {
  const ExportTokenizer t = r1_byte_tokenizer();
  REQUIRE(t.byte_level());
  REQUIRE(t.specials.size() == 16);
  CHECK(t.specials[0].id == 256);
  CHECK(t.specials[0].text == "<｜begin▁of▁sentence｜>");
  CHECK(t.specials[4].text == "<think>");
  CHECK(t.specials[15].text == "<｜reserved_8｜>");
  CHECK(t.bos_id == 256);
  CHECK(t.eos_id == 257);
  CHECK(t.pad_id == 262);
  // A BPE tokenizer is exported from its files.
  const fs::path dir = fresh_dir("adapter");
  fs::create_directories(dir);
  std::ofstream(dir / "tokenizer.json") << json::dump(byte_level_tokenizer_json(t));
  const auto bpe = data::load_tokenizer(dir.string());
  // data/'s BPE reading the synthesized tokenizer.json tokenizes like the ByteTokenizer.
  const std::string text = "Héllo <think>x</think>\r\n 12 🙂<｜end▁of▁sentence｜>";
  CHECK(bpe->encode(text) == data::ByteTokenizer{}.encode(text));
  const ExportTokenizer e = export_tokenizer_for(*bpe, dir.string(), "tmpl");
  CHECK(e.tokenizer_json_path == (dir / "tokenizer.json").string());
  CHECK(e.tokenizer_config_path.empty());
  CHECK(e.chat_template == "tmpl");
  fs::remove_all(dir);
}

TEST_CASE("gpt2 bytes_to_unicode", "[export]") {
  CHECK(gpt2_byte_to_unicode('!') == "!");
  CHECK(gpt2_byte_to_unicode(' ') == "Ġ");   // U+0120
  CHECK(gpt2_byte_to_unicode('\n') == "Ċ");  // U+010A
  CHECK(gpt2_byte_to_unicode(0) == "Ā");     // U+0100
  CHECK(gpt2_byte_to_unicode(0xAD) == "Ń");  // U+0143: the soft hyphen is not printable
  CHECK(gpt2_byte_to_unicode(0xFF) == "ÿ");
  std::set<std::string> all;
  for (int b = 0; b < 256; ++b) all.insert(gpt2_byte_to_unicode(static_cast<std::uint8_t>(b)));
  CHECK(all.size() == 256);
}

TEST_CASE("Ollama Modelfile: FROM, R1 template, stops, sampling", "[export][ollama]") {
  OllamaOptions o;
  const std::string m = ollama_modelfile(o);
  CHECK(m.find("FROM ./model.gguf\n") != std::string::npos);
  CHECK(m.find("TEMPLATE \"\"\"<｜begin▁of▁sentence｜>{{- if .System }}") != std::string::npos);
  CHECK(m.find("<｜User｜>{{ .Content }}") != std::string::npos);
  CHECK(m.find("<｜Assistant｜>{{ .Content }}{{ if not $last }}<｜end▁of▁sentence｜>{{ end }}") != std::string::npos);
  CHECK(m.find("{{- if and $last (ne .Role \"assistant\") }}<｜Assistant｜><think>\n{{ end }}") != std::string::npos);
  CHECK(m.find("PARAMETER stop \"<｜end▁of▁sentence｜>\"\n") != std::string::npos);
  CHECK(m.find("PARAMETER stop \"<｜User｜>\"\n") != std::string::npos);
  CHECK(m.find("PARAMETER temperature 0.6\n") != std::string::npos);
  CHECK(m.find("PARAMETER top_p 0.95\n") != std::string::npos);
  o.format = data::ChatFormat::ChatML;
  o.stop = {"<|im_end|>"};
  const std::string chatml = ollama_modelfile(o);
  CHECK(chatml.find("<|im_start|>user\n{{ .Content }}<|im_end|>\n") != std::string::npos);
  CHECK(chatml.find("PARAMETER stop \"<|im_end|>\"") != std::string::npos);
  CHECK(chatml.find("begin▁of▁sentence") == std::string::npos);
  o.format = data::ChatFormat::Llama3;
  o.bos_token = "";
  o.stop = {};
  const std::string llama3 = ollama_modelfile(o);
  CHECK(llama3.find("<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n") != std::string::npos);
  CHECK(llama3.find("PARAMETER stop \"<|eot_id|>\"") != std::string::npos);
  o.system = "bad \"\"\" text";
  CHECK_THROWS_WITH(ollama_modelfile(o), Catch::Contains("cannot hold"));
  const fs::path dir = fresh_dir("ollama");
  fs::create_directories(dir);
  write_ollama_modelfile(dir.string(), OllamaOptions{});
  CHECK(read_text(dir / "Modelfile") == ollama_modelfile(OllamaOptions{}));
  fs::remove_all(dir);
}
