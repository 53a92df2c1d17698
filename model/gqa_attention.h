// model/gqa_attention.h: grouped-query attention (qwen2 with q/k/v bias, llama).
//
// q = x Wq^T (+bq), k = x Wk^T (+bk), v = x Wv^T (+bv); RoPE half-split over the
// whole head on q and k; causal softmax attention with scale 1/sqrt(head_dim);
// y = o Wo^T.
#pragma once

#include "kernels/attention.h"
#include "model/block.h"

namespace crucible {

struct GqaParams {
  Param q, k, v, o;        // [Hq*d, H], [Hkv*d, H], [Hkv*d, H], [H, Hq*d]
  Param q_b, k_b, v_b;     // biases (undefined when the model has none)
};
GqaParams gqa_params(const ModelWeights& w, std::int64_t layer);

struct GqaSaved {
  Tensor x;        // [T, H]
  Tensor q, k, v;  // [T, Hq, d], [T, Hkv, d], [T, Hkv, d] (q, k after RoPE)
  Tensor o;        // [T, Hq, d] attention output
  Tensor lse;      // [T, Hq]
  ops::AttentionOperands qkv16;  // q, k, v in BF16 as the attention kernels read them (CUDA)
};

void gqa_forward(const ModelConfig& c, const GqaParams& p, const Tensor& x, const SeqLayout& seq,
                 Tensor& y, GqaSaved& s);
void gqa_backward(const ModelConfig& c, GqaParams& p, const Tensor& dy, const SeqLayout& seq,
                  const GqaSaved& s, Tensor& dx);

}  // namespace crucible
