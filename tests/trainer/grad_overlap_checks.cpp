// tests/trainer/grad_overlap_checks.cpp: see grad_overlap_checks.h.
#include "tests/trainer/grad_overlap_checks.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "launch/model_config_fields.h"
#include "model/transformer.h"
#include "trainer/optimizer.h"
#include "trainer/sft.h"

namespace crucible::testing {

namespace {

// Rank `rank`'s examples of update `step`: (rank + step) % 3 of them, lengths 9..20,
// loss on the second half.
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

// Relative to the working directory (the repository root, where the device script runs
// test_gpu from a build made elsewhere), else to the source tree of this build.
std::string preset_path(const char* name) {
  const std::string rel = std::string("configs/models/") + name + ".toml";
  return std::filesystem::exists(rel) ? rel : std::string(CRUCIBLE_SOURCE_DIR) + "/" + rel;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  const Tensor ha = a.to(Device::cpu()), hb = b.to(Device::cpu());
  return ha.nbytes() == hb.nbytes() && std::memcmp(ha.raw(), hb.raw(), ha.nbytes()) == 0;
}

}  // namespace

std::int64_t check_grad_overlap(dist::Communicator& comm, Device dev) {
  using namespace trainer;
  const int rank = comm.rank();
  std::int64_t failures = 0;
  auto expect = [&](bool ok, const std::string& what) {
    if (ok) return;
    ++failures;
    std::fprintf(stderr, "rank %d: FAILED %s\n", rank, what.c_str());
  };
  constexpr int kSteps = 3;
  for (const char* name : {"tiny-deepseek-v3", "tiny-qwen2"}) {
    const ModelConfig cfg = launch::load_model_config(preset_path(name));
    OptimizerConfig oc;
    oc.lr = 1e-2;
    oc.clip_norm = 0.5;  // active: the norm is taken over the summed gradients
    ModelWeights init(cfg, Device::cpu(), false);
    init.init_random(5);
    const auto w_on = init.copy_to(dev, true), w_off = init.copy_to(dev, true);
    Transformer m_on(*w_on), m_off(*w_off);
    AdamW on(*w_on, oc, DataParallel{&comm, 0, true});
    AdamW off(*w_off, oc, DataParallel{&comm, 0, false});
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
      w_on->zero_grads();
      w_off->zero_grads();
      // max_tokens 24: two or more examples pack into several rows (backwards).
      sft_accumulate(m_on, mine, std::max(global, 1.0), std::max(seqs, 1.0), 24, 1.0, nullptr, counted);
      sft_accumulate(m_off, mine, std::max(global, 1.0), std::max(seqs, 1.0), 24);
      backwards += !mine.empty();
      const StepStats s_on = on.step(step, kSteps), s_off = off.step(step, kSteps);
      expect(s_on.grad_norm == s_off.grad_norm, std::string(name) + ": grad norm, bit for bit");
    }
    expect(hook_calls == backwards * cfg.num_hidden_layers,
           std::string(name) + ": the hook fired once per layer of each update's last backward");
    expect(same_bits(w_on->params().flat(), w_off->params().flat()), std::string(name) + ": weights, bit for bit");
    // Every rank holds the same weights: rank 0's broadcast equals this rank's.
    Tensor theirs = w_on->params().flat().clone();
    comm.broadcast(theirs, 0, Stream::default_for(dev));
    expect(same_bits(theirs, w_on->params().flat()), std::string(name) + ": the ranks' weights agree");
    if (rank == 0)
      std::printf("grad overlap case %s on %s world=%d: %d updates, %d hook calls on rank 0\n", name,
                  dev.str().c_str(), comm.world(), kSteps, hook_calls);
  }
  failures = comm.all_reduce_i64(failures, dist::ReduceOp::Sum);
  if (rank == 0 && failures == 0) std::printf("grad overlap ok world=%d\n", comm.world());
  std::fflush(stdout);
  return failures;
}

}  // namespace crucible::testing
