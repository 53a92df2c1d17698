// kernels/attention.h: causal softmax attention over packed sequences, fwd/bwd.
//
// Sequences are packed along T and described by cu_seqlens [B + 1] (i32, cu[0] = 0,
// cu[B] = T): token t of sequence b attends to tokens cu[b] .. t. Query heads Hq,
// key/value heads Hkv (Hq % Hkv == 0, GQA group Hq / Hkv); q/k head dim dqk and v
// head dim dv may differ (MLA: 192 and 128). Softmax in FP32 with a given scale.
//
// Every op runs on the device of its tensors (all on one, cu_seqlens included): the
// CPU reference is kernels/cpu/attention.cpp (FP32 GEMMs, sums in double), the CUDA
// twin kernels/cuda/attention_{forward,backward}.cu, which runs asynchronously on
// `stream`, is deterministic (no atomics) and multiplies BF16 operands on the tensor
// cores with FP32 accumulation: q, k, v, dout and the probabilities P and dS are
// rounded to BF16 (RNE) before each product, softmax statistics stay FP32. The CUDA
// twin has tensor-core variants for (dqk, dv) in {(192, 128), (128, 128), (64, 64)};
// other dims up to 512 run an FP32 fallback (kernels/cuda/attention_generic.cu: no
// BF16 rounding, quadratic scalar work, for small models). tests/gpu/test_attention.cpp
// states how closely the twins agree.
#pragma once

#include "core/stream.h"
#include "core/tensor.h"

namespace crucible::ops {

// The BF16 (RNE) copies of q, k and v that the CUDA tensor-core kernels multiply.
// attention_forward given `keep` leaves them there (BF16 tensors of q's, k's and v's
// shapes), and attention_backward given them rounds q, k, v no more: the same bits, three
// casts fewer per layer, for the memory of the three BF16 tensors. The CPU and the CUDA
// FP32 fallback dims leave keep undefined, and ignore it.
struct AttentionOperands {
  Tensor q, k, v;
};

// q [T, Hq, dqk], k [T, Hkv, dqk], v [T, Hkv, dv] -> out [T, Hq, dv] (written);
// lse [T, Hq] (log-sum-exp of the scaled scores) saved for backward.
void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& cu_seqlens,
                       float scale, Tensor& out, Tensor& lse, const Stream& stream = Stream(),
                       AttentionOperands* keep = nullptr);
// dq, dk, dv written (same shapes as q, k, v). kept: attention_forward's keep of these
// q, k, v, or nullptr.
void attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                        const Tensor& out, const Tensor& lse, const Tensor& cu_seqlens, float scale,
                        Tensor& dq, Tensor& dk, Tensor& dv, const Stream& stream = Stream(),
                        const AttentionOperands* kept = nullptr);

}  // namespace crucible::ops
