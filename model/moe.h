// model/moe.h: the DeepSeekMoE feed-forward block.
//
// y = Σ_shared MLP_s(x) + Σ_{k in top-k} w_k MLP_{e_k}(x)   (reference §3)
// Routing (kernels/moe_routing.h): sigmoid (or softmax) scores of x Wg^T in FP32,
// selection on scores + e_score_correction_bias, group-limited top-k, weights from
// the unbiased scores, normalized and scaled. The router and the bias stay FP32;
// experts run in the model's linear precision.
// Training extras: the complementary sequence-wise balance loss (alpha, added to the
// router gradient in backward) and the per-expert load of the step, which the
// trainer uses for the aux-loss-free bias update (gamma).
#pragma once

#include <vector>

#include "model/mlp.h"

namespace crucible {

struct MoeParams {
  Param gate;                  // router [E, H]
  Param bias;                  // e_score_correction_bias [E] (noaux_tc only)
  std::vector<MlpParams> experts;
  MlpParams shared;            // undefined weights when n_shared_experts == 0
};
MoeParams moe_params(const ModelWeights& w, std::int64_t layer);

struct MoeSaved {
  Tensor x;                    // [T, H]
  Tensor scores;               // [T, E]
  Tensor topk_idx, topk_w;     // [T, k] i32, [T, k]
  // The permutation (kernels/moe_routing.h): token of each permuted row (i32 [T k]),
  // permuted row of each (token, slot) (i32 [T, k]), and expert e's band of rows
  // [offsets[e], offsets[e + 1]) (host copy).
  Tensor rows, position;
  std::vector<std::int64_t> offsets;
  // The routed experts as grouped GEMMs over the permuted rows (expert e on its band):
  Tensor x_perm;                 // [T k, H] the tokens, permuted
  Tensor gate, up, act;          // [T k, I] gate and up projections, SwiGLU(gate, up)
  Tensor expert_out;             // [T k, H] unweighted expert outputs, permuted order
  MlpSaved shared;
  std::vector<std::int64_t> load;  // tokens per expert in this forward
  double balance_loss = 0;          // alpha * Σ_seq Σ_i f_i P_i / n_seq
};

// x [T, H] -> y [T, H] (written). cu_seqlens (i32 [B+1], any device) delimits the
// sequences of the balance loss; undefined (inference: rollout/cached_forward.cpp), no
// balance loss is computed (s.balance_loss = 0), which spares its device-to-host reads.
void moe_forward(const ModelConfig& c, const MoeParams& p, const Tensor& x, const Tensor& cu_seqlens,
                 Tensor& y, MoeSaved& s);
// dy -> dx (written); parameter grads +=; the balance loss gradient is included,
// times aux_weight (ForwardState::aux_weight).
void moe_backward(const ModelConfig& c, MoeParams& p, const Tensor& dy, const Tensor& cu_seqlens,
                  const MoeSaved& s, Tensor& dx, double aux_weight = 1);

}  // namespace crucible
