// model/mtp.h: DeepSeek-V3 multi-token prediction (reference §3.4, V3 §2.2).
//
// Depth k (1-based) predicts token t_{i+1+k} at position i from the previous depth's
// representation (depth 0 = the main model's last residual stream) and the
// embedding of t_{i+k}:
//   x_k = eh_proj [enorm(Emb(t_{i+k})) ; hnorm(h_{k-1})]      (embeddings first)
//   h_k = Block_{L+k-1}(x_k)                                  (MLA + MoE block)
//   logp_k = log softmax(shared_head.norm(h_k) W_head^T)[t_{i+1+k}]
// The embedding and the head are the main model's. Positions whose target falls
// past the end of their sequence are masked (mask 0). The trainer weighs the
// per-depth losses with mtp_loss_weight / D.
#pragma once

#include <vector>

#include "model/transformer.h"

namespace crucible {

struct MtpDepth {
  Tensor ids, targets, mask;  // [T] i32, [T] i32, [T] f32
  Tensor h_prev;              // [T, H]
  Tensor e, e_n, e_rstd, h_n, h_rstd, cat;  // norms and the [T, 2H] concat
  LayerState block;
  Tensor h, hk, hk_rstd, lse;  // block output, shared_head.norm out, head lse
};

struct MtpState {
  std::vector<MtpDepth> depths;
};

class Mtp {
 public:
  // After model.forward_hidden(batch, st): per-depth log-probs [T] (masked
  // positions hold a finite dummy; multiply by depth.mask).
  static std::vector<Tensor> forward(Transformer& model, const Batch& batch, ForwardState& st, MtpState& ms);
  // dlogp per depth -> parameter grads (+=) and the gradient w.r.t. the main
  // model's last residual stream, dh_last (written), to pass to model.backward.
  static void backward(Transformer& model, const std::vector<Tensor>& dlogp, ForwardState& st, MtpState& ms,
                       Tensor& dh_last);
};

}  // namespace crucible
