// checkpoints/hdf5_check.cpp: HDF5 error stack to text.
#include "checkpoints/hdf5_check.h"

#include <mutex>

namespace crucible::checkpoints {

void hdf5_quiet() {
  static std::once_flag once;
  std::call_once(once, [] { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); });
}

namespace {
herr_t collect(unsigned n, const H5E_error2_t* err, void* out) {
  auto* s = static_cast<std::string*>(out);
  if (n >= 3) return 0;  // the innermost few frames say what went wrong
  if (!s->empty()) *s += "; ";
  *s += err->func_name ? err->func_name : "?";
  *s += ": ";
  *s += err->desc ? err->desc : "?";
  return 0;
}
}  // namespace

std::string hdf5_error_stack() {
  std::string s;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, collect, &s);
  H5Eclear2(H5E_DEFAULT);
  return s.empty() ? "no HDF5 error message" : s;
}

}  // namespace crucible::checkpoints
