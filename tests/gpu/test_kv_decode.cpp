// KV-cache decoding on the GPU through the model (rollout/cached_forward.h), the path the
// generator takes: an MLA model with the h100 teacher's latent (kv_lora_rank 256, rope 64,
// so a BF16 cache runs the Hopper wgmma decode kernel there) in BF16, all layers dense
// (MoE routing would turn tiny differences into different experts).
//
// 1. The cache dtype changes no operand: the decode kernels multiply the latent as BF16
//    either way, so with the mma.sync kernel forced, an FP32 cache and a BF16 cache give
//    the same log-probs bit for bit.
// 2. The generator's default (a BF16 cache, the wgmma kernel on Hopper) against the FP32
//    cache: only the summation order of the decode kernel differs. Its FP32-level
//    differences can move a later activation across a BF16 rounding boundary (one ulp,
//    2^-8 relative), so we allow 2^-6 relative, as tests/gpu/test_model.cpp does.
// 3. Both against the full forward over the whole sequences (the trainer's log-probs):
//    the absorbed decode rounds q W_uk where the forward rounds c_kv W_uk, so the
//    operands differ by BF16 roundings (2^-5 relative allowed); a miswired cache or
//    kernel is off by O(1).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/cuda/decode_attention_cuda.h"
#include "launch/model_config_fields.h"
#include "rollout/cached_forward.h"
#include "rollout/generator.h"
#include "tests/catch.h"
#include "tests/gpu/gpu_compare.h"
#include "tests/rollout/kv_decode_checks.h"
#include "tests/worst.h"

using namespace crucible;
using namespace crucible::gpu_test;

namespace {

double worst_rel(const std::vector<float>& x, const std::vector<float>& y) {
  double worst = 0;
  for (std::size_t i = 0; i < x.size(); ++i)
    worst = testing::worst_of(worst, std::fabs(double(x[i]) - y[i]) / (1 + std::fabs(double(x[i]))));
  return worst;
}

}  // namespace

TEST_CASE("KV-cache decoding on the GPU: BF16 and FP32 latent caches, both decode kernels, vs the full forward",
          "[gpu][decode][kv_decode]") {
  REQUIRE(cuda_device_count() > 0);
  ModelConfig c = launch::load_model_config(std::string(CRUCIBLE_SOURCE_DIR) + "/configs/models/tiny-deepseek-v3.toml");
  c.kv_lora_rank = 256;
  c.qk_rope_head_dim = 64;
  c.first_k_dense_replace = c.num_hidden_layers;
  c.num_nextn_predict_layers = 0;
  c.precision = Precision::Bf16;
  c.initializer_range = 0.1;
  ModelWeights init(c, Device::cpu(), false);
  init.init_random(11);
  const auto weights = init.copy_to(Device::cuda(0), false);
  Transformer model(*weights);
  REQUIRE(rollout::default_cache_dtype(model) == DType::BF16);

  std::mt19937 gen(5);
  std::vector<std::int32_t> a(12), b(9);
  for (auto& x : a) x = static_cast<std::int32_t>(gen() % c.vocab_size);
  for (auto& x : b) x = static_cast<std::int32_t>(gen() % c.vocab_size);
  ForwardState st;
  const Tensor full_t = on_host(model.forward_logprobs(Batch::from_sequences({a, b}).to(Device::cuda(0)), st));
  std::vector<float> full;
  for (std::int64_t i = 3; i < 11; ++i) full.push_back(full_t.data<float>()[i]);
  for (std::int64_t i = 12 + 1; i < 12 + 8; ++i) full.push_back(full_t.data<float>()[i]);

  std::vector<float> mma_f32, mma_bf16;
  {
    const cuda::ScopedMlaDecodeKernel pick(cuda::MlaDecodeKernel::MmaSync);
    mma_f32 = testing::decode_logprobs(model, DType::F32, a, b);
    mma_bf16 = testing::decode_logprobs(model, DType::BF16, a, b);
  }
  const std::vector<float> auto_bf16 = testing::decode_logprobs(model, DType::BF16, a, b);
  REQUIRE(mma_f32.size() == 15);

  std::size_t same = 0;
  for (std::size_t i = 0; i < mma_f32.size(); ++i) same += std::memcmp(&mma_f32[i], &mma_bf16[i], sizeof(float)) == 0;
  const double e_kernel = worst_rel(mma_f32, auto_bf16), e_full = worst_rel(full, mma_f32),
               e_full_auto = worst_rel(full, auto_bf16);
  std::printf("kv decode (MLA 256+64, BF16): FP32 vs BF16 cache under mma.sync: %zu of %zu log-probs bit-equal; "
              "default BF16 cache vs FP32: %.3g rel; vs full forward: FP32 cache %.3g, BF16 cache %.3g\n",
              same, mma_f32.size(), e_kernel, e_full, e_full_auto);
  CHECK(same == mma_f32.size());
  CHECK(e_kernel <= 0x1p-6);
  CHECK(e_full <= 0x1p-5);
  CHECK(e_full_auto <= 0x1p-5);
}
