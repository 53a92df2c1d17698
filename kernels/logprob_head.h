// kernels/logprob_head.h: the fused, vocab-chunked LM head.
//
// logits = h W^T is never materialized for all of [T, V] at once: the vocabulary is
// walked in chunks of `chunk` rows of W (online log-sum-exp in the first pass, a
// recompute per chunk in the backward). One mechanism serves SFT cross-entropy
// (targets), the GRPO objective (log-probs of sampled tokens) and KD (a teacher
// distribution given as top-k or full log-probs is a later extension).
//
// Devices: every op runs on the device of its tensors (all on one). The CPU reference
// is kernels/cpu/logprob_head.cpp (OpenBLAS GEMMs); the CUDA twin kernels/cuda/
// logprob_head.cu runs cuBLASLt FP32 (pedantic: no TF32) GEMMs per chunk plus small
// kernels for the online log-sum-exp, the logits gradient and the top-k, asynchronously
// on `stream`, deterministically. tests/gpu/test_logprob_head.cpp states how closely the
// twins agree. The entropy has no backward (the loss takes log-probs only).
#pragma once

#include "core/stream.h"
#include "core/tensor.h"

namespace crucible::ops {

struct LogprobHeadOptions {
  std::int64_t chunk = 4096;  // vocab rows per chunk
  bool entropy = false;       // also compute the entropy of each row's distribution
  // GEMM operands (h, w and, in the backward, the logits gradient) rounded to BF16
  // (RNE) with FP32 accumulation: the BF16 output head of the DeepSeek-V3 mixed-precision
  // recipe, tensor-core speed on CUDA. Off: FP32 GEMMs (no TF32). The softmax
  // statistics stay FP32/FP64 either way.
  bool bf16 = false;
};

// h [T, D], w [V, D], targets [T] i32 -> logp [T] (log softmax at the target),
// lse [T] (saved for backward), entropy [T] when asked (else may be undefined).
void logprob_head_forward(const Tensor& h, const Tensor& w, const Tensor& targets, Tensor& logp,
                          Tensor& lse, Tensor& entropy, const LogprobHeadOptions& opts = {},
                          const Stream& stream = Stream());

// Given dlogp [T] = dL/dlogp: dh [T, D] written, dw [V, D] accumulated (+=).
void logprob_head_backward(const Tensor& dlogp, const Tensor& h, const Tensor& w, const Tensor& targets,
                           const Tensor& lse, Tensor& dh, Tensor& dw, const LogprobHeadOptions& opts = {},
                           const Stream& stream = Stream());

// Top-k next tokens per row: ids [T, k] i32 and their log-probs [T, k], sorted by
// descending log-prob (ties: lower id first). Chunked like the forward.
// The CUDA twin's cost grows as k (chunk + k) per row: meant for small k (sampling, KD).
void logprob_head_topk(const Tensor& h, const Tensor& w, std::int64_t k, Tensor& ids, Tensor& logp,
                       const LogprobHeadOptions& opts = {}, const Stream& stream = Stream());

}  // namespace crucible::ops
