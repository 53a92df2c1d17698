// Finite-difference gradient checks: every block and whole tiny models of each
// architecture, in fp32; bf16 and fp8 backward against the fp32 gradients.
#include <filesystem>

#include "launch/model_config_fields.h"
#include "model/mtp.h"
#include "model/transformer.h"
#include "tests/catch.h"
#include "tests/model/grad_check.h"

using namespace crucible;
using crucible::testing::fd_check;
using crucible::testing::random_tensor;
using crucible::testing::weighted_sum;

namespace {

ModelConfig tiny(const std::string& preset) {
  ModelConfig c = launch::load_model_config(std::string(CRUCIBLE_SOURCE_DIR) + "/configs/models/" + preset + ".toml");
  c.precision = Precision::Fp32;
  c.initializer_range = 0.2;  // large enough that every path carries gradient
  return c;
}

// Loss of a whole model: Σ_t c_t logp_t over two packed sequences.
struct ModelLoss {
  ModelWeights weights;
  Transformer model{weights};
  Batch batch;
  Tensor coef;

  explicit ModelLoss(const ModelConfig& c, std::uint64_t seed) : weights(c, Device::cpu()) {
    weights.init_random(seed);
    // Non-zero router bias so that selection by biased scores is exercised.
    for (const auto& e : weights.layout().entries())
      if (e.name.find("e_score_correction_bias") != std::string::npos) {
        Tensor b = weights.param(e.name);
        for (std::int64_t i = 0; i < b.numel(); ++i) b.data<float>()[i] = 0.05f * static_cast<float>(i % 3);
      }
    std::mt19937 gen(static_cast<unsigned>(seed));
    std::vector<std::vector<std::int32_t>> seqs(2);
    for (int n : {7, 5})
      for (int i = 0; i < n; ++i) seqs[n == 7 ? 0 : 1].push_back(static_cast<std::int32_t>(gen() % c.vocab_size));
    batch = Batch::from_sequences(seqs);
    coef = random_tensor(Shape{batch.tokens()}, seed + 1);
  }
  std::vector<std::int32_t> routing;  // expert choices of the unperturbed forward

  // The routing decisions of a forward, all MoE layers concatenated.
  static std::vector<std::int32_t> routes(const ForwardState& st) {
    std::vector<std::int32_t> r;
    for (const LayerState& ls : st.layers)
      if (ls.moe_layer) {
        const auto idx = ls.moe.topk_idx.span<std::int32_t>();
        r.insert(r.end(), idx.begin(), idx.end());
      }
    return r;
  }
  // NaN when the perturbation changed any routing decision (a discontinuity).
  double loss() {
    ForwardState st;
    const Tensor logp = model.forward_logprobs(batch, st);
    if (routes(st) != routing) return std::nan("");
    return weighted_sum(logp, coef) + st.aux_loss;
  }
  void grads() {
    weights.zero_grads();
    ForwardState st;
    model.forward_logprobs(batch, st);
    model.backward(coef, st);
    routing = routes(st);
  }
};

void check_model(const ModelConfig& c, const std::vector<std::string>& names, double tol) {
  ModelLoss m(c, 11);
  m.grads();
  for (const std::string& name : names) {
    INFO(arch_name(c.arch) << " " << name);
    const double err = fd_check(m.weights.param(name), m.weights.grad(name), [&] { return m.loss(); }, 6, 3, 3e-2);
    CHECK(err < tol);
  }
}

}  // namespace

TEST_CASE("whole tiny deepseek_v3 model: finite differences match backward (fp32)", "[model][grad]") {
  ModelConfig c = tiny("tiny-deepseek-v3");
  c.aux_loss_alpha = 0.01;  // exercise the balance-loss gradient too
  check_model(c, {"model.embed_tokens.weight", "model.layers.0.self_attn.q_a_proj.weight",
                  "model.layers.0.self_attn.q_a_layernorm.weight", "model.layers.0.self_attn.q_b_proj.weight",
                  "model.layers.1.self_attn.kv_a_proj_with_mqa.weight", "model.layers.1.self_attn.kv_a_layernorm.weight",
                  "model.layers.1.self_attn.kv_b_proj.weight", "model.layers.2.self_attn.o_proj.weight",
                  "model.layers.0.mlp.down_proj.weight", "model.layers.1.mlp.gate.weight",
                  "model.layers.1.mlp.shared_experts.up_proj.weight", "model.layers.3.post_attention_layernorm.weight",
                  "model.norm.weight", "lm_head.weight"},
              2e-2);
  // Every routed expert that received tokens gets a gradient that matches.
  ModelLoss m(c, 11);
  m.grads();
  int checked = 0;
  for (int e = 0; e < 8 && checked < 3; ++e) {
    const std::string name = "model.layers.2.mlp.experts." + std::to_string(e) + ".up_proj.weight";
    double norm = 0;
    for (float g : m.weights.grad(name).span<float>()) norm += std::abs(g);
    if (norm == 0) continue;
    INFO(name);
    CHECK(fd_check(m.weights.param(name), m.weights.grad(name), [&] { return m.loss(); }, 4, 5, 3e-2) < 2e-2);
    ++checked;
  }
  CHECK(checked > 0);
}

TEST_CASE("deepseek_v3 without q low rank (V2-Lite style, softmax greedy routing)", "[model][grad]") {
  ModelConfig c = tiny("tiny-deepseek-v3");
  c.q_lora_rank = 0;
  c.scoring_func = ScoringFunc::Softmax;
  c.topk_method = TopkMethod::Greedy;
  c.norm_topk_prob = false;
  c.n_group = 1;
  c.topk_group = 1;
  c.routed_scaling_factor = 1.0;
  check_model(c, {"model.layers.0.self_attn.q_proj.weight", "model.layers.1.mlp.gate.weight",
                  "model.layers.1.self_attn.kv_b_proj.weight"},
              3e-2);
}

TEST_CASE("whole tiny qwen2 (tied, q/k/v bias) and llama (llama3 rope) models (fp32)", "[model][grad]") {
  check_model(tiny("tiny-qwen2"), {"model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight",
                                   "model.layers.0.self_attn.q_proj.bias", "model.layers.1.self_attn.v_proj.bias",
                                   "model.layers.2.self_attn.v_proj.weight", "model.layers.1.mlp.gate_proj.weight",
                                   "model.layers.2.input_layernorm.weight", "model.norm.weight"},
              2e-2);
  check_model(tiny("tiny-llama"), {"model.embed_tokens.weight", "model.layers.0.self_attn.k_proj.weight",
                                   "model.layers.1.self_attn.o_proj.weight", "model.layers.2.mlp.down_proj.weight",
                                   "lm_head.weight"},
              2e-2);
}

TEST_CASE("tied qwen2: the rows of input tokens carry the head's and the embedding's gradient", "[model][grad]") {
  // check_model samples random embedding entries, nearly all in rows that no batch
  // token reads: those hold the head's gradient only. Here every checked row is an
  // input token's, so the tied weight's gradient must be the sum of both uses.
  const ModelConfig c = tiny("tiny-qwen2");
  REQUIRE(c.tie_word_embeddings);
  ModelLoss m(c, 11);
  m.grads();
  Tensor emb = m.weights.param("model.embed_tokens.weight"), gemb = m.weights.grad("model.embed_tokens.weight");
  const auto ids = m.batch.ids.span<std::int32_t>();
  for (std::size_t i = 0; i < ids.size(); i += 3) {
    INFO("input row " << ids[i]);
    // h = 1e-2: these rows sit in the loss's most curved direction (the input and the
    // head at once), where 3e-2 leaves a truncation error of up to 6%.
    CHECK(fd_check(emb.row(ids[i]), gemb.row(ids[i]), [&] { return m.loss(); }, 4, 17 + i, 1e-2) < 2e-2);
  }
}

TEST_CASE("bf16 and fp8 backward track the fp32 gradients", "[model][grad]") {
  for (const char* preset : {"tiny-deepseek-v3", "tiny-llama"}) {
    ModelConfig c = tiny(preset);
    if (c.n_routed_experts > 0) {
      // Every token takes every expert: no routing decision can flip between the
      // precisions (a flip would change which experts get gradient at all).
      c.num_experts_per_tok = c.n_routed_experts;
      c.n_group = c.topk_group = 1;
    }
    ModelLoss ref(c, 21);
    ref.grads();
    for (Precision p : {Precision::Bf16, Precision::Fp8}) {
      c.precision = p;
      ModelLoss m(c, 21);
      m.grads();
      // Compare the whole gradient buffer: cosine similarity and relative norm error.
      const float* a = ref.weights.grads().flat().view_as(DType::F32, Shape{static_cast<std::int64_t>(ref.weights.grads().bytes() / 4)}).data<float>();
      const float* b = m.weights.grads().flat().view_as(DType::F32, Shape{static_cast<std::int64_t>(m.weights.grads().bytes() / 4)}).data<float>();
      const std::int64_t n = static_cast<std::int64_t>(ref.weights.grads().bytes() / 4);
      double dot = 0, na = 0, nb = 0, diff = 0;
      for (std::int64_t i = 0; i < n; ++i) {
        dot += double(a[i]) * b[i];
        na += double(a[i]) * a[i];
        nb += double(b[i]) * b[i];
        diff += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
      }
      const double cosine = dot / std::sqrt(na * nb), rel = std::sqrt(diff / na);
      INFO(preset << (p == Precision::Bf16 ? " bf16" : " fp8") << ": cosine " << cosine << ", rel " << rel);
      // BF16 rounds every GEMM operand to 8 significant bits; FP8 E4M3 to 4, with one
      // scale per 1x128 tile (a whole row at these widths): the gradients stay aligned
      // with FP32 but drift in norm, more so for FP8.
      CHECK(cosine > (p == Precision::Bf16 ? 0.995 : 0.9));
      CHECK(rel < (p == Precision::Bf16 ? 0.1 : 0.5));
      CHECK(rel > 0);  // the precision mode is really in effect
    }
  }
}

TEST_CASE("MTP module: finite differences match backward through both heads", "[model][grad]") {
  ModelConfig c = tiny("tiny-deepseek-v3");
  REQUIRE(c.num_nextn_predict_layers == 1);
  ModelLoss m(c, 13);
  const Tensor coef2 = random_tensor(Shape{m.batch.tokens()}, 99);
  std::vector<std::int32_t> routing;
  auto loss = [&] {
    ForwardState st;
    MtpState ms;
    const Tensor logp = m.model.forward_logprobs(m.batch, st);
    const auto mtp = Mtp::forward(m.model, m.batch, st, ms);
    std::vector<std::int32_t> r = ModelLoss::routes(st);
    for (const auto& d : ms.depths) {
      const auto idx = d.block.moe.topk_idx.span<std::int32_t>();
      r.insert(r.end(), idx.begin(), idx.end());
    }
    if (r != routing) return std::nan("");
    double l = weighted_sum(logp, m.coef) + st.aux_loss;
    for (std::int64_t i = 0; i < m.batch.tokens(); ++i)
      l += double(coef2.data<float>()[i]) * ms.depths[0].mask.data<float>()[i] * mtp[0].data<float>()[i];
    return l;
  };
  m.weights.zero_grads();
  {
    ForwardState st;
    MtpState ms;
    m.model.forward_logprobs(m.batch, st);
    const auto mtp = Mtp::forward(m.model, m.batch, st, ms);
    routing = ModelLoss::routes(st);
    for (const auto& d : ms.depths) {
      const auto idx = d.block.moe.topk_idx.span<std::int32_t>();
      routing.insert(routing.end(), idx.begin(), idx.end());
    }
    Tensor dh_last;
    Mtp::backward(m.model, {coef2}, st, ms, dh_last);
    m.model.backward(m.coef, st, &dh_last);
  }
  for (const char* name : {"model.layers.4.eh_proj.weight", "model.layers.4.enorm.weight", "model.layers.4.hnorm.weight",
                           "model.layers.4.shared_head.norm.weight", "model.layers.4.self_attn.kv_b_proj.weight",
                           "model.layers.4.mlp.gate.weight", "model.layers.3.self_attn.o_proj.weight",
                           "model.embed_tokens.weight", "lm_head.weight"}) {
    INFO(name);
    CHECK(fd_check(m.weights.param(name), m.weights.grad(name), loss, 6, 7, 3e-2) < 2e-2);
  }
}
