// AdamW against a hand-written double-precision reference, schedules, clipping,
// the router-bias rule.
#include <cmath>

#include "kernels/linear.h"
#include "launch/model_config_fields.h"
#include "tests/catch.h"
#include "trainer/optimizer.h"

using namespace crucible;
using namespace crucible::trainer;

TEST_CASE("schedules: warmup, cosine and linear decay to the floor", "[optimizer]") {
  OptimizerConfig c;
  c.lr = 1.0;
  c.min_lr_ratio = 0.1;
  c.warmup_steps = 4;
  CHECK(lr_at(c, 0, 104) == Approx(0.25));
  CHECK(lr_at(c, 3, 104) == Approx(1.0));
  CHECK(lr_at(c, 4, 104) == Approx(1.0));
  CHECK(lr_at(c, 54, 104) == Approx(0.55));  // cosine midpoint
  CHECK(lr_at(c, 104, 104) == Approx(0.1));
  c.schedule = Schedule::Linear;
  CHECK(lr_at(c, 54, 104) == Approx(0.55));
  CHECK(lr_at(c, 29, 104) == Approx(0.1 + 0.9 * 0.75));
  c.schedule = Schedule::Constant;
  CHECK(lr_at(c, 80, 104) == 1.0);
}

TEST_CASE("AdamW matches a double-precision reference with FP32 moments; clipping scales g", "[optimizer]") {
  ModelConfig cfg = launch::load_model_config(std::string(CRUCIBLE_SOURCE_DIR) + "/configs/models/tiny-llama.toml");
  ModelWeights w(cfg, Device::cpu());
  w.init_random(4);
  OptimizerConfig oc;
  oc.lr = 0.01;
  oc.warmup_steps = 0;
  oc.schedule = Schedule::Constant;
  oc.bf16_moments = false;
  oc.weight_decay = 0.1;
  oc.clip_norm = 0.5;
  AdamW opt(w, oc);
  const std::string lin = "model.layers.0.mlp.up_proj.weight", norm = "model.layers.0.input_layernorm.weight";
  std::vector<double> p0(2), m(2, 0), v(2, 0);
  p0[0] = w.param(lin).data<float>()[5];
  p0[1] = w.param(norm).data<float>()[5];
  double gsq = 0;
  for (const auto& e : w.layout().entries()) {
    Tensor g = w.grad(e.name);
    for (std::int64_t i = 0; i < g.numel(); ++i) {
      g.data<float>()[i] = 0.01f * static_cast<float>((i % 7) - 3);
      gsq += double(g.data<float>()[i]) * g.data<float>()[i];
    }
  }
  const double scale = 0.5 / (std::sqrt(gsq) + 1e-6);
  std::vector<double> p = p0;
  for (int step = 1; step <= 3; ++step) {
    const StepStats st = opt.step(step - 1, 10);
    CHECK(st.clipped);
    CHECK(st.grad_norm == Approx(std::sqrt(gsq)));
    for (int k = 0; k < 2; ++k) {
      const double g = 0.01 * ((5 % 7) - 3) * scale;
      m[k] = 0.9 * m[k] + 0.1 * g;
      v[k] = 0.95 * v[k] + 0.05 * g * g;
      const double mh = m[k] / (1 - std::pow(0.9, step)), vh = v[k] / (1 - std::pow(0.95, step));
      const double wd = k == 0 ? 0.1 : 0.0;  // norms are not decayed
      p[k] -= 0.01 * (mh / (std::sqrt(vh) + 1e-8) + wd * p[k]);
    }
  }
  CHECK(w.param(lin).data<float>()[5] == Approx(p[0]).epsilon(1e-5));
  CHECK(w.param(norm).data<float>()[5] == Approx(p[1]).epsilon(1e-5));
}

TEST_CASE("router bias moves against the load", "[optimizer]") {
  ModelConfig cfg = launch::load_model_config(std::string(CRUCIBLE_SOURCE_DIR) + "/configs/models/tiny-deepseek-v3.toml");
  ModelWeights w(cfg, Device::cpu());
  std::vector<std::vector<std::int64_t>> load(3, std::vector<std::int64_t>{10, 2, 4, 4, 4, 4, 4, 4});
  update_router_bias(w, load, 0.001);
  const Tensor b = w.param("model.layers.1.mlp.gate.e_score_correction_bias");
  CHECK(b.data<float>()[0] == Approx(-0.001f));  // overloaded
  CHECK(b.data<float>()[1] == Approx(0.001f));   // underloaded
  CHECK(b.data<float>()[2] == Approx(0.001f));   // 4 < mean 4.5
}

TEST_CASE("AdamW refuses to step inside a WeightCacheScope; scopes nest", "[optimizer]") {
  ModelConfig cfg = launch::load_model_config(std::string(CRUCIBLE_SOURCE_DIR) + "/configs/models/tiny-llama.toml");
  ModelWeights w(cfg, Device::cpu());
  w.init_random(4);
  AdamW opt(w, OptimizerConfig{});
  REQUIRE_FALSE(ops::weight_cache_active());
  {
    const ops::WeightCacheScope outer;
    {
      const ops::WeightCacheScope inner;
      CHECK(ops::weight_cache_active());
    }
    CHECK(ops::weight_cache_active());  // the outer one is still open
    CHECK_THROWS_WITH(opt.step(0, 10), Catch::Contains("inside an ops::WeightCacheScope"));
  }
  CHECK_FALSE(ops::weight_cache_active());
  CHECK_NOTHROW(opt.step(0, 10));
}
