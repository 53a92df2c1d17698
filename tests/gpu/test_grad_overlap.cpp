// The overlapped gradient sum (trainer/grad_overlap.h) on the GPU, on one rank of
// the NCCL communicator (its whole deterministic path: a scratch row per rank, the
// fold kernel, written back in place).
//
// Invariant under test: the gradient arena after backward with the per-layer hook and
// finish() holds exactly the bits of the same backward followed by one all_reduce of
// the flat buffer. With one rank the fold of one row is the identity, so a difference
// can only come from ordering: a bucket reduced on the concurrent stream before
// backward finished writing it folds stale values back over the new ones, and the
// default stream reading gradients before finish()'s reductions end would race them.
// Two updates each (the hook re-arms after finish), on an MoE/MLA model in FP32 and
// the h100 Qwen2 student in BF16 (12 buckets of 8.3M gradients each).
// With 2 GPUs and mpirun, the data-parallel check of the CPU test
// (tests/trainer/grad_overlap_checks.h) runs on 2 ranks over NCCL: training with the
// overlapped sum has the weights of the sum after backward, bit for bit, on every rank.
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/device_memory.h"
#include "dist/cuda/nccl_communicator.h"
#include "dist/mpi_env.h"
#include "launch/model_config_fields.h"
#include "model/transformer.h"
#include "tests/catch.h"
#include "tests/mpi_job.h"
#include "tests/trainer/grad_overlap_checks.h"
#include "trainer/grad_overlap.h"
#include "trainer/optimizer.h"

using namespace crucible;

namespace {

std::vector<std::vector<std::int32_t>> random_sequences(std::int64_t n, std::int64_t len, std::int64_t vocab,
                                                        std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::vector<std::vector<std::int32_t>> out(static_cast<std::size_t>(n));
  for (auto& s : out)
    for (std::int64_t i = 0; i < len; ++i) s.push_back(static_cast<std::int32_t>(gen() % vocab));
  return out;
}

}  // namespace

TEST_CASE("grad overlap on the GPU: summed during backward, the bits of the sum after it", "[gpu][grad_overlap]") {
  if (dist::launched_by_mpi()) return;  // under mpirun this binary runs only the workers
  dist::MpiEnv env(nullptr, nullptr);
  dist::NcclCommunicator comm(env, Device::cuda(0));
  REQUIRE(comm.world() == 1);
  const Device dev = Device::cuda(0);
  struct Case {
    const char* preset;
    std::int64_t seqs, len;
  };
  for (const Case k : {Case{"tiny-deepseek-v3", 3, 40}, Case{"h100-qwen-student", 4, 512}}) {
    INFO(k.preset);
    const ModelConfig c = launch::load_model_config(std::string("configs/models/") + k.preset + ".toml");
    ModelWeights init(c, Device::cpu(), false);
    init.init_random(3);
    const auto w_on = init.copy_to(dev, true), w_off = init.copy_to(dev, true);
    Transformer m_on(*w_on), m_off(*w_off);
    trainer::GradOverlap overlap(*w_on, comm);
    CHECK(overlap.buckets() == c.num_hidden_layers);
    Tensor flat_off = trainer::flat_gradients(*w_off);
    for (int update = 0; update < 2; ++update) {
      const Batch b = Batch::from_sequences(random_sequences(k.seqs, k.len, c.vocab_size, 5 + update)).to(dev);
      Tensor dlogp(Shape{b.tokens()}, DType::F32, Device::cpu(), "dlogp");
      for (float& v : dlogp.span<float>()) v = -1.0f / static_cast<float>(b.tokens());
      const Tensor d = dlogp.to(dev);
      w_on->zero_grads();
      w_off->zero_grads();
      {
        ForwardState st;
        st.layer_grads_done = overlap.hook();
        m_on.forward_logprobs(b, st);
        m_on.backward(d, st);
        overlap.finish();
      }
      {
        ForwardState st;
        m_off.forward_logprobs(b, st);
        m_off.backward(d, st);
        comm.all_reduce(flat_off, dist::ReduceOp::Sum, Stream::default_for(dev));
      }
      const Tensor g_on = w_on->grads().flat().to(Device::cpu());
      const Tensor g_off = w_off->grads().flat().to(Device::cpu());
      REQUIRE(g_on.nbytes() == g_off.nbytes());
      const float* a = static_cast<const float*>(g_on.raw());
      const float* o = static_cast<const float*>(g_off.raw());
      std::int64_t differ = 0, nonzero = 0;
      for (std::int64_t i = 0; i < static_cast<std::int64_t>(g_on.nbytes() / sizeof(float)); ++i) {
        differ += std::memcmp(a + i, o + i, sizeof(float)) != 0;
        nonzero += o[i] != 0.0f;
      }
      INFO("update " << update << ": " << differ << " gradient elements differ");
      CHECK(nonzero > 0);
      CHECK(differ == 0);
    }
  }
}

// ---- Two ranks, one GPU each: re-executes this binary under mpirun.

namespace {
constexpr const char* kGpuWorker = "grad overlap worker on GPUs: overlapped sum against the sum after backward";
}  // namespace

TEST_CASE("grad overlap on 2 GPUs: the weights of the sum after backward, bit for bit", "[gpu][grad_overlap][mpi]") {
  if (dist::launched_by_mpi()) return;
  if (cuda_device_count() < 2 || !mpi_test::have_mpirun()) {
    WARN("fewer than 2 GPUs or no mpirun: the 2-rank overlap check is skipped");
    return;
  }
  const mpi_test::MpiJob r = mpi_test::run_mpi_job(2, kGpuWorker, "", 240, "-x LD_LIBRARY_PATH -x NCCL_NVLS_ENABLE");
  INFO(r.output);
  REQUIRE(r.exit_code() == 0);
  REQUIRE_THAT(r.output, Catch::Contains("grad overlap ok world=2"));
  std::printf("%s", r.output.c_str());
}

TEST_CASE("grad overlap worker on GPUs: overlapped sum against the sum after backward",
          "[.][grad_overlap_gpu_worker]") {
  dist::MpiEnv env(nullptr, nullptr);
  std::int64_t failures = -1;
  try {
    const Device gpu = dist::rank_device(env, Device::cuda(0));
    const auto comm = dist::make_communicator(env, gpu);  // NCCL on several ranks
    failures = testing::check_grad_overlap(*comm, gpu);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    std::fflush(stderr);
    env.abort(3);
  }
  REQUIRE(failures == 0);
}
