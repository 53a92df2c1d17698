// tests/trainer/grad_overlap_checks.h: the data-parallel check of trainer/grad_overlap.h,
// run by the CPU workers (MPI, tests/trainer/test_grad_overlap.cpp) and the GPU ones
// (NCCL, tests/gpu/test_grad_overlap.cpp).
#pragma once

#include <cstdint>

#include "core/dtype.h"
#include "dist/communicator.h"

namespace crucible::testing {

// Collective: on every rank of `comm`, trains tiny-deepseek-v3 and tiny-qwen2 on `dev`
// for 3 updates twice, with the per-layer hook (AdamW overlap_reduce) and with the sum
// after backward, each rank on its own examples ((rank + update) % 3 of them, so some
// rank has none in some update). Checks, printing each failure with its rank: the same
// gradient norms and weights bit for bit, the hook fired once per layer of each last
// backward, every rank holds rank 0's weights. Returns the job's number of failures;
// rank 0 prints "grad overlap ok world=<N>" when it is 0.
std::int64_t check_grad_overlap(dist::Communicator& comm, Device dev);

}  // namespace crucible::testing
