// The overlapped data-parallel gradient sum (trainer/grad_overlap.h) against the sum
// of the whole flat buffer after backward.
//
// Invariant under test: under `mpirun -np 2` and `-np 3`, training a real model with
// sft_accumulate + AdamW, where AdamW's last_backward_hook sums each layer's gradients
// during the last backward (run.overlap_reduce = true), gives every rank the weights
// and gradient norms of the same training with the sum done once after backward
// (overlap_reduce = false), bit for bit (deterministic, rank-ordered reduction). The
// ranks hold different numbers of examples per update, zero included, so some ranks
// sum their buckets during backward while others sum them in step(); the hook fires
// once per decoder layer. One process: every decoder layer of the presets is a bucket
// of its own, and a layer reported twice in one update is refused.
// The job's check (grad_overlap_checks.h) also runs on 2 GPUs over NCCL:
// tests/gpu/test_grad_overlap.cpp. Reference: tests/trainer/test_zero.cpp (the same
// mpirun-from-Catch2 pattern).
#include <cstdio>
#include <string>

#include "dist/communicator.h"
#include "dist/mpi_communicator.h"
#include "dist/mpi_env.h"
#include "launch/model_config_fields.h"
#include "tests/catch.h"
#include "tests/mpi_job.h"
#include "tests/trainer/grad_overlap_checks.h"
#include "trainer/grad_overlap.h"

using namespace crucible;
using namespace crucible::trainer;

namespace {

constexpr const char* kWorker = "grad overlap worker: overlapped sum against the sum after backward";

ModelConfig preset(const std::string& name) {
  return launch::load_model_config(std::string(CRUCIBLE_SOURCE_DIR) + "/configs/models/" + name + ".toml");
}

}  // namespace

TEST_CASE("grad overlap: one bucket per decoder layer; a layer reported twice is refused", "[grad_overlap]") {
  dist::SelfCommunicator comm;
  for (const char* name : {"tiny-deepseek-v3", "tiny-qwen2", "tiny-llama"}) {
    INFO(name);
    ModelWeights w(preset(name), Device::cpu(), true);
    GradOverlap overlap(w, comm);
    CHECK(overlap.buckets() == w.config().num_hidden_layers);
    const auto hook = overlap.hook();
    hook(1);
    REQUIRE_THROWS_WITH(hook(1), Catch::Contains("reported twice"));
    overlap.finish();
    hook(1);  // a new update
    overlap.finish();
  }
}

TEST_CASE("grad overlap on 2 and 3 ranks: the weights of the sum after backward, bit for bit",
          "[grad_overlap][mpi]") {
  if (!mpi_test::have_mpirun()) {
    WARN("mpirun not found; skipped");
    return;
  }
  for (const int np : {2, 3}) {
    const mpi_test::MpiJob r = mpi_test::run_mpi_job(np, kWorker);
    INFO(r.output);
    REQUIRE(r.exit_code() == 0);
    REQUIRE_THAT(r.output, Catch::Contains("grad overlap ok world=" + std::to_string(np)));
    std::printf("%s", r.output.c_str());
  }
}

// ---- Worker: hidden ([.]); run on every rank by the test above.

TEST_CASE("grad overlap worker: overlapped sum against the sum after backward", "[.][grad_overlap_worker]") {
  dist::MpiEnv env(nullptr, nullptr);
  std::int64_t failures = -1;
  try {
    dist::MpiCommunicator comm(env);
    failures = testing::check_grad_overlap(comm, Device::cpu());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    std::fflush(stderr);
    env.abort(3);
  }
  REQUIRE(failures == 0);
}
