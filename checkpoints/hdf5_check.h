// checkpoints/hdf5_check.h: CHECK_HDF5, in the family of core/error.h.
//
// HDF5 calls return a negative value on failure and keep an error stack. CHECK_HDF5
// throws crucible::Error with the failed call, the innermost messages of that stack
// (not HDF5's default dump to stderr, which hdf5_quiet() turns off), file:line and rank.
#pragma once

#include <hdf5.h>

#include <string>

#include "core/error.h"

namespace crucible::checkpoints {
// Turns off HDF5's automatic error printing (once per process); errors surface
// through CHECK_HDF5 instead.
void hdf5_quiet();
// The current HDF5 error stack as one line ("H5F: unable to open file; ...").
std::string hdf5_error_stack();
}  // namespace crucible::checkpoints

#define CHECK_HDF5(call)                                                                  \
  ([&]() {                                                                                \
    auto crucible_h5_rc_ = (call);                                                        \
    if (crucible_h5_rc_ < 0) [[unlikely]]                                                 \
      ::crucible::fail(::crucible::detail::concat("HDF5 call failed: " #call ": ",        \
                                                  ::crucible::checkpoints::hdf5_error_stack()), \
                       __FILE__, __LINE__);                                               \
    return crucible_h5_rc_;                                                               \
  }())
