// launch/run_options.cpp: [run] and [log] tables.
#include "launch/run_options.h"

#include "core/dtype.h"
#include "core/error.h"

namespace crucible::launch {

void RunOptions::validate() const {
  CRUCIBLE_USER_CHECK(parse_device(device).has_value(), "run.device: '", device,
                      "' is not a device (cpu, cuda, cuda:N)");
  CRUCIBLE_USER_CHECK(!out_dir.empty(), "run.out_dir must not be empty");
}

void describe(Fields& f, RunOptions& r) {
  f.field("device", r.device, "cpu, cuda or cuda:N");
  f.field("seed", r.seed, "seed of every random stream", Range{.min = 0});
  f.field("deterministic", r.deterministic,
          "rank-ordered gradient reductions, bit-identical run to run (false: the MPI/NCCL native reduction)");
  f.field("out_dir", r.out_dir, "run directory");
  f.field("threads", r.threads, "CPU threads (0 = all cores)", Range{.min = 0, .max = 1024});
  f.field("zero", r.zero,
          "ZeRO stage under mpirun: 0 = every rank holds all AdamW state, 1 = moments and update sharded over ranks",
          Range{.min = 0, .max = 1});
  f.field("overlap_reduce", r.overlap_reduce,
          "under mpirun with zero = 0: sum each layer's gradients over the ranks while backward runs on "
          "(false: the whole buffer after backward; the same result either way)");
  static constexpr std::string_view kKvCache[] = {"auto", "f32", "bf16"};
  f.choice("kv_cache", r.kv_cache, kKvCache,
           "KV cache of generation (evaluation, GRPO, rejection sampling, teacher traces): auto = BF16 for "
           "MLA models on CUDA (no operand changes: the decode kernels multiply the latent as BF16), else f32");
}

void describe(Fields& f, LogOptions& l) {
  static constexpr std::pair<std::string_view, LogLevel> kLevels[] = {
      {"debug", LogLevel::Debug}, {"info", LogLevel::Info}, {"warn", LogLevel::Warn},
      {"error", LogLevel::Error}};
  f.enumeration("level", l.level, kLevels, "debug, info, warn or error");
  f.field("all_ranks", l.all_ranks, "every MPI rank logs (default rank 0 only)");
}

}  // namespace crucible::launch
