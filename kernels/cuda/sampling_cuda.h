// kernels/cuda/sampling_cuda.h: host launcher of next-token sampling on the GPU
// (sampling.cu).
//
// Contract identical to kernels/sampling.h (CPU reference: kernels/cpu/sampling.cpp).
// Device pointers on the current device, row-major contiguous; shapes and options
// validated by the ops:: layer (0 < V <= INT32_MAX). Asynchronous on `stream` (a
// cudaStream_t), deterministic. Scratch (sorted keys and ids of up to 2^24 logits at a
// time, CUB's storage) is stream-ordered; no scratch when temperature == 0.
#pragma once

#include <cstdint>

namespace crucible::cuda {

// logits [n, V], u [n] -> tokens [n], logprobs [n].
void sample_tokens(const float* logits, const double* u, std::int64_t n, std::int64_t V, double temperature,
                   double top_p, std::int64_t top_k, std::int32_t* tokens, float* logprobs, void* stream);

}  // namespace crucible::cuda
