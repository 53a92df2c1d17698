// core/profile.h: where a step's time goes, by named scope.
//
// Off unless the environment sets CRUCIBLE_PROFILE=1. When on, each Scope synchronizes
// the CUDA device (if any) at entry and exit and adds its wall time to its name's
// total, so the figures are inclusive times of serialized work: good for a
// breakdown, not for throughput (the syncs themselves cost a few microseconds each).
// Scopes nest freely; names carry their nesting by convention ("moe.experts" inside
// "moe.fwd"). report() prints the totals, largest first.
//
//   CRUCIBLE_PROFILE=1 bench_gpu_model_step ...
#pragma once

#include <string>

namespace crucible::profile {

bool enabled();

class Scope {
 public:
  explicit Scope(const char* name);
  ~Scope();
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

 private:
  const char* name_;
  double t0_ = 0;
};

// The table of totals (ms, calls, share of the largest) since the last reset.
std::string report();
void reset();

}  // namespace crucible::profile

#define CRUCIBLE_PROFILE_CAT2(a, b) a##b
#define CRUCIBLE_PROFILE_CAT(a, b) CRUCIBLE_PROFILE_CAT2(a, b)
#define CRUCIBLE_PROFILE_SCOPE(name) \
  ::crucible::profile::Scope CRUCIBLE_PROFILE_CAT(crucible_profile_scope_, __LINE__)(name)
