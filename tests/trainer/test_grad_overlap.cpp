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
// Reference: tests/trainer/test_zero.cpp (the same mpirun-from-Catch2 pattern).
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "dist/communicator.h"
#include "dist/mpi_communicator.h"
#include "dist/mpi_env.h"
#include "launch/model_config_fields.h"
#include "tests/catch.h"
#include "tests/mpi_job.h"
#include "trainer/grad_overlap.h"
#include "trainer/optimizer.h"
#include "trainer/sft.h"

using namespace crucible;
using namespace crucible::trainer;

namespace {

constexpr const char* kWorker = "grad overlap worker: overlapped sum against the sum after backward";

ModelConfig preset(const std::string& name) {
  return launch::load_model_config(std::string(CRUCIBLE_SOURCE_DIR) + "/configs/models/" + name + ".toml");
}

// Rank `rank`'s examples of update `step`: (rank + step) % 3 of them (so some rank
// has none in some update), lengths 9..20, loss on the second half.
std::vector<data::TokenizedExample> examples_of(int rank, int step, std::int64_t vocab) {
  std::vector<data::TokenizedExample> out;
  std::uint64_t z = 0x9e3779b97f4a7c15ull * static_cast<std::uint64_t>(rank * 131 + step + 7);
  auto next = [&] {
    z ^= z >> 31;
    z *= 0xbf58476d1ce4e5b9ull;
    z ^= z >> 29;
    return z;
  };
  for (int e = 0; e < (rank + step) % 3; ++e) {
    data::TokenizedExample ex;
    const std::size_t n = 9 + next() % 12;
    for (std::size_t i = 0; i < n; ++i) {
      ex.ids.push_back(static_cast<std::int32_t>(next() % static_cast<std::uint64_t>(vocab)));
      ex.loss_mask.push_back(i >= n / 2 ? 1 : 0);
    }
    out.push_back(std::move(ex));
  }
  return out;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.nbytes() == b.nbytes() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
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
  if (!testing::have_mpirun()) {
    WARN("mpirun not found; skipped");
    return;
  }
  for (const int np : {2, 3}) {
    const testing::MpiJob r = testing::run_mpi_job(np, kWorker);
    INFO(r.output);
    REQUIRE(r.exit_code() == 0);
    REQUIRE_THAT(r.output, Catch::Contains("grad overlap ok world=" + std::to_string(np)));
    std::printf("%s", r.output.c_str());
  }
}

// ---- Worker: hidden ([.]); run on every rank by the test above.

TEST_CASE("grad overlap worker: overlapped sum against the sum after backward", "[.][grad_overlap_worker]") {
  dist::MpiEnv env(nullptr, nullptr);
  int failures = 0;
  try {
    dist::MpiCommunicator comm(env);
    const int rank = comm.rank();
    auto expect = [&](bool ok, const std::string& what) {
      if (ok) return;
      ++failures;
      std::fprintf(stderr, "rank %d: FAILED %s\n", rank, what.c_str());
    };
    constexpr int kSteps = 3;
    for (const char* name : {"tiny-deepseek-v3", "tiny-qwen2"}) {
      const ModelConfig cfg = preset(name);
      OptimizerConfig oc;
      oc.lr = 1e-2;
      oc.clip_norm = 0.5;  // active: the norm is taken over the summed gradients
      ModelWeights w_on(cfg, Device::cpu(), true), w_off(cfg, Device::cpu(), true);
      w_on.init_random(5);
      w_off.init_random(5);
      Transformer m_on(w_on), m_off(w_off);
      AdamW on(w_on, oc, DataParallel{&comm, 0, true});
      AdamW off(w_off, oc, DataParallel{&comm, 0, false});
      expect(static_cast<bool>(on.last_backward_hook()) && !off.last_backward_hook(), "hook only when overlapping");
      int hook_calls = 0, backwards = 0;
      for (int step = 0; step < kSteps; ++step) {
        const auto mine = examples_of(rank, step, cfg.vocab_size);
        const double global = comm.all_reduce_f64(response_tokens(mine), dist::ReduceOp::Sum);
        const double seqs = comm.all_reduce_f64(static_cast<double>(mine.size()), dist::ReduceOp::Sum);
        const auto hook = on.last_backward_hook();
        const std::function<void(std::int64_t)> counted = [&](std::int64_t l) {
          ++hook_calls;
          hook(l);
        };
        for (ModelWeights* w : {&w_on, &w_off}) w->zero_grads();
        // max_tokens 24: two or more examples pack into several rows (backwards).
        sft_accumulate(m_on, mine, std::max(global, 1.0), std::max(seqs, 1.0), 24, 1.0, nullptr, counted);
        sft_accumulate(m_off, mine, std::max(global, 1.0), std::max(seqs, 1.0), 24);
        backwards += !mine.empty();
        const StepStats s_on = on.step(step, kSteps), s_off = off.step(step, kSteps);
        expect(s_on.grad_norm == s_off.grad_norm, std::string(name) + ": grad norm, bit for bit");
      }
      expect(hook_calls == backwards * cfg.num_hidden_layers,
             std::string(name) + ": the hook fired once per layer of each update's last backward");
      expect(same_bits(w_on.params().flat(), w_off.params().flat()), std::string(name) + ": weights, bit for bit");
      // Every rank holds the same weights: rank 0's broadcast equals this rank's.
      Tensor mine = w_on.params().flat().clone();
      comm.broadcast(mine, 0);
      expect(same_bits(mine, w_on.params().flat()), std::string(name) + ": the ranks' weights agree");
      if (rank == 0)
        std::printf("grad overlap case %s world=%d: %d updates, %d hook calls on rank 0\n", name, comm.world(),
                    kSteps, hook_calls);
    }
    failures = static_cast<int>(comm.all_reduce_i64(std::int64_t{failures}, dist::ReduceOp::Sum));
    if (rank == 0 && failures == 0) std::printf("grad overlap ok world=%d\n", comm.world());
    std::fflush(stdout);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    std::fflush(stderr);
    env.abort(3);
  }
  REQUIRE(failures == 0);
}
