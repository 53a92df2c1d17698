// kernels/logprob_head.cpp: validation and device dispatch of the fused, vocab-chunked
// LM head (kernels/logprob_head.h): dtypes, shapes, one device and the options here;
// target ids in range in the backends (the CPU throws naming the row, the CUDA kernels
// print it and trap).
#include "kernels/logprob_head.h"

#include <algorithm>

#include "core/error.h"
#include "kernels/cpu/logprob_head_cpu.h"
#include "kernels/op_checks.h"
#ifdef CRUCIBLE_WITH_CUDA
#include "kernels/cuda/logprob_head_cuda.h"
#endif

namespace crucible::ops {

namespace {

using detail::check_tensor;
using detail::ptr;
using detail::ptr_out;

struct HeadDims {
  Device dev;
  std::int64_t T, D, V, chunk;
};

HeadDims check_head(const Tensor& h, const Tensor& w, const LogprobHeadOptions& opts, const char* op) {
  CRUCIBLE_CHECK(h.defined() && h.rank() == 2 && w.defined() && w.rank() == 2, op, ": h must be [T, D] and w [V, D]");
  HeadDims d{h.device(), h.dim(0), h.dim(1), w.dim(0), opts.chunk};
  check_tensor(h, d.dev, op, "h", DType::F32);
  check_tensor(w, d.dev, op, "w", DType::F32);
  CRUCIBLE_CHECK(w.dim(1) == d.D && d.V > 0, op, ": w (", w.name(), ") ", w.shape().str(),
                 " must be [V > 0, D = ", d.D, "] to match h ", h.shape().str());
  CRUCIBLE_CHECK(opts.chunk > 0, op, ": chunk must be positive, got ", opts.chunk);
  d.chunk = std::min(opts.chunk, d.V);
  return d;
}

}  // namespace

void logprob_head_forward(const Tensor& h, const Tensor& w, const Tensor& targets, Tensor& logp, Tensor& lse,
                          Tensor& entropy, const LogprobHeadOptions& opts, const Stream& stream) {
  const char* op = "logprob_head_forward";
  const HeadDims d = check_head(h, w, opts, op);
  check_tensor(targets, d.dev, op, "targets", DType::I32, Shape{d.T});
  check_tensor(logp, d.dev, op, "logp", DType::F32, Shape{d.T});
  check_tensor(lse, d.dev, op, "lse", DType::F32, Shape{d.T});
  if (opts.entropy) check_tensor(entropy, d.dev, op, "entropy", DType::F32, Shape{d.T});
  if (d.dev.is_cpu()) return cpu::logprob_head_forward(h, w, targets, logp, lse, entropy, opts);
#ifdef CRUCIBLE_WITH_CUDA
  cuda::logprob_head_forward(ptr<float>(h), ptr<float>(w), ptr<std::int32_t>(targets), ptr_out<float>(logp),
                             ptr_out<float>(lse), opts.entropy ? ptr_out<float>(entropy) : nullptr, d.T, d.D, d.V,
                             d.chunk, opts.bf16, stream.handle());
#else
  (void)stream;
  detail::fail_no_cuda(op, d.dev);
#endif
}

void logprob_head_backward(const Tensor& dlogp, const Tensor& h, const Tensor& w, const Tensor& targets,
                           const Tensor& lse, Tensor& dh, Tensor& dw, const LogprobHeadOptions& opts,
                           const Stream& stream) {
  const char* op = "logprob_head_backward";
  const HeadDims d = check_head(h, w, opts, op);
  check_tensor(targets, d.dev, op, "targets", DType::I32, Shape{d.T});
  check_tensor(dlogp, d.dev, op, "dlogp", DType::F32, Shape{d.T});
  check_tensor(lse, d.dev, op, "lse", DType::F32, Shape{d.T});
  check_tensor(dh, d.dev, op, "dh", DType::F32, h.shape());
  check_tensor(dw, d.dev, op, "dw", DType::F32, w.shape());
  if (d.dev.is_cpu()) return cpu::logprob_head_backward(dlogp, h, w, targets, lse, dh, dw, opts);
#ifdef CRUCIBLE_WITH_CUDA
  cuda::logprob_head_backward(ptr<float>(dlogp), ptr<float>(h), ptr<float>(w), ptr<std::int32_t>(targets),
                              ptr<float>(lse), ptr_out<float>(dh), ptr_out<float>(dw), d.T, d.D, d.V, d.chunk,
                              opts.bf16, stream.handle());
#else
  (void)stream;
  detail::fail_no_cuda(op, d.dev);
#endif
}

void logprob_head_topk(const Tensor& h, const Tensor& w, std::int64_t k, Tensor& ids, Tensor& logp,
                       const LogprobHeadOptions& opts, const Stream& stream) {
  const char* op = "logprob_head_topk";
  const HeadDims d = check_head(h, w, opts, op);
  CRUCIBLE_CHECK(k >= 0 && k <= d.V, "logprob_head_topk: k = ", k, " must lie in [0, V = ", d.V, "]");
  check_tensor(ids, d.dev, op, "ids", DType::I32, Shape{d.T, k});
  check_tensor(logp, d.dev, op, "logp", DType::F32, Shape{d.T, k});
  if (d.dev.is_cpu()) return cpu::logprob_head_topk(h, w, k, ids, logp, opts);
#ifdef CRUCIBLE_WITH_CUDA
  cuda::logprob_head_topk(ptr<float>(h), ptr<float>(w), k, ptr_out<std::int32_t>(ids), ptr_out<float>(logp), d.T,
                          d.D, d.V, d.chunk, opts.bf16, stream.handle());
#else
  (void)stream;
  detail::fail_no_cuda(op, d.dev);
#endif
}

}  // namespace crucible::ops
