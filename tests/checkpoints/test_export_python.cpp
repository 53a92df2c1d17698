// Exports checked by the reference runtimes through tools/check_export.py: transformers
// (fp32 HF directory) and llama.cpp (F32, F16, Q8_0 GGUF) reproduce crucible's
// next-token log-probs; `tokenizers` and llama.cpp tokenize text to exactly its UTF-8
// bytes with the specials as single ids; both render the chat template alike.
// Needs python3 with torch, transformers, tokenizers, numpy and llama_cpp; without
// them the test WARNs and passes (CI may lack them).
// The exported DeepSeek-V3 teacher is also checked without Python, against log-probs
// that transformers computed once for the same export (tools/make_export_goldens.py,
// tests/data/models/deepseek_v3_export/golden.json).
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "checkpoints/gguf_export.h"
#include "checkpoints/gguf_reader.h"
#include "checkpoints/hf_export.h"
#include "checkpoints/hf_import.h"
#include "core/rng.h"
#include "data/chat_template.h"
#include "kernels/logprob_head.h"
#include "model/transformer.h"
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

std::string run(const std::string& cmd, int* status) {
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  if (!p) return out;
  char buf[65536];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  *status = pclose(p);
  return out;
}

bool python_ready() {
  int st = -1;
  run("python3 -c 'import torch, transformers, tokenizers, numpy, llama_cpp' >/dev/null 2>&1", &st);
  return st == 0;
}

void append_utf8(std::string& s, std::uint32_t cp) {
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xF0 | (cp >> 18));
    s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Random text over ASCII (digits, spaces, newlines, punctuation), Latin-1, Greek, CJK,
// kana, emoji and combining marks; specials spliced in. Returns the text and its ids.
std::pair<std::string, std::vector<std::int64_t>> random_text(std::uint64_t seed) {
  Rng rng(seed, 0);
  const std::pair<std::uint32_t, std::uint32_t> ranges[] = {
      {0x20, 0x7E}, {0x30, 0x39}, {0x0A, 0x0A}, {0x20, 0x20}, {0xA0, 0xFF}, {0x391, 0x3C9},
      {0x4E00, 0x9FA5}, {0x3041, 0x30FF}, {0x1F600, 0x1F64F}, {0x300, 0x36F}, {0x09, 0x0D}};
  const ExportTokenizer tok = r1_byte_tokenizer();
  std::string text;
  std::vector<std::int64_t> ids;
  for (int piece = 0; piece < 400; ++piece) {
    if (rng.below(25) == 0) {
      const ExportSpecialToken& sp = tok.specials[rng.below(tok.specials.size())];
      text += sp.text;
      ids.push_back(sp.id);
      continue;
    }
    const auto& [lo, hi] = ranges[rng.below(std::size(ranges))];
    std::string ch;
    append_utf8(ch, lo + static_cast<std::uint32_t>(rng.below(hi - lo + 1)));
    text += ch;
    for (unsigned char b : ch) ids.push_back(b);
  }
  return {text, ids};
}

std::vector<std::int64_t> ints(const json::Value& a) {
  std::vector<std::int64_t> v;
  for (const auto& x : a.as_array()) v.push_back(x.as_int64());
  return v;
}

// crucible's log-softmax rows [T][V] for one sequence.
std::vector<std::vector<double>> crucible_rows(ModelWeights& w, const std::vector<std::int32_t>& tokens) {
  Transformer model(w);
  const Batch batch = Batch::from_sequences({tokens});
  ForwardState st;
  model.forward_logprobs(batch, st);
  const std::int64_t T = batch.tokens(), V = w.config().vocab_size;
  Tensor ids(Shape{T, V}, DType::I32), lps(Shape{T, V}, DType::F32);
  ops::logprob_head_topk(st.hf, model.head_weight(), V, ids, lps);
  std::vector<std::vector<double>> rows(static_cast<std::size_t>(T), std::vector<double>(static_cast<std::size_t>(V)));
  for (std::int64_t t = 0; t < T; ++t)
    for (std::int64_t r = 0; r < V; ++r)
      rows[t][ids.data<std::int32_t>()[t * V + r]] = lps.data<float>()[t * V + r];
  return rows;
}

double max_diff(const std::vector<std::vector<double>>& a, const std::vector<std::vector<double>>& b) {
  double worst = 0;
  for (std::size_t t = 0; t < a.size(); ++t)
    for (std::size_t v = 0; v < a[t].size(); ++v) worst = testing::worst_of(worst, std::fabs(a[t][v] - b[t][v]));
  return worst;
}

double max_diff(const std::vector<std::vector<double>>& a, const json::Value& rows) {
  double worst = 0;
  REQUIRE(rows.size() == a.size());
  for (std::size_t t = 0; t < a.size(); ++t) {
    const auto& r = rows.as_array()[t].as_array();
    REQUIRE(r.size() == a[t].size());
    for (std::size_t v = 0; v < r.size(); ++v) worst = testing::worst_of(worst, std::fabs(r[v].as_double() - a[t][v]));
  }
  return worst;
}

// The weights as llama.cpp sees them in a GGUF file: decoded to FP32, q/k rows back
// in HF order. crucible on these isolates the runtime's own rounding (activations
// converted for F16/Q8_0 matmuls) from the rounding of the stored weights.
std::unique_ptr<ModelWeights> weights_from_gguf(const ModelConfig& c, const std::string& path) {
  const GgufFile f = GgufFile::open(path);
  auto w = std::make_unique<ModelWeights>(c, Device::cpu(), false);
  for (const ParamSpec& p : parameter_table(c)) {
    std::vector<float> x = f.read_f32(gguf_tensor_name(p.name));
    const bool q = p.name.find("q_proj") != std::string::npos, k = p.name.find("k_proj") != std::string::npos;
    float* dst = w->param(p.name).data<float>();
    if (c.arch == Arch::Llama && (q || k))
      llama_unpermute_qk(x.data(), dst, p.shape[0], p.shape.size() > 1 ? p.shape[1] : 1,
                         q ? c.num_attention_heads : c.kv_heads());
    else
      std::copy(x.begin(), x.end(), dst);
  }
  return w;
}

// The teacher the golden was made from: tiny-deepseek-v3 (MLA with q low rank, YaRN,
// interleaved RoPE, one dense layer, then group-limited sigmoid routing with a shared
// expert, MTP layer), matrices at 3x the init's std, a non-zero
// e_score_correction_bias (the trained teacher's is; the init's is 0).
// The seed is one whose routes all clear the golden's 1e-4 margin.
constexpr std::uint64_t kTeacherSeed = 99;
std::unique_ptr<ModelWeights> teacher_weights() {
  auto w = random_weights(preset("tiny-deepseek-v3"), kTeacherSeed);
  const auto& entries = w->layout().entries();
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const std::string& n = entries[i].name;
    if (n.find("correction_bias") != std::string::npos) {
      Rng rng(kTeacherSeed + 1, i);
      for (float& x : w->param(n).span<float>()) x = 0.1f * rng.normal();
    } else if (n.find("norm") == std::string::npos) {
      for (float& x : w->param(n).span<float>()) x *= 3.0f;
    }
  }
  return w;
}

// Two R1 chat turns of the demo's arithmetic traces: 332 tokens, well past YaRN's
// original_max_position_embeddings (128) and the lengths the import goldens cover
// (11 and 7). The first parity check, on 14 tokens, could not see what 51 did.
std::vector<std::int32_t> teacher_tokens() {
  std::vector<std::int32_t> t;
  auto text = [&t](const std::string& s) {
    for (unsigned char ch : s) t.push_back(ch);
  };
  for (const char* turn : {"47 + 38", "60 + 29"}) {
    const std::string a = std::string(turn).substr(0, 2), b = std::string(turn).substr(5, 2);
    const int sum = std::stoi(a) + std::stoi(b), ones = (a[1] - '0') + (b[1] - '0');
    const int carry = ones / 10, tens = (a[0] - '0') + (b[0] - '0') + carry;
    if (t.empty()) t.push_back(256);  // <｜begin▁of▁sentence｜>
    t.push_back(258);                 // <｜User｜>
    text("Compute " + std::string(turn) + ". Put the final answer in \\boxed{}.");
    t.insert(t.end(), {259, 260, 10});  // <｜Assistant｜><think>\n
    text(std::string(turn) + ", ones first.\n" + a.substr(1) + " + " + b.substr(1) + " = " + std::to_string(ones) +
         ", carry " + std::to_string(carry) + ".\n" + a.substr(0, 1) + " + " + b.substr(0, 1) + " + " +
         std::to_string(carry) + " = " + std::to_string(tens) + ", carry " + std::to_string(tens / 10) + ".\nSo " +
         std::string(turn) + " = " + std::to_string(sum) + ".\n");
    t.push_back(261);  // </think>
    text("\n\nThe answer is \\boxed{" + std::to_string(sum) + "}.");
    t.push_back(257);  // <｜end▁of▁sentence｜>
  }
  return t;
}

// The same weights computing in `p` (the layout does not depend on the precision).
std::unique_ptr<ModelWeights> with_precision(const ModelWeights& w, Precision p) {
  ModelConfig c = w.config();
  c.precision = p;
  auto out = std::make_unique<ModelWeights>(c, Device::cpu(), false);
  out->params().flat().copy_from(w.params().flat());
  return out;
}

// Next-token log-probs [T-1] and each routed layer's chosen experts (sorted) per position.
struct Scored {
  std::vector<double> next;
  std::vector<std::vector<std::vector<std::int32_t>>> routes;  // [moe layer][t][k]
};
Scored score(ModelWeights& w, const std::vector<std::int32_t>& tokens) {
  Transformer model(w);
  const Batch batch = Batch::from_sequences({tokens});
  ForwardState st;
  const Tensor logp = model.forward_logprobs(batch, st);
  Scored s;
  for (std::size_t t = 0; t + 1 < tokens.size(); ++t) s.next.push_back(logp.data<float>()[t]);
  for (const LayerState& l : st.layers) {
    if (!l.moe_layer) continue;
    const std::int64_t T = l.moe.topk_idx.dim(0), k = l.moe.topk_idx.dim(1);
    std::vector<std::vector<std::int32_t>> layer(static_cast<std::size_t>(T));
    for (std::int64_t t = 0; t < T; ++t) {
      const std::int32_t* r = l.moe.topk_idx.data<std::int32_t>() + t * k;
      layer[t].assign(r, r + k);
      std::sort(layer[t].begin(), layer[t].end());
    }
    s.routes.push_back(std::move(layer));
  }
  return s;
}

std::string fnv1a64_hex(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::uint64_t h = 0xCBF29CE484222325ull;
  char buf[65536];
  while (f.read(buf, sizeof buf) || f.gcount() > 0) {
    for (std::streamsize i = 0; i < f.gcount(); ++i) {
      h ^= static_cast<unsigned char>(buf[i]);
      h *= 0x100000001B3ull;
    }
  }
  char out[17];
  std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(h));
  return out;
}

}  // namespace

// Weights at 3x the init's std (0.06) give peaked next-token distributions, as a
// trained model has, without making the random network chaotic.
constexpr float kWeightScale = 3.0f;

TEST_CASE("transformers and llama.cpp reproduce crucible's log-probs; tokenizers match bytes", "[export][gguf][python]") {
  if (!python_ready()) {
    WARN("SKIPPED: python3 with torch, transformers, tokenizers, numpy and llama_cpp is not importable");
    return;
  }
  struct Case {
    const char* preset;
    bool attention_bias;
  };
  const auto [text, text_ids] = random_text(17);
  for (const Case& k : {Case{"tiny-qwen2", true}, Case{"tiny-llama", false}, Case{"tiny-llama", true}}) {
    ModelConfig c = preset(k.preset);
    c.attention_bias = k.attention_bias;
    const std::string label = std::string(k.preset) + (k.attention_bias ? "+bias" : "");
    INFO(label);
    auto w = random_weights(c, 1234);
    // Larger random weights than the init so that the distributions are far from uniform.
    for (const auto& e : w->layout().entries())
      if (e.name.find("norm") == std::string::npos)
        for (float& x : w->param(e.name).span<float>()) x *= kWeightScale;

    const fs::path dir = fresh_dir("py_" + label);
    fs::create_directories(dir);
    HfExportOptions ho;
    ho.dtype = HfExportDType::F32;
    export_hf(*w, r1_byte_tokenizer(), ho, (dir / "hf").string());
    std::vector<std::string> ggufs;
    for (GgufExportDType dt : {GgufExportDType::F32, GgufExportDType::F16, GgufExportDType::Q8_0, GgufExportDType::BF16}) {
      GgufExportOptions go;
      go.dtype = dt;
      ggufs.push_back((dir / (std::string("model-") + gguf_export_dtype_name(dt) + ".gguf")).string());
      export_gguf(*w, r1_byte_tokenizer(), go, ggufs.back());
    }
    std::ofstream(dir / "text.txt", std::ios::binary) << text;
    const std::string chat_json = R"([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "1+1?"},
      {"role": "assistant", "content": "<think>\nadd</think>2"}, {"role": "user", "content": "2+2?"}])";
    std::ofstream(dir / "chat.json") << chat_json;

    std::vector<std::int32_t> tokens = {256, 258};
    for (unsigned char ch : std::string("What is 12*7? Café ∑ 🙂")) tokens.push_back(ch);
    for (std::int32_t id : {259, 260, 10}) tokens.push_back(id);
    std::string list;
    for (std::int32_t t : tokens) list += (list.empty() ? "" : ",") + std::to_string(t);
    std::string cmd = "python3 " + std::string(CRUCIBLE_SOURCE_DIR) + "/tools/check_export.py --hf " +
                      (dir / "hf").string() + " --tokens " + list + " --text-file " + (dir / "text.txt").string() +
                      " --chat-file " + (dir / "chat.json").string();
    for (const std::string& g : ggufs) cmd += " --gguf " + g;
    int status = -1;
    const std::string out = run(cmd + " 2>" + (dir / "stderr.txt").string(), &status);
    INFO("stderr: " << std::ifstream(dir / "stderr.txt").rdbuf());
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 0);
    const json::Value r = json::parse(out, "check_export.py output");

    const auto ref = crucible_rows(*w, tokens);
    const double d_hf = max_diff(ref, r.at("transformers").at("rows"));
    const double d_f32 = max_diff(ref, r.at("llama_cpp").at(ggufs[0]).at("rows"));
    const double d_f16 = max_diff(ref, r.at("llama_cpp").at(ggufs[1]).at("rows"));
    const double d_q8 = max_diff(ref, r.at("llama_cpp").at(ggufs[2]).at("rows"));
    const double d_bf16 = max_diff(ref, r.at("llama_cpp").at(ggufs[3]).at("rows"));
    // Against crucible on the stored (rounded) weights: only llama.cpp's own arithmetic differs.
    const auto stored_f16 = crucible_rows(*weights_from_gguf(c, ggufs[1]), tokens);
    const auto stored_q8 = crucible_rows(*weights_from_gguf(c, ggufs[2]), tokens);
    const double r_f16 = max_diff(stored_f16, r.at("llama_cpp").at(ggufs[1]).at("rows"));
    const double r_q8 = max_diff(stored_q8, r.at("llama_cpp").at(ggufs[2]).at("rows"));
    // Spread of the reference log-probs, to read the Q8_0 figure against.
    double spread = 0;
    for (const auto& row : ref) spread = std::max(spread, *std::max_element(row.begin(), row.end()) -
                                                               *std::min_element(row.begin(), row.end()));
    std::printf("parity %-16s max|dlogp| over %zu x %lld: transformers f32 %.2e | llama.cpp f32 %.2e f16 %.2e bf16 %.2e q8_0 %.2e"
                " (log-prob range %.1f)\n  of which weight rounding (crucible on the stored weights) f16 %.2e q8_0 %.2e;"
                " llama.cpp vs crucible on the stored weights: f16 %.2e q8_0 %.2e\n",
                label.c_str(), ref.size(), static_cast<long long>(c.vocab_size), d_hf, d_f32, d_f16, d_bf16, d_q8, spread,
                max_diff(ref, stored_f16), max_diff(ref, stored_q8), r_f16, r_q8);
    CHECK(d_hf < 1e-4);
    CHECK(d_f32 < 1e-4);
    CHECK(d_f16 < 1e-2);
    CHECK(d_bf16 < 5e-2);
    CHECK(d_q8 < 0.2);  // loose: llama.cpp also rounds activations to 8 bits (Q8_0 dot products)
    CHECK(r_f16 < 1e-2);
    CHECK(r_q8 < 0.15);

    const json::Value& tk = r.at("tokenize");
    CHECK(ints(tk.at("tokenizers")) == text_ids);
    CHECK(tk.at("tokenizers_decoded").as_string() == text);
    for (const std::string& g : ggufs) CHECK(ints(tk.at("llama_cpp").at(g)) == text_ids);
    data::ChatTemplateOptions co;
    co.think_prefill = true;
    const auto msgs = data::chat_messages_from_json(json::parse(chat_json), "chat.json");
    const std::string want_chat = data::render_chat(data::ChatFormat::R1, msgs, co);
    CHECK(want_chat == "<｜begin▁of▁sentence｜>Be brief.<｜User｜>1+1?<｜Assistant｜>2<｜end▁of▁sentence｜>"
                       "<｜User｜>2+2?<｜Assistant｜><think>\n");
    CHECK(r.at("chat").at("transformers").as_string() == want_chat);
    for (const std::string& g : ggufs) CHECK(r.at("chat").at("llama_cpp").at(g).as_string() == want_chat);
    fs::remove_all(dir);
  }
}

TEST_CASE("transformers reproduces crucible's log-probs on an exported deepseek_v3 teacher (f32, bf16)", "[export][python]") {
  if (!python_ready()) {
    WARN("SKIPPED: python3 with torch, transformers, tokenizers, numpy and llama_cpp is not importable");
    return;
  }
  auto w = teacher_weights();
  const std::vector<std::int32_t> tokens = teacher_tokens();
  std::string list;
  for (std::int32_t t : tokens) list += (list.empty() ? "" : ",") + std::to_string(t);
  for (HfExportDType dt : {HfExportDType::F32, HfExportDType::BF16}) {
    INFO(hf_export_dtype_name(dt));
    const fs::path dir = fresh_dir(std::string("py_deepseek_") + hf_export_dtype_name(dt));
    HfExportOptions ho;
    ho.dtype = dt;
    export_hf(*w, r1_byte_tokenizer(), ho, dir.string());  // MTP layer included: transformers skips it
    int status = -1;
    const std::string out = run("python3 " + std::string(CRUCIBLE_SOURCE_DIR) + "/tools/check_export.py --hf " +
                                    dir.string() + " --tokens " + list + " 2>/dev/null", &status);
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 0);
    const json::Value r = json::parse(out, "check_export.py");
    const json::Value& hf_next = r.at("transformers").at("next");
    // transformers reads the file as FP32: crucible computes in FP32 on the stored weights.
    auto stored = with_precision(*import_hf_model(dir.string()), Precision::Fp32);
    const Scored mine = score(*stored, tokens), master = score(*w, tokens);
    double d = 0, d_master = 0;
    for (std::size_t t = 0; t < mine.next.size(); ++t) {
      d = std::max(d, std::fabs(mine.next[t] - hf_next.as_array()[t].as_double()));
      d_master = std::max(d_master, std::fabs(master.next[t] - hf_next.as_array()[t].as_double()));
    }
    std::printf("parity tiny-deepseek-v3 teacher, %s export, %zu positions: max|dlogp| transformers vs crucible on the "
                "stored weights %.2e; vs crucible's fp32 masters %.2e\n",
                hf_export_dtype_name(dt), mine.next.size(), d, d_master);
    CHECK(d < 1e-4);
    fs::remove_all(dir);
  }
}

TEST_CASE("exported teacher (bf16) matches transformers' golden log-probs over 332 positions", "[export][teacher_golden]") {
  const fs::path golden_path = fs::path(CRUCIBLE_SOURCE_DIR) / "tests/data/models/deepseek_v3_export/golden.json";
  auto w = teacher_weights();
  const std::vector<std::int32_t> tokens = teacher_tokens();
  const char* keep = std::getenv("CRUCIBLE_KEEP_TEACHER_EXPORT");
  const fs::path dir = keep ? fs::path(keep) : fresh_dir("teacher_golden");
  HfExportOptions ho;  // bf16, as the demo exports
  ho.overwrite = true;
  export_hf(*w, r1_byte_tokenizer(), ho, dir.string());
  if (keep) {
    json::Value j = json::Value::object();
    json::Value ids = json::Value::array();
    for (std::int32_t t : tokens) ids.push_back(t);
    j.set("tokens", ids);
    std::ofstream(dir / "tokens.json") << json::dump(j) << "\n";
    WARN("kept the teacher export in " << dir.string() << "; make the golden with tools/make_export_goldens.py --hf "
                                       << dir.string() << " --out " << golden_path.string());
    return;
  }
  const json::Value g = json::parse_file(golden_path.string());
  const auto& want_tokens = g.at("tokens").as_array();
  REQUIRE(want_tokens.size() == tokens.size());
  for (std::size_t t = 0; t < tokens.size(); ++t) REQUIRE(want_tokens[t].as_int64() == tokens[t]);
  INFO("the export's bytes changed since the golden was made: if that is intended, make it again "
       "(tools/make_export_goldens.py says how)");
  REQUIRE(fnv1a64_hex(dir / "model.safetensors") == g.at("safetensors_fnv1a64").as_string());

  // transformers read the bf16 file as FP32: crucible computes in FP32 on the stored weights.
  auto stored = with_precision(*import_hf_model(dir.string()), Precision::Fp32);
  const Scored mine = score(*stored, tokens), master = score(*w, tokens);
  const auto& want = g.at("next_token_logprobs").as_array();
  REQUIRE(want.size() == mine.next.size());
  double d = 0, d_master = 0;
  std::size_t worst_master = 0;
  for (std::size_t t = 0; t < want.size(); ++t) {
    d = std::max(d, std::fabs(mine.next[t] - want[t].as_double()));
    const double dm = std::fabs(master.next[t] - want[t].as_double());
    if (dm > d_master) d_master = dm, worst_master = t;
  }
  // Full rows at a few positions (first, 64, 128 = YaRN's original context, last).
  double d_rows = 0;
  {
    Transformer model(*stored);
    const Batch batch = Batch::from_sequences({tokens});
    ForwardState st;
    model.forward_logprobs(batch, st);
    const std::int64_t T = batch.tokens(), V = stored->config().vocab_size;
    Tensor ids(Shape{T, V}, DType::I32), lps(Shape{T, V}, DType::F32);
    ops::logprob_head_topk(st.hf, model.head_weight(), V, ids, lps);
    for (const auto& [pos, row] : g.at("rows").as_object()) {
      const std::int64_t p = std::stoll(pos);
      REQUIRE(row.size() == static_cast<std::size_t>(V));
      for (std::int64_t r = 0; r < V; ++r) {
        const std::int32_t id = ids.data<std::int32_t>()[p * V + r];
        d_rows = std::max(d_rows, std::fabs(lps.data<float>()[p * V + r] - row.as_array()[id].as_double()));
      }
    }
  }
  // Routing: the same experts at every position of every routed layer (the golden's
  // smallest routing margin is >= 1e-4, so FP32 round-off cannot flip one).
  std::size_t routes = 0, same = 0, master_flips = 0;
  const auto& want_routes = g.at("routing").as_object();
  REQUIRE(want_routes.size() == mine.routes.size());
  std::size_t li = 0;
  for (const auto& [layer, rows] : want_routes) {
    INFO("layer " << layer);
    for (std::size_t t = 0; t < rows.size(); ++t) {
      std::vector<std::int32_t> e;
      for (const auto& x : rows.as_array()[t].as_array()) e.push_back(static_cast<std::int32_t>(x.as_int64()));
      ++routes;
      same += e == mine.routes[li][t];
      master_flips += master.routes[li][t] != mine.routes[li][t];
    }
    ++li;
  }
  std::printf("teacher golden (transformers %s), bf16 export, %zu positions: crucible fp32 on the stored weights vs "
              "transformers max|dlogp| %.2e (full rows %.2e), experts identical on %zu/%zu routes | crucible's fp32 "
              "masters vs the export: max|dlogp| %.2e at position %zu, %zu routes flipped by bf16 rounding "
              "(min routing margin in the golden %.1e)\n",
              g.at("transformers").as_string().c_str(), want.size(), d, d_rows, same, routes, d_master, worst_master,
              master_flips, g.at("min_routing_margin").as_double());
  CHECK(d < 1e-4);
  CHECK(d_rows < 1e-4);
  CHECK(same == routes);
  fs::remove_all(dir);
}
