// tests/worst.h: the running maximum of errors that keeps a NaN.
//
// std::max(worst, e) returns worst when e is NaN (the comparison is false), so a test that
// folds errors with it passes on NaN outputs. worst_of keeps the first NaN it meets, and
// `worst <= tol` then fails as it should.
#pragma once

#include <cmath>

namespace crucible::testing {

template <typename T>
T worst_of(T worst, T err) {
  if (std::isnan(worst)) return worst;
  return std::isnan(err) || err > worst ? err : worst;
}

}  // namespace crucible::testing
