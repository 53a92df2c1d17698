// core/error.h: the one error family of crucible.
//
// Every failed check throws crucible::Error whose message names the failed
// expression or call, file:line and the MPI rank (when one is set). User-facing
// errors (bad config, bad data) use CRUCIBLE_USER_ERROR-style messages that say
// what was wrong and where; the location of the check is appended for developers.
// Library-specific checks (CHECK_CUDA, CHECK_CUBLAS, CHECK_NCCL, CHECK_MPI,
// CHECK_HDF5) live next to the code that includes those libraries and funnel
// into crucible::fail() so that every error reads the same.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace crucible {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The rank printed in error messages and logs; -1 = single process (not printed).
// Set once by dist/ after MPI initialization.
void set_error_rank(int rank);
int error_rank();

// Builds "<what> (at file:line[, rank r])" and throws Error.
[[noreturn]] void fail(std::string_view what, const char* file, int line);

namespace detail {
template <typename... Args>
std::string concat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
}  // namespace detail

}  // namespace crucible

// CRUCIBLE_CHECK(cond, parts...): throws when cond is false. The message parts are
// streamed together; they are only evaluated on failure.
#define CRUCIBLE_CHECK(cond, ...)                                                        \
  do {                                                                                   \
    if (!(cond)) [[unlikely]]                                                            \
      ::crucible::fail(::crucible::detail::concat("check failed: " #cond ": ", __VA_ARGS__), \
                       __FILE__, __LINE__);                                              \
  } while (0)

// CRUCIBLE_FAIL(parts...): throws unconditionally.
#define CRUCIBLE_FAIL(...) ::crucible::fail(::crucible::detail::concat(__VA_ARGS__), __FILE__, __LINE__)

// CRUCIBLE_USER_CHECK(cond, parts...): for errors a user can meet (bad input). The
// message is the user's; the failed expression is left out.
#define CRUCIBLE_USER_CHECK(cond, ...)                                                   \
  do {                                                                                   \
    if (!(cond)) [[unlikely]]                                                            \
      ::crucible::fail(::crucible::detail::concat(__VA_ARGS__), __FILE__, __LINE__);     \
  } while (0)
