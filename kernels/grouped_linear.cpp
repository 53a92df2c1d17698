// kernels/grouped_linear.cpp: validation and device dispatch of the grouped linear ops
// (kernels/grouped_linear.h).
//
// Each op checks that every tensor is a defined f32 matrix of the right shape on one device
// and that the offsets partition the rows, then runs the CPU reference
// (kernels/cpu/grouped_linear.cpp) or the CUDA twin (kernels/cuda/grouped_linear_cuda.cpp).
#include "kernels/grouped_linear.h"

#include <string>

#include "core/error.h"
#include "kernels/cpu/grouped_linear_cpu.h"
#include "kernels/op_checks.h"
#include "kernels/tensor_ops.h"
#ifdef CRUCIBLE_WITH_CUDA
#include "kernels/cuda/grouped_linear_cuda.h"
#endif

namespace crucible::ops {

namespace {

using detail::check_tensor;
using detail::describe;
using detail::device_of;

// A defined f32 matrix [rows, cols] on dev; cols < 0 is not checked.
void check_matrix(const Tensor& t, Device dev, const char* op, const char* role, std::int64_t rows,
                  std::int64_t cols) {
  check_tensor(t, dev, op, role, DType::F32);
  const std::string want_cols = cols < 0 ? std::string("*") : std::to_string(cols);
  CRUCIBLE_CHECK(t.rank() == 2 && t.dim(0) == rows && (cols < 0 || t.dim(1) == cols), op, ": ",
                 describe(t, role), " has the wrong shape, want [", rows, ", ", want_cols, "]");
}

// offsets [G + 1]: 0 = offsets[0] <= ... <= offsets[G] = M.
void check_offsets(std::span<const std::int64_t> offsets, std::size_t G, std::int64_t M, const char* op) {
  CRUCIBLE_CHECK(G >= 1, op, ": no groups (w is empty)");
  CRUCIBLE_CHECK(offsets.size() == G + 1, op, ": offsets has ", offsets.size(), " entries, want G + 1 = ", G + 1,
                 " (one per weight, plus the end)");
  CRUCIBLE_CHECK(offsets[0] == 0 && offsets[G] == M, op, ": offsets must run from 0 to the row count M = ", M,
                 ", got ", offsets[0], " .. ", offsets[G]);
  for (std::size_t g = 0; g < G; ++g)
    CRUCIBLE_CHECK(offsets[g] <= offsets[g + 1], op, ": offsets must not decrease, got offsets[", g,
                   "] = ", offsets[g], " > offsets[", g + 1, "] = ", offsets[g + 1]);
}

// Every w[g] an f32 [N, K] on dev (N from w[0]); returns N.
std::int64_t check_weights(std::span<const Tensor> w, Device dev, std::int64_t K, const char* op) {
  CRUCIBLE_CHECK(!w.empty(), op, ": no groups (w is empty)");
  check_tensor(w[0], dev, op, "w[0]", DType::F32);
  CRUCIBLE_CHECK(w[0].rank() == 2, op, ": ", describe(w[0], "w[0]"), " must be a matrix [N, K]");
  const std::int64_t N = w[0].dim(0);
  for (std::size_t g = 0; g < w.size(); ++g) {
    const std::string role = "w[" + std::to_string(g) + "]";
    check_matrix(w[g], dev, op, role.c_str(), N, K);
  }
  return N;
}

#ifdef CRUCIBLE_WITH_CUDA
// GroupedImpl::Auto on CUDA: the one launch, from bench/gpu/grouped_gemm.cpp on the H100
// (bench/results/session7-2026-11-24/5-h100-grouped.txt, Fp8 wgmma kernel, weights quantized
// in one launch per call): at DeepSeek-V3 expert shapes (32768 routed rows) the one-launch op
// ran at 0.96-1.03x the per-group cuBLASLt loop's TFLOP/s forward and 0.90-0.92x backward
// with 32 experts, 1.18-1.24x and 1.02-1.06x with 64; at the h100-teacher's, 5.6-37x
// forward and 4.6-11.7x backward (the loop pays a quantize and a GEMM launch per group).
// Bf16 runs the same structure on its own kernel; Fp32 always loops.
GroupedImpl resolve(GroupedImpl impl) { return impl == GroupedImpl::Auto ? GroupedImpl::OneLaunch : impl; }
#endif

}  // namespace

namespace {

// The checks of grouped_linear_forward; returns the device.
Device check_forward(const Tensor& x, std::span<const Tensor> w, std::span<const std::int64_t> offsets, const Tensor& y,
                   const char* op) {
  const Device dev = device_of(x, op, "x");
  check_tensor(x, dev, op, "x", DType::F32);
  CRUCIBLE_CHECK(x.rank() == 2, op, ": ", describe(x, "x"), " must be a matrix [M, K]");
  const std::int64_t M = x.dim(0), K = x.dim(1);
  const std::int64_t N = check_weights(w, dev, K, op);
  check_offsets(offsets, w.size(), M, op);
  check_matrix(y, dev, op, "y", M, N);
  return dev;
}

// The checks of grouped_linear_backward; returns the device.
Device check_backward(const Tensor& dy, const Tensor& x, std::span<const Tensor> w,
                      std::span<const std::int64_t> offsets, const Tensor& dx, std::span<Tensor> dw, const char* op) {
  const Device dev = device_of(x, op, "x");
  check_tensor(x, dev, op, "x", DType::F32);
  CRUCIBLE_CHECK(x.rank() == 2, op, ": ", describe(x, "x"), " must be a matrix [M, K]");
  const std::int64_t M = x.dim(0), K = x.dim(1);
  const std::int64_t N = check_weights(w, dev, K, op);
  check_offsets(offsets, w.size(), M, op);
  check_matrix(dy, dev, op, "dy", M, N);
  if (dx.defined()) check_matrix(dx, dev, op, "dx", M, K);
  CRUCIBLE_CHECK(dw.size() == w.size(), op, ": dw has ", dw.size(), " tensors, want one per weight (", w.size(),
                 ")");
  for (std::size_t g = 0; g < dw.size(); ++g) {
    const std::string role = "dw[" + std::to_string(g) + "]";
    check_matrix(dw[g], dev, op, role.c_str(), N, K);
  }
  return dev;
}

#ifdef CRUCIBLE_WITH_CUDA
// The pair ops' fused path: CUDA, a precision with a grouped kernel (Fp8, Bf16), both lists
// resolved to the one launch.
bool pair_fused(Device dev, GemmPrecision p, GroupedImpl impl) {
  return dev.is_cuda() && p != GemmPrecision::Fp32 && resolve(impl) == GroupedImpl::OneLaunch;
}
#endif

}  // namespace

void grouped_linear_forward(const Tensor& x, std::span<const Tensor> w, std::span<const std::int64_t> offsets,
                            Tensor& y, GemmPrecision p, const Stream& stream, GroupedImpl impl) {
  const char* op = "grouped_linear_forward";
  const Device dev = check_forward(x, w, offsets, y, op);
  if (dev.is_cpu()) return cpu::grouped_linear_forward(x, w, offsets, y, p);
#ifdef CRUCIBLE_WITH_CUDA
  if (resolve(impl) == GroupedImpl::OneLaunch)
    return cuda::grouped_linear_forward(x, w, offsets, y, p, stream);
  cuda::grouped_linear_forward_loop(x, w, offsets, y, p, stream);
#else
  (void)stream, (void)impl;
  detail::fail_no_cuda(op, dev);
#endif
}

void grouped_linear_backward(const Tensor& dy, const Tensor& x, std::span<const Tensor> w,
                             std::span<const std::int64_t> offsets, Tensor& dx, std::span<Tensor> dw,
                             GemmPrecision p, const Stream& stream, GroupedImpl impl) {
  const char* op = "grouped_linear_backward";
  const Device dev = check_backward(dy, x, w, offsets, dx, dw, op);
  if (dev.is_cpu()) return cpu::grouped_linear_backward(dy, x, w, offsets, dx, dw, p);
#ifdef CRUCIBLE_WITH_CUDA
  if (resolve(impl) == GroupedImpl::OneLaunch)
    return cuda::grouped_linear_backward(dy, x, w, offsets, dx, dw, p, stream);
  cuda::grouped_linear_backward_loop(dy, x, w, offsets, dx, dw, p, stream);
#else
  (void)stream, (void)impl;
  detail::fail_no_cuda(op, dev);
#endif
}

void grouped_linear_pair_forward(const Tensor& x, std::span<const Tensor> w1, std::span<const Tensor> w2,
                                 std::span<const std::int64_t> offsets, Tensor& y1, Tensor& y2, GemmPrecision p,
                                 const Stream& stream, GroupedImpl impl) {
  const char* op = "grouped_linear_pair_forward";
  const Device dev = check_forward(x, w1, offsets, y1, op);
  check_forward(x, w2, offsets, y2, op);
#ifdef CRUCIBLE_WITH_CUDA
  if (pair_fused(dev, p, impl)) return cuda::grouped_linear_pair_forward(x, w1, w2, offsets, y1, y2, p, stream);
#else
  (void)dev;
#endif
  grouped_linear_forward(x, w1, offsets, y1, p, stream, impl);
  grouped_linear_forward(x, w2, offsets, y2, p, stream, impl);
}

void grouped_linear_pair_backward(const Tensor& dy1, const Tensor& dy2, const Tensor& x, std::span<const Tensor> w1,
                                  std::span<const Tensor> w2, std::span<const std::int64_t> offsets, Tensor& dx,
                                  std::span<Tensor> dw1, std::span<Tensor> dw2, GemmPrecision p,
                                  const Stream& stream, GroupedImpl impl) {
  const char* op = "grouped_linear_pair_backward";
  const Device dev = check_backward(dy1, x, w1, offsets, dx, dw1, op);
  check_backward(dy2, x, w2, offsets, dx, dw2, op);
#ifdef CRUCIBLE_WITH_CUDA
  if (pair_fused(dev, p, impl))
    return cuda::grouped_linear_pair_backward(dy1, dy2, x, w1, w2, offsets, dx, dw1, dw2, p, stream);
#endif
  grouped_linear_backward(dy1, x, w1, offsets, dx, dw1, p, stream, impl);
  Tensor dx2;
  if (dx.defined()) dx2 = Tensor(dx.shape(), DType::F32, dev, "grouped_pair.dx2");
  grouped_linear_backward(dy2, x, w2, offsets, dx2, dw2, p, stream, impl);
  if (dx.defined()) axpy(1.0f, dx2, dx, stream);
}

}  // namespace crucible::ops
