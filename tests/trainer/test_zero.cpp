// ZeRO-1 (trainer/zero.h) against the replicated optimizer and one process.
//
// Invariant under test: under `mpirun -np 2` and `-np 3`, AdamW with ZeRO-1 (moments
// and the update sharded, reduce_scatter + all_gather) gives every rank the weights
// of the replicated data-parallel AdamW (all_reduce, full moments), and both give the
// weights of one process stepping on the rank-ordered sum of the ranks' gradients:
// bit for bit without clipping; with clipping the norm of a tensor split between two
// ranks' blocks is summed in parts, so the check there is a tolerance (1e-6 relative)
// and the job prints how many elements differ at all. The MoE router-bias rule runs
// between steps. Each rank's moments are 1/world of the full ones (plus < 64
// elements of padding per rank). Checkpointed moments (gathered to rank 0, full
// layout) load back into the shard of the same world and of any other world.
// Reference: ZeRO (Rajbhandari et al., SC'20) §5.1; tests/dist/test_mpi_collectives.cpp
// for the mpirun-from-Catch2 pattern.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include "checkpoints/train_state.h"
#include "core/numerics.h"
#include "dist/mpi_communicator.h"
#include "dist/mpi_env.h"
#include "dist/shard.h"
#include "launch/model_config_fields.h"
#include "tests/catch.h"
#include "tests/worst.h"
#include "tests/mpi_job.h"
#include "trainer/optimizer.h"

using namespace crucible;
using namespace crucible::trainer;

namespace {

constexpr const char* kWorker = "zero worker: ZeRO-1 against replicated AdamW and one process";

// A fixed pseudo-random gradient element of (rank, step, i) in [-scale, scale).
float synthetic_grad(int rank, int step, std::int64_t i, float scale) {
  std::uint64_t z = (static_cast<std::uint64_t>(i) * 0x9e3779b97f4a7c15ull) ^
                    (static_cast<std::uint64_t>(rank + 1) << 40) ^ (static_cast<std::uint64_t>(step) << 52);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return scale * (static_cast<float>(z >> 40) / static_cast<float>(1ull << 24) * 2.0f - 1.0f);
}

// Compares two FP32 or BF16 buffers: elements that differ, and the largest
// |a - b| / max(|b|, 1e-3).
struct Diff {
  std::int64_t differ = 0;
  double max_rel = 0;
};
Diff compare(const Tensor& a, const Tensor& b) {
  Diff d;
  REQUIRE(a.numel() == b.numel());
  REQUIRE(a.dtype() == b.dtype());
  const std::size_t es = dtype_size(a.dtype());
  const auto* pa = static_cast<const unsigned char*>(a.raw());
  const auto* pb = static_cast<const unsigned char*>(b.raw());
  for (std::int64_t i = 0; i < a.numel(); ++i) {
    if (std::memcmp(pa + i * es, pb + i * es, es) == 0) continue;
    ++d.differ;
    double x, y;
    if (a.dtype() == DType::F32) {
      x = a.data<float>()[i], y = b.data<float>()[i];
    } else {
      x = bf16_to_f32(a.data<std::uint16_t>()[i]), y = bf16_to_f32(b.data<std::uint16_t>()[i]);
    }
    d.max_rel = testing::worst_of(d.max_rel, std::abs(x - y) / std::max(std::abs(y), 1e-3));
  }
  return d;
}

// An arena's whole buffer as elements of its (one) dtype.
Tensor elems(const Arena& a) {
  const DType t = a.layout().entries().front().dtype;
  return a.flat().view_as(t, Shape{static_cast<std::int64_t>(a.bytes() / dtype_size(t))});
}

// A failed check is counted and printed, never thrown (the other ranks would hang).
struct Checks {
  int rank = 0, failures = 0;
  void expect(bool ok, const std::string& what) {
    if (ok) return;
    ++failures;
    std::fprintf(stderr, "rank %d: FAILED %s\n", rank, what.c_str());
  }
};

struct Case {
  const char* name;
  const char* preset;  // configs/models/<preset>.toml
  bool bf16_moments;
  double clip_norm;
  bool exact;  // params and moments must match bit for bit
};

}  // namespace

TEST_CASE("ZeRO-1 on 2 and 3 ranks matches replicated AdamW and one process; moments are 1/world",
          "[zero][mpi]") {
  if (!mpi_test::have_mpirun()) {
    WARN("mpirun not found; skipped");
    return;
  }
  for (const int np : {2, 3}) {
    const std::string dir =
        (std::filesystem::temp_directory_path() / ("crucible_zero_" + std::to_string(::getpid()) + "_" + std::to_string(np)))
            .string();
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    const mpi_test::MpiJob r = mpi_test::run_mpi_job(np, kWorker, "CRUCIBLE_ZERO_TEST_DIR='" + dir + "'");
    std::filesystem::remove_all(dir);
    INFO(r.output);
    REQUIRE(r.exit_code() == 0);
    REQUIRE_THAT(r.output, Catch::Contains("zero ok world=" + std::to_string(np)));
    std::printf("%s", r.output.c_str());  // the figures (memory, differences) for the log
  }
}

// ---- Worker: hidden ([.]); run on every rank by the test above.

TEST_CASE("zero worker: ZeRO-1 against replicated AdamW and one process", "[.][zero_worker]") {
  dist::MpiEnv env(nullptr, nullptr);
  int failures = 0;
  try {
    dist::MpiCommunicator comm(env);
    const int W = comm.world(), rank = comm.rank();
    Checks check{rank};
    const std::string dir = std::getenv("CRUCIBLE_ZERO_TEST_DIR");
    constexpr int kSteps = 4;
    // tiny-deepseek-v3 (MoE, router bias) splits evenly over 2 and 3 ranks; tiny-qwen2
    // (q/k/v biases) leaves padding in the last block.
    const Case cases[] = {{"deepseek-v3, bf16 moments, no clipping", "tiny-deepseek-v3", true, 0.0, true},
                          {"deepseek-v3, fp32 moments, clipping active", "tiny-deepseek-v3", false, 0.05, false},
                          {"qwen2, bf16 moments, clipping active", "tiny-qwen2", true, 0.05, false}};
    for (const Case& c : cases) {
      const ModelConfig cfg = launch::load_model_config(std::string(CRUCIBLE_SOURCE_DIR) + "/configs/models/" +
                                                        c.preset + ".toml");
      OptimizerConfig oc;
      oc.lr = 1e-2;
      oc.warmup_steps = 1;
      oc.bf16_moments = c.bf16_moments;
      oc.clip_norm = c.clip_norm;
      // Three copies of one initial model: replicated over the ranks, ZeRO-1 over the
      // ranks, and one process (this rank alone) fed the job's summed gradients.
      ModelWeights w_rep(cfg, Device::cpu()), w_zero(cfg, Device::cpu()), w_one(cfg, Device::cpu());
      for (ModelWeights* w : {&w_rep, &w_zero, &w_one}) w->init_random(11);
      AdamW rep(w_rep, oc, DataParallel{&comm, 0});
      AdamW zero(w_zero, oc, DataParallel{&comm, 1});
      AdamW one(w_one, oc);
      check.expect(!rep.sharded() && zero.sharded(), "sharding flags");
      const dist::FlatShards& shards = *zero.shards();

      // Memory: m + v of this rank = 2 * shard_elems elements, about 1/world of the full moments.
      const std::size_t es = c.bf16_moments ? 2 : 4;
      check.expect(zero.state_bytes() == 2 * static_cast<std::size_t>(shards.shard_elems()) * es, "shard bytes");
      check.expect(zero.full_state_bytes() == rep.state_bytes(), "full bytes");
      check.expect(zero.state_bytes() * static_cast<std::size_t>(W) <=
                       rep.state_bytes() + 2 * es * static_cast<std::size_t>(shards.align() * W),
                   "moment memory within 1/world plus padding");

      const std::int64_t total = shards.total();
      double max_norm_rel = 0;
      int clipped = 0;
      for (int step = 0; step < kSteps; ++step) {
        // Rank r's gradients; the one process gets the rank-ordered fold ((g0 + g1) + g2).
        for (ModelWeights* w : {&w_rep, &w_zero, &w_one}) w->zero_grads();
        float* g_rep = w_rep.grads().flat_elems(DType::F32, total).data<float>();
        float* g_zero = w_zero.grads().flat_elems(DType::F32, total).data<float>();
        float* g_one = w_one.grads().flat_elems(DType::F32, total).data<float>();
        for (const auto& e : w_rep.layout().entries()) {
          const dist::Range span = dist::entry_elems(e);
          for (std::int64_t i = span.begin; i < span.end; ++i) {
            g_rep[i] = g_zero[i] = synthetic_grad(rank, step, i, 0.01f * static_cast<float>(rank + 1));
            float sum = synthetic_grad(0, step, i, 0.01f);
            for (int r = 1; r < W; ++r) sum += synthetic_grad(r, step, i, 0.01f * static_cast<float>(r + 1));
            g_one[i] = sum;
          }
        }
        const StepStats s_rep = rep.step(step, kSteps);
        const StepStats s_zero = zero.step(step, kSteps);
        const StepStats s_one = one.step(step, kSteps);
        clipped += s_zero.clipped;
        check.expect(s_rep.clipped == s_zero.clipped && s_one.clipped == s_zero.clipped, "clipping agrees");
        check.expect(s_rep.grad_norm == s_one.grad_norm, "replicated norm == one-process norm, bit for bit");
        max_norm_rel = testing::worst_of(max_norm_rel, std::abs(s_zero.grad_norm - s_rep.grad_norm) / s_rep.grad_norm);
        // The router-bias rule after the step: each rank's expert loads, summed over ranks.
        std::vector<std::vector<std::int64_t>> load, load_sum;
        for (std::int64_t l = 0; l < cfg.num_hidden_layers; ++l) {
          if (!cfg.is_moe_layer(l)) continue;
          load.emplace_back(), load_sum.emplace_back();
          for (std::int64_t e = 0; e < cfg.n_routed_experts; ++e) {
            load.back().push_back((e * 7 + rank * 3 + step) % 11);
            std::int64_t s = 0;
            for (int r = 0; r < W; ++r) s += (e * 7 + r * 3 + step) % 11;
            load_sum.back().push_back(s);
          }
        }
        balance_router(w_rep, load, comm);
        balance_router(w_zero, load, comm);
        update_router_bias(w_one, load_sum, cfg.bias_update_speed);
      }
      check.expect(max_norm_rel < 1e-12, "ZeRO-1 norm within 1e-12 of the replicated one");
      if (c.clip_norm > 0) check.expect(clipped == kSteps, "clipping was active");

      // Weights: ZeRO-1 vs replicated vs one process.
      const Tensor p_rep = w_rep.params().flat_elems(DType::F32, total);
      const Tensor p_zero = w_zero.params().flat_elems(DType::F32, total);
      const Tensor p_one = w_one.params().flat_elems(DType::F32, total);
      const Diff d_zr = compare(p_zero, p_rep), d_ro = compare(p_rep, p_one);
      // Moments: ZeRO-1's gathered to rank 0 vs the replicated optimizer's.
      auto [m_full, v_full] = zero.full_moments(0);
      Diff d_m, d_v;
      if (rank == 0) {
        d_m = compare(elems(m_full), elems(rep.m()));
        d_v = compare(elems(v_full), elems(rep.v()));
      }
      if (c.exact) {
        check.expect(d_zr.differ == 0, std::string(c.name) + ": ZeRO-1 params == replicated, bit for bit");
        check.expect(d_ro.differ == 0, std::string(c.name) + ": replicated params == one process, bit for bit");
        check.expect(d_m.differ == 0 && d_v.differ == 0, std::string(c.name) + ": gathered moments == replicated");
      } else {
        check.expect(d_zr.max_rel <= 1e-6 && d_ro.max_rel <= 1e-6, std::string(c.name) + ": params within 1e-6");
        check.expect(d_m.max_rel <= 1e-5 && d_v.max_rel <= 1e-5, std::string(c.name) + ": moments within 1e-5");
      }
      // The replicated weights are the same on every rank (as are ZeRO-1's, checked above).
      if (rank == 0)
        std::printf("zero case '%s' world=%d: params differing zero-vs-replicated %lld (max rel %.3g), "
                    "replicated-vs-one-process %lld (max rel %.3g); moments differing m %lld v %lld; "
                    "max |norm diff|/norm %.3g; moments per rank %zu B of %zu B (1/%.3f); padding %lld elements\n",
                    c.name, W, static_cast<long long>(d_zr.differ), d_zr.max_rel, static_cast<long long>(d_ro.differ),
                    d_ro.max_rel, static_cast<long long>(d_m.differ), static_cast<long long>(d_v.differ),
                    max_norm_rel, zero.state_bytes(), zero.full_state_bytes(),
                    static_cast<double>(zero.full_state_bytes()) / static_cast<double>(zero.state_bytes()),
                    static_cast<long long>(shards.padding()));

      // Checkpoint: rank 0 writes the gathered moments; every rank loads its shard
      // back, and one process re-shards the file for another world (W + 1).
      const std::string path = dir + "/zero-" + std::string(c.preset) + "-" + std::to_string(c.bf16_moments) + ".h5";
      if (rank == 0) {
        checkpoints::Moments mom{&m_full, &v_full};
        checkpoints::save_train_state(path, w_zero, mom, checkpoints::TrainState{"sft", 0, kSteps, "", "{}"});
      }
      comm.barrier();
      {
        ModelWeights w_back(cfg, Device::cpu());
        AdamW back(w_back, oc, DataParallel{&comm, 1});
        checkpoints::load_train_state(path, w_back,
                                      checkpoints::MomentShard{back.shards(), rank, back.m().view(0), back.v().view(0)});
        check.expect(compare(elems(back.m()), elems(zero.m())).differ == 0 &&
                         compare(elems(back.v()), elems(zero.v())).differ == 0,
                     std::string(c.name) + ": moment shard reloads bit for bit");
        check.expect(compare(w_back.params().flat_elems(DType::F32, total), p_zero).differ == 0,
                     std::string(c.name) + ": weights reload");
      }
      if (rank == 0) {
        const dist::FlatShards other(total, W + 1);
        const Layout ml = w_zero.layout().with_dtype(c.bf16_moments ? DType::BF16 : DType::F32);
        std::int64_t differ = 0;
        for (int r = 0; r < W + 1; ++r) {
          ModelWeights w_back(cfg, Device::cpu());
          Tensor m(Shape{other.shard_elems()}, ml.entries()[0].dtype), v(Shape{other.shard_elems()}, ml.entries()[0].dtype);
          checkpoints::load_train_state(path, w_back, checkpoints::MomentShard{&other, r, m, v});
          for (const auto& e : ml.entries())
            for (const auto& piece : dist::entry_owners(other, w_zero.layout().at(e.name))) {
              if (piece.rank != r) continue;
              const Tensor want = m_full.view(e.name).reshape(Shape{e.shape.numel()});
              differ += compare(m.slice(piece.shard_offset, piece.shard_offset + piece.elems.size()),
                                want.slice(piece.span_offset, piece.span_offset + piece.elems.size()))
                            .differ;
            }
        }
        check.expect(differ == 0, std::string(c.name) + ": moments re-shard onto world + 1");
      }
      comm.barrier();
    }
    failures = static_cast<int>(comm.all_reduce_i64(std::int64_t{check.failures}, dist::ReduceOp::Sum));
    if (rank == 0 && failures == 0) std::printf("zero ok world=%d\n", W);
    std::fflush(stdout);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    std::fflush(stderr);
    env.abort(3);
  }
  REQUIRE(failures == 0);
}
