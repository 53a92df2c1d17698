// The error family: library checks name the call, the reason, file:line and rank.
#include "checkpoints/hdf5_check.h"
#include "dist/mpi_env.h"
#include "tests/catch.h"

using namespace crucible;

TEST_CASE("CHECK_HDF5 names the failed call and HDF5's reason", "[errors]") {
  checkpoints::hdf5_quiet();
  auto open_missing = [] {
    return CHECK_HDF5(H5Fopen("/nonexistent/dir/state.h5", H5F_ACC_RDONLY, H5P_DEFAULT));
  };
  REQUIRE_THROWS_WITH(open_missing(), Catch::Contains("HDF5 call failed: H5Fopen") &&
                                          Catch::Contains("test_checks.cpp:") &&
                                          Catch::Contains("open"));
}

TEST_CASE("CRUCIBLE_CHECK reports the expression, the message, file:line and rank", "[errors]") {
  auto failing = [](int x) { CRUCIBLE_CHECK(x > 3, "x was ", x); };
  REQUIRE_NOTHROW(failing(4));
  REQUIRE_THROWS_WITH(failing(2), Catch::Contains("check failed: x > 3: x was 2") &&
                                      Catch::Contains("(at tests/checkpoints/test_checks.cpp:"));
  set_error_rank(3);
  REQUIRE_THROWS_WITH(failing(1), Catch::Contains(", rank 3)"));
  set_error_rank(-1);
  REQUIRE_THROWS_WITH(CRUCIBLE_FAIL("plain"), !Catch::Contains("rank"));
}

TEST_CASE("CHECK_MPI names the call and MPI's error string", "[errors]") {
  // MPI_Error_string works before MPI_Init; a failing return code is simulated.
  auto fake_call = [] { return 5; };  // MPI_ERR_RANK in Open MPI; any non-zero is a failure
  REQUIRE_THROWS_WITH([&] { CHECK_MPI(fake_call()); }(), Catch::Contains("MPI call failed: fake_call()") &&
                                                         Catch::Contains("code 5"));
}
