// kernels/op_checks.h: the argument checks every ops:: dispatch layer makes before it
// picks the CPU reference or the CUDA twin: defined, one device, dtype, shape; and the
// error for a CUDA tensor in a build without CUDA. Messages name the op, the role and
// the tensor's debug name and shape.
#pragma once

#include <string>

#include "core/error.h"
#include "core/tensor.h"

namespace crucible::ops::detail {

inline std::string describe(const Tensor& t, const char* role) {
  return std::string(role) + " '" + (t.name().empty() ? "<unnamed>" : t.name()) + "' " + t.shape().str();
}

// The device an op runs on: that of its first tensor, which must be defined.
inline Device device_of(const Tensor& t, const char* op, const char* role) {
  CRUCIBLE_CHECK(t.defined(), op, ": ", role, " is undefined");
  return t.device();
}

inline void check_tensor(const Tensor& t, Device device, const char* op, const char* role, DType dtype) {
  CRUCIBLE_CHECK(t.defined(), op, ": ", role, " is undefined");
  CRUCIBLE_CHECK(t.device() == device, op, ": ", describe(t, role), " is on ", t.device().str(),
                 " but the op runs on ", device.str(), " (all its tensors must share one device)");
  CRUCIBLE_CHECK(t.dtype() == dtype, op, ": ", describe(t, role), " must be ", dtype_name(dtype), ", got ",
                 dtype_name(t.dtype()));
}

// check_tensor and an exact shape.
inline void check_tensor(const Tensor& t, Device device, const char* op, const char* role, DType dtype,
                         const Shape& want) {
  check_tensor(t, device, op, role, dtype);
  CRUCIBLE_CHECK(t.shape() == want, op, ": ", describe(t, role), " must be ", want.str());
}

[[noreturn]] inline void fail_no_cuda(const char* op, Device device) {
  CRUCIBLE_FAIL(op, " on ", device.str(), " needs a CUDA build");
}

template <typename T>
const T* ptr(const Tensor& t) {
  return static_cast<const T*>(t.raw());
}
template <typename T>
T* ptr_out(Tensor& t) {
  return static_cast<T*>(t.raw());
}

}  // namespace crucible::ops::detail
