// tests/mpi_job.h: a Catch2 test that re-executes its own binary under `mpirun -np N`,
// each rank running one hidden worker test case, and collects the job's output.
// (The multi-rank tests: tests/dist/test_mpi_collectives.cpp, tests/trainer/test_zero.cpp
// and test_grad_overlap.cpp, tests/gpu/test_nccl.cpp and test_grad_overlap.cpp.)
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "tests/catch.h"

namespace crucible::mpi_test {

struct MpiJob {
  int status = -1;  // pclose status
  std::string output;
  double seconds = 0;  // wall clock of the whole job
  int exit_code() const { return WIFEXITED(status) ? WEXITSTATUS(status) : -1; }
};

inline bool have_mpirun() { return std::system("command -v mpirun >/dev/null 2>&1") == 0; }

inline std::string self_exe() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  REQUIRE(n > 0);
  return std::string(buf, static_cast<std::size_t>(n));
}

// Runs `np` ranks of this binary, each running the test case named `worker`;
// `env` ("NAME=value ...") is set for the job, `mpirun_args` go to mpirun (e.g. "-x
// LD_LIBRARY_PATH"). Output is stdout and stderr together.
inline MpiJob run_mpi_job(int np, const std::string& worker, const std::string& env = "", int timeout_s = 120,
                          const std::string& mpirun_args = "") {
  const std::string cmd = "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_plm_rsh_agent= " + env +
                          " timeout " + std::to_string(timeout_s) + " mpirun --oversubscribe --bind-to none " + mpirun_args + " -np " +
                          std::to_string(np) + " '" + self_exe() + "' '" + worker + "' 2>&1";
  const auto t0 = std::chrono::steady_clock::now();
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  MpiJob r;
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) r.output.append(buf, n);
  r.status = pclose(p);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace crucible::mpi_test
