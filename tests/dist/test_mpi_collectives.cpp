// Multi-rank tests: this test binary re-executes itself under `mpirun -np N` and runs
// one of the hidden worker cases below on every rank.
//
// Invariant under test: on 2 and 3 ranks every collective returns exactly the bits
// that the local reference computes, deterministic reductions repeat bit for bit
// across runs, and a rank that throws (alone, or because the ranks disagree on a
// collective) ends the whole job with a non-zero status and its message, well
// before the 60 s timeout: nothing hangs (DESIGN.md §6).
// Reference: tests/launch/test_mpi.cpp (mpirun from Catch2), dist/communicator.h.
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <regex>
#include <string>

#include "dist/mpi_communicator.h"
#include "dist/mpi_env.h"
#include "tests/catch.h"
#include "tests/mpi_job.h"
#include "tests/dist/collective_checks.h"

using namespace crucible;
using namespace crucible::dist;

namespace {

constexpr const char* kTableWorker = "mpi worker runs the collective case table";
constexpr const char* kThrowWorker = "mpi worker where rank 1 throws inside a collective";
constexpr const char* kMismatchWorker = "mpi worker where ranks disagree on an all_reduce size";

using crucible::mpi_test::have_mpirun;
using JobResult = crucible::mpi_test::MpiJob;

// Runs `np` copies of this binary, each running the one test case named `worker`.
JobResult run_job(int np, const char* worker) { return crucible::mpi_test::run_mpi_job(np, worker, "", 60); }

std::string digest_of(const JobResult& r, int world) {
  std::smatch m;
  const std::regex re("digest world=" + std::to_string(world) + " ([0-9a-f]{16})");
  return std::regex_search(r.output, m, re) ? m[1].str() : std::string();
}

// The failure policy of DESIGN.md §6, as launch/cli.cpp applies it: print the error,
// then MpiEnv::abort, which ends every rank.
template <typename Body>
void run_or_abort(const MpiEnv& env, Body body) {
  try {
    body();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    std::fflush(stderr);
    env.abort(3);
  }
}

}  // namespace

TEST_CASE("collectives on 2 ranks return the reference bits", "[dist][mpi]") {
  if (!have_mpirun()) {
    WARN("mpirun not found; skipped");
    return;
  }
  const JobResult r = run_job(2, kTableWorker);
  INFO(r.output);
  REQUIRE(r.exit_code() == 0);
  REQUIRE(digest_of(r, 2).size() == 16);
}

TEST_CASE("collectives on 3 ranks return the reference bits; deterministic sums repeat across runs",
          "[dist][mpi]") {
  if (!have_mpirun()) return;
  const JobResult first = run_job(3, kTableWorker);
  INFO(first.output);
  REQUIRE(first.exit_code() == 0);
  const JobResult second = run_job(3, kTableWorker);
  INFO(second.output);
  REQUIRE(second.exit_code() == 0);
  const std::string d1 = digest_of(first, 3), d2 = digest_of(second, 3);
  REQUIRE(d1.size() == 16);
  REQUIRE(d1 == d2);
}

TEST_CASE("a rank that throws inside a collective path ends the whole job, with its message",
          "[dist][mpi]") {
  if (!have_mpirun()) return;
  const JobResult r = run_job(3, kThrowWorker);
  INFO(r.output);
  REQUIRE(WIFEXITED(r.status));
  REQUIRE(r.exit_code() != 0);
  REQUIRE(r.exit_code() != 124);  // not a hang ended by `timeout`
  REQUIRE(r.seconds < 30);
  REQUIRE_THAT(r.output, Catch::Contains("must hold world (3)"));
  REQUIRE_THAT(r.output, Catch::Contains("rank 1)"));
}

TEST_CASE("ranks that disagree on a collective's size end the job instead of hanging",
          "[dist][mpi]") {
  if (!have_mpirun()) return;
  const JobResult r = run_job(2, kMismatchWorker);
  INFO(r.output);
  REQUIRE(WIFEXITED(r.status));
  REQUIRE(r.exit_code() != 0);
  REQUIRE(r.exit_code() != 124);
  REQUIRE(r.seconds < 30);
  REQUIRE_THAT(r.output, Catch::Contains("with different sizes"));
}

// ---- Workers: hidden ([.]); run on every rank by the tests above.

TEST_CASE("mpi worker runs the collective case table", "[.][mpi_worker]") {
  MpiEnv env(nullptr, nullptr);
  testing::CheckLog log;
  std::int64_t failures = -1;
  std::uint64_t digest = 0;
  run_or_abort(env, [&] {
    const testing::MakeCommunicator make =
        [&](const CommunicatorConfig& config) -> std::unique_ptr<Communicator> {
      if (env.active()) return std::make_unique<MpiCommunicator>(env, config);
      return std::make_unique<SelfCommunicator>(config);
    };
    testing::run_collective_checks(make, log);
    digest = testing::deterministic_digest(make);
    if (env.active() && !cuda_compiled()) {  // a GPU run of several ranks needs NCCL
      std::string said;
      try {
        make_communicator(env, Device::cuda(0));
      } catch (const Error& e) {
        said = e.what();
      }
      log.expect(said.find("needs the NCCL communicator") != std::string::npos,
                 "make_communicator names NCCL for a GPU run in a build without CUDA");
    }
    // Every rank learns the job's verdict, so all ranks pass or fail together.
    auto comm = make({});
    const auto d = static_cast<std::int64_t>(digest);
    const bool same_digest =
        comm->all_reduce_i64(d, ReduceOp::Max) == d && comm->all_reduce_i64(d, ReduceOp::Min) == d;
    if (!same_digest) log.expect(false, "the digest differs between ranks");
    failures = comm->all_reduce_i64(std::int64_t{log.failures}, ReduceOp::Sum);
    if (comm->rank() == 0)
      std::printf("digest world=%d %016llx checks=%d\n", comm->world(),
                  static_cast<unsigned long long>(digest), log.checks);
  });
  REQUIRE(failures == 0);
}

TEST_CASE("mpi worker where rank 1 throws inside a collective", "[.][mpi_worker]") {
  MpiEnv env(nullptr, nullptr);
  run_or_abort(env, [&] {
    MpiCommunicator comm(env);
    Tensor t(Shape{1000}, DType::F32, Device::cpu(), "grads");
    comm.all_reduce(t, ReduceOp::Sum);
    if (comm.rank() == 1) {
      // A malformed call on one rank only: it throws before communicating ...
      Tensor in(Shape{7}, DType::F32), out(Shape{2}, DType::F32);
      comm.reduce_scatter(in, out, ReduceOp::Sum);
    }
    // ... while the others wait in a collective that rank 1 never joins.
    comm.all_reduce(t, ReduceOp::Sum);
    comm.barrier();
  });
}

TEST_CASE("mpi worker where ranks disagree on an all_reduce size", "[.][mpi_worker]") {
  MpiEnv env(nullptr, nullptr);
  run_or_abort(env, [&] {
    MpiCommunicator comm(env);
    Tensor t(Shape{comm.rank() == 0 ? 12 : 10}, DType::F32, Device::cpu(), "grads");
    comm.all_reduce(t, ReduceOp::Sum);
    comm.barrier();
  });
}
