// kernels/cpu/sampling_cpu.h: the CPU reference of next-token sampling (contracts in
// kernels/sampling.h). Called through ops::sample_tokens, which validates dtypes,
// shapes, devices and the options.
#pragma once

#include "core/tensor.h"
#include "kernels/sampling.h"

namespace crucible::cpu {

void sample_tokens(const Tensor& logits, const Tensor& u, const ops::SamplingOptions& opts, Tensor& tokens,
                   Tensor& logprobs);

}  // namespace crucible::cpu
