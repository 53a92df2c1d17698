// kernels/attention.h: causal softmax attention over packed sequences, fwd/bwd.
//
// Sequences are packed along T and described by cu_seqlens [B + 1] (i32, cu[0] = 0,
// cu[B] = T): token t of sequence b attends to tokens cu[b] .. t. Query heads Hq,
// key/value heads Hkv (Hq % Hkv == 0, GQA group Hq / Hkv); q/k head dim dqk and v
// head dim dv may differ (MLA: 192 and 128). Softmax in FP32 with a given scale.
#pragma once

#include "core/tensor.h"

namespace crucible::ops {

// q [T, Hq, dqk], k [T, Hkv, dqk], v [T, Hkv, dv] -> out [T, Hq, dv] (written);
// lse [T, Hq] (log-sum-exp of the scaled scores) saved for backward.
void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& cu_seqlens,
                       float scale, Tensor& out, Tensor& lse);
// dq, dk, dv written (same shapes as q, k, v).
void attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                        const Tensor& out, const Tensor& lse, const Tensor& cu_seqlens, float scale,
                        Tensor& dq, Tensor& dk, Tensor& dv);

}  // namespace crucible::ops
