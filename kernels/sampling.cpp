// kernels/sampling.cpp: validation and device dispatch of next-token sampling
// (kernels/sampling.h): dtypes, shapes, one device and the options here.
#include "kernels/sampling.h"

#include <cmath>
#include <cstdint>

#include "core/error.h"
#include "kernels/cpu/sampling_cpu.h"
#include "kernels/op_checks.h"
#ifdef CRUCIBLE_WITH_CUDA
#include "kernels/cuda/sampling_cuda.h"
#endif

namespace crucible::ops {

using detail::check_tensor;
using detail::ptr;
using detail::ptr_out;

void sample_tokens(const Tensor& logits, const Tensor& u, const SamplingOptions& opts, Tensor& tokens,
                   Tensor& logprobs, const Stream& stream) {
  const char* op = "sample_tokens";
  const Device dev = detail::device_of(logits, op, "logits");
  check_tensor(logits, dev, op, "logits", DType::F32);
  CRUCIBLE_CHECK(logits.rank() == 2 && logits.dim(1) > 0, op, ": ", detail::describe(logits, "logits"),
                 " must be [n, V > 0]");
  CRUCIBLE_CHECK(logits.dim(1) <= INT32_MAX, op, ": a vocabulary of ", logits.dim(1), " exceeds 32-bit ids");
  const std::int64_t n = logits.dim(0);
  check_tensor(u, dev, op, "u", DType::F64, Shape{n});
  check_tensor(tokens, dev, op, "tokens", DType::I32, Shape{n});
  check_tensor(logprobs, dev, op, "logprobs", DType::F32, Shape{n});
  CRUCIBLE_CHECK(opts.temperature >= 0 && std::isfinite(opts.temperature), op, ": temperature must be >= 0, got ",
                 opts.temperature);
  CRUCIBLE_CHECK(opts.top_p > 0 && opts.top_p <= 1, op, ": top_p must be in (0, 1], got ", opts.top_p);
  CRUCIBLE_CHECK(opts.top_k >= 0, op, ": top_k must be >= 0, got ", opts.top_k);
  if (dev.is_cpu()) return cpu::sample_tokens(logits, u, opts, tokens, logprobs);
#ifdef CRUCIBLE_WITH_CUDA
  cuda::sample_tokens(ptr<float>(logits), ptr<double>(u), n, logits.dim(1), opts.temperature, opts.top_p, opts.top_k,
                      ptr_out<std::int32_t>(tokens), ptr_out<float>(logprobs), stream.handle());
#else
  (void)stream;
  detail::fail_no_cuda(op, dev);
#endif
}

}  // namespace crucible::ops
