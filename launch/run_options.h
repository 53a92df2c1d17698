// launch/run_options.h: the [run] and [log] tables of a run config.
//
// Only the process-level settings live here; each component's own config struct
// (model, stages, ...) is described next to its loader.
#pragma once

#include <cstdint>
#include <string>

#include "core/log.h"
#include "launch/config_fields.h"

namespace crucible::launch {

struct RunOptions {
  std::string device = "cpu";  // "cpu", "cuda", "cuda:N"
  std::int64_t seed = 1234;
  bool deterministic = true;   // rank-ordered collectives (dist::ReductionMode), bit-identical runs
  std::string out_dir = "runs/demo";
  std::int64_t threads = 0;    // CPU threads (0 = all cores)
  std::int64_t zero = 0;       // ZeRO stage of data parallel training: 0 = off, 1 = optimizer state sharded
  bool overlap_reduce = true;  // sum each layer's gradients over the ranks during backward (zero = 0)
  std::string kv_cache = "auto";  // generation's KV cache: "auto" (rollout::default_cache_dtype), "f32", "bf16"

  void validate() const;
};

void describe(Fields& f, RunOptions& r);
void describe(Fields& f, LogOptions& l);

}  // namespace crucible::launch
