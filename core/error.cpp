// core/error.cpp: message formatting for the error family (see error.h).
#include "core/error.h"

#include <atomic>

namespace crucible {

namespace {
std::atomic<int> g_error_rank{-1};
}

void set_error_rank(int rank) { g_error_rank.store(rank); }
int error_rank() { return g_error_rank.load(); }

void fail(std::string_view what, const char* file, int line) {
  std::string msg(what);
  std::string_view path(file);
  // Paths are relative to the source tree (-fmacro-prefix-map); as a fallback for
  // absolute paths, keep from the first top-level folder name on.
  std::size_t best = std::string_view::npos;
  for (std::string_view top : {"core/", "kernels/", "model/", "dist/", "rollout/", "data/",
                               "rewards/", "checkpoints/", "trainer/", "launch/", "tests/",
                               "bench/"}) {
    auto pos = path.find(top);
    while (pos != std::string_view::npos && pos > 0 && path[pos - 1] != '/') pos = path.find(top, pos + 1);
    if (pos < best) best = pos;
  }
  if (best != std::string_view::npos) path = path.substr(best);
  msg += " (at ";
  msg += path;
  msg += ':';
  msg += std::to_string(line);
  if (int r = error_rank(); r >= 0) {
    msg += ", rank ";
    msg += std::to_string(r);
  }
  msg += ')';
  throw Error(msg);
}

}  // namespace crucible
