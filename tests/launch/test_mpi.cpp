// `mpirun -np 2 crucible ...` initializes MPI in each process and reports the ranks.
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>

#include "core/json.h"
#include "tests/catch.h"

TEST_CASE("mpirun -np 2 crucible info reports rank 0 and 1 of world 2", "[cli][mpi]") {
  if (std::system("command -v mpirun >/dev/null 2>&1") != 0) {
    WARN("mpirun not found; skipped");
    return;
  }
  const std::string cmd =
      "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_plm_rsh_agent= "
      "mpirun --oversubscribe -np 2 " + std::string(CRUCIBLE_BINARY) + " info --json 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  std::string out;
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int status = pclose(p);
  INFO(out);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  auto j = crucible::json::parse(out, "mpirun output");  // only rank 0 prints
  REQUIRE(j.at("mpi").as_bool());
  REQUIRE(j.at("world").as_int64() == 2);
  const auto& ranks = j.at("ranks").as_array();
  REQUIRE(ranks.size() == 2);
  REQUIRE(ranks[0].at("rank").as_int64() == 0);
  REQUIRE(ranks[1].at("rank").as_int64() == 1);
}

TEST_CASE("an error on one rank ends the whole job with its message", "[cli][mpi]") {
  if (std::system("command -v mpirun >/dev/null 2>&1") != 0) return;
  const std::string cmd =
      "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout 60 "
      "mpirun --oversubscribe -np 2 " + std::string(CRUCIBLE_BINARY) + " inspect /nonexistent.toml 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int status = pclose(p);
  INFO(out);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) != 0);
  REQUIRE(WEXITSTATUS(status) != 124);  // not a hang ended by timeout
  REQUIRE_THAT(out, Catch::Contains("/nonexistent.toml"));
}
