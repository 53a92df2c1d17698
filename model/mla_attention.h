// model/mla_attention.h: Multi-head Latent Attention, training ("naive") form.
//
// reference/deepseek_v3_fp8.md §2.1:
//   c_q  = RMSNorm(x Wqa^T)            [T, q_lora]   (or q = x Wq^T without q low rank)
//   q    = c_q Wqb^T                   [T, nh, nope + rope]
//   kv_a = x Wkva^T = [c_kv | k_rope]  [T, kv_lora + rope]
//   kv   = RMSNorm(c_kv) Wkvb^T        [T, nh, nope + dv]  -> k_nope | v
//   k    = [k_nope | RoPE(k_rope)]     (one rope key shared by all heads)
//   q    = [q_nope | RoPE(q_rope)]     (interleaved RoPE on the rope dims only)
//   o    = softmax(q k^T * scale) v, y = o Wo^T
// The absorbed decode form (attention over the latent cache) lives in rollout/.
#pragma once

#include "kernels/attention.h"
#include "model/block.h"

namespace crucible {

struct MlaParams {
  Param q_a, q_a_norm, q_b;  // with q low rank
  Param q;                   // without (q_proj)
  Param kv_a, kv_a_norm, kv_b, o;
};
MlaParams mla_params(const ModelWeights& w, std::int64_t layer);

struct MlaSaved {
  Tensor x;             // [T, H]
  Tensor cq, cq_n, cq_rstd;  // [T, q_lora] pre/post norm, [T] (q low rank only)
  Tensor ckv, ckv_n, ckv_rstd;  // [T, kv_lora], [T, kv_lora], [T]
  Tensor q, k, v;       // [T, nh, dqk], [T, nh, dqk], [T, nh, dv] (after RoPE)
  Tensor o, lse;        // [T, nh, dv], [T, nh]
  ops::AttentionOperands qkv16;  // q, k, v in BF16 as the attention kernels read them (CUDA)
};

void mla_forward(const ModelConfig& c, const MlaParams& p, const Tensor& x, const SeqLayout& seq,
                 Tensor& y, MlaSaved& s);
void mla_backward(const ModelConfig& c, MlaParams& p, const Tensor& dy, const SeqLayout& seq,
                  const MlaSaved& s, Tensor& dx);

}  // namespace crucible
