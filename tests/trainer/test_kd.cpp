// Logit KD in the distill objective (trainer/sft.h KdTerm): the gradient that
// sft_accumulate leaves in the student's arena matches central differences of
// (1 - w) CE + w tau^2 KL(teacher_tau || student_tau) over response tokens, through a
// tied head (the Qwen2-style student), for several w and tau; w = 0 is plain SFT;
// a teacher over another vocabulary is refused when the config is checked.
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "kernels/kd_head.h"
#include "launch/model_config_fields.h"
#include "launch/run_config.h"
#include "tests/catch.h"
#include "tests/model/grad_check.h"
#include "trainer/pipeline.h"
#include "trainer/sft.h"

using namespace crucible;
using namespace crucible::trainer;
using crucible::testing::fd_check;

namespace {

ModelConfig preset(const std::string& name) {
  return launch::load_model_config(std::string(CRUCIBLE_SOURCE_DIR) + "/configs/models/" + name + ".toml");
}

trainer::PipelineConfig load(const std::string& toml) {
  const auto path = std::filesystem::temp_directory_path() / "crucible_test_kd.toml";
  std::ofstream(path) << toml;
  return launch::load_run_config(path.string(), {}).pipeline;
}

std::vector<data::TokenizedExample> examples(std::int64_t vocab) {
  std::mt19937_64 gen(11);
  std::vector<data::TokenizedExample> out;
  for (std::size_t n : {19u, 13u}) {
    data::TokenizedExample e;
    for (std::size_t i = 0; i < n; ++i) {
      e.ids.push_back(static_cast<std::int32_t>(gen() % static_cast<std::uint64_t>(vocab)));
      e.loss_mask.push_back(i >= n / 3 ? 1 : 0);  // prompt, then response
    }
    out.push_back(std::move(e));
  }
  return out;
}

// The objective sft_accumulate differentiates, computed forward only (float64 sums).
double objective(Transformer& student, Transformer& teacher, std::span<const data::TokenizedExample> ex, double norm,
                 std::int64_t max_tokens, const KdTerm& kd) {
  data::PackingOptions opts;
  opts.max_tokens = max_tokens;
  double loss = 0;
  for (const data::PackedRow& row : data::pack_examples(ex, opts)) {
    Batch b{row.ids, row.targets, row.pos, row.cu_seqlens};
    ForwardState st, tst;
    const Tensor logp = student.forward_logprobs(b, st);
    const Tensor ht = teacher.forward_hidden(b, tst);
    Tensor kl(Shape{b.tokens()}, DType::F32);
    ops::kd_head_forward(st.hf, student.head_weight(), ht, teacher.head_weight(), kl,
                         {static_cast<float>(kd.temperature)});
    for (std::int64_t t = 0; t < b.tokens(); ++t) {
      const double m = row.loss_mask.data<float>()[t];
      loss += m * ((1 - kd.weight) * -logp.data<float>()[t] + kd.weight * kl.data<float>()[t]) / norm;
    }
  }
  return loss;
}

}  // namespace

TEST_CASE("distill KD: sft_accumulate's gradient matches finite differences of (1-w) CE + w tau^2 KL", "[kd][distill]") {
  ModelWeights sw(preset("tiny-qwen2"), Device::cpu(), true), tw(preset("tiny-llama"), Device::cpu(), false);
  sw.init_random(1);
  tw.init_random(2);
  for (float& x : tw.param("lm_head.weight").span<float>()) x *= 5;  // a peaked teacher
  Transformer student(sw), teacher(tw);
  const auto ex = examples(sw.config().vocab_size);
  const double norm = response_tokens(ex);
  struct Case {
    double w, tau;
  };
  for (const Case k : {Case{0.0, 1.0}, Case{0.5, 1.0}, Case{1.0, 2.0}, Case{0.3, 0.7}}) {
    INFO("kd_weight " << k.w << " temperature " << k.tau);
    const KdTerm kd{&teacher, k.w, k.tau};
    sw.zero_grads();
    const SftAccumulation acc = sft_accumulate(student, ex, norm, 2.0, 24, 1.0, &kd);  // two packed rows
    CHECK((acc.kd_sum > 0) == (k.w > 0));
    CHECK(acc.tokens == norm);
    for (const char* name : {"model.embed_tokens.weight", "model.norm.weight", "model.layers.1.mlp.down_proj.weight",
                             "model.layers.0.self_attn.q_proj.weight"}) {
      INFO(name);
      const double err = fd_check(sw.param(name), sw.grad(name),
                                  [&] { return objective(student, teacher, ex, norm, 24, kd); }, 8, 5, 3e-2);
      CHECK(err < 2e-2);
    }
  }
  // w = 0 is plain SFT: the same gradient as without a KdTerm.
  sw.zero_grads();
  sft_accumulate(student, ex, norm, 2.0, 24);
  const Tensor plain = sw.grads().flat().clone();
  sw.zero_grads();
  const KdTerm off{&teacher, 0.0, 2.0};
  const SftAccumulation acc = sft_accumulate(student, ex, norm, 2.0, 24, 1.0, &off);
  CHECK(acc.kd_sum == 0);
  CHECK(std::memcmp(plain.raw(), sw.grads().flat().raw(), plain.nbytes()) == 0);
}

TEST_CASE("distill KD refuses a teacher over another vocabulary at config load", "[kd][distill]") {
  const std::string toml = R"(
[run]
out_dir = "/tmp/unused"
stages = ["distill"]
[task]
task = "arithmetic"
[models.teacher]
preset = "tiny-deepseek-v3"
vocab_size = 300
[models.student]
preset = "tiny-qwen2"
[stages.distill]
kind = "distill"
kd_weight = 0.5
)";
  REQUIRE_THROWS_WITH(load(toml), Catch::Contains("one vocabulary") &&
                                                                     Catch::Contains("vocab_size 300"));
  std::string ok = toml;
  ok.replace(ok.find("vocab_size = 300"), 16, "vocab_size = 272");
  CHECK(std::get<DistillStageConfig>(load(ok).stages[0].body).kd_weight == 0.5);
  std::string bad = ok;
  bad.replace(bad.find("kd_weight = 0.5"), 15, "kd_weight = 1.5");
  REQUIRE_THROWS_WITH(load(bad), Catch::Contains("kd_weight"));
}

TEST_CASE("SFT gradient of a MoE model with a balance loss does not depend on how the batch is packed",
          "[sft][moe]") {
  // Each packed row's balance-loss gradient is weighted by its share of the update's
  // sequences (ForwardState::aux_weight), so one row or three give the gradient of the
  // same objective: CE over response tokens / norm + alpha / n_seq * sum over sequences.
  ModelConfig c = preset("tiny-deepseek-v3");
  c.aux_loss_alpha = 0.5;  // large, so that a miscounted balance term would show
  ModelWeights w(c, Device::cpu(), true);
  w.init_random(3);
  Transformer model(w);
  auto ex = examples(c.vocab_size);
  ex.push_back(ex[0]);
  ex.back().ids[2] = (ex.back().ids[2] + 1) % static_cast<std::int32_t>(c.vocab_size);
  const double norm = response_tokens(ex), seqs = static_cast<double>(ex.size());
  w.zero_grads();
  sft_accumulate(model, ex, norm, seqs, 512);  // one row
  const Tensor one = w.grads().flat().clone();
  w.zero_grads();
  sft_accumulate(model, ex, norm, seqs, 20);  // one sequence a row
  const Tensor gate_one = one.view_as(DType::F32, Shape{one.numel() / 4});
  const Tensor flat = w.grads().flat();
  const Tensor gate_many = flat.view_as(DType::F32, Shape{flat.numel() / 4});
  double diff = 0, ref = 0;
  for (const auto& e : w.layout().entries())
    if (e.name.find("mlp.gate.weight") != std::string::npos)
      for (std::int64_t i = static_cast<std::int64_t>(e.offset / 4); i < static_cast<std::int64_t>(e.offset / 4) + e.shape.numel(); ++i) {
        const double a = gate_one.data<float>()[i], b = gate_many.data<float>()[i];
        diff += (a - b) * (a - b);
        ref += a * a;
      }
  // FP32 sums in another order: relative 1e-5 at most; a balance term counted once per
  // row instead of once per batch would differ by O(1).
  CHECK(ref > 0);
  CHECK(std::sqrt(diff / ref) < 1e-5);
}
