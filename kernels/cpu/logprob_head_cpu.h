// kernels/cpu/logprob_head_cpu.h: the CPU reference of the fused, vocab-chunked LM head
// (contracts in kernels/logprob_head.h). Called through the ops:: functions, which
// validate dtypes, shapes and devices; these check the target ids (they need values).
#pragma once

#include "core/tensor.h"
#include "kernels/logprob_head.h"

namespace crucible::cpu {

void logprob_head_forward(const Tensor& h, const Tensor& w, const Tensor& targets, Tensor& logp, Tensor& lse,
                          Tensor& entropy, const ops::LogprobHeadOptions& opts);
void logprob_head_backward(const Tensor& dlogp, const Tensor& h, const Tensor& w, const Tensor& targets,
                           const Tensor& lse, Tensor& dh, Tensor& dw, const ops::LogprobHeadOptions& opts);
void logprob_head_topk(const Tensor& h, const Tensor& w, std::int64_t k, Tensor& ids, Tensor& logp,
                       const ops::LogprobHeadOptions& opts);

}  // namespace crucible::cpu
