// tests/dist/collective_checks.h: one table of collective cases, run on any world.
//
// The same checks run in-process on SelfCommunicator (test_communicator.cpp) and on
// 2 and 3 MPI ranks (the hidden worker of test_mpi_collectives.cpp). Every rank builds
// every rank's inputs from (seed, rank), so it knows the exact expected result: the
// rank-ordered fold (reduce_in_rank_order) in deterministic mode, exact small-integer
// sums in native mode. A failed check is counted and printed, never thrown: a rank
// that stopped calling collectives would leave the others waiting.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "dist/communicator.h"

namespace crucible::dist::testing {

struct CheckLog {
  int rank = 0;
  int checks = 0;
  int failures = 0;
  void expect(bool ok, const std::string& what);
};

// Builds a communicator over the same ranks with another config (mode, chunking).
using MakeCommunicator = std::function<std::unique_ptr<Communicator>(const CommunicatorConfig&)>;

// Runs every case; all ranks must call it together.
void run_collective_checks(const MakeCommunicator& make, CheckLog& log);

// FNV-1a over the bits of deterministic reductions of fixed inputs (same on every
// rank; compared across two runs of the job).
std::uint64_t deterministic_digest(const MakeCommunicator& make);

}  // namespace crucible::dist::testing
