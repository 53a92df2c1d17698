// model/transformer.h: the one Transformer for deepseek_v3, qwen2 and llama.
//
//   h_0 = embed(ids)
//   h   = h + Attn(RMSNorm(h))        Attn = MLA (deepseek_v3) or GQA
//   h   = h + FFN(RMSNorm(h))         FFN  = SwiGLU, or DeepSeekMoE in MoE layers
//   logp_t = log softmax(RMSNorm(h) W_head^T)[target_t]   (fused, vocab-chunked)
// The model (config + weights) is immutable during a forward; everything a
// backward needs lives in ForwardState, the per-call run state (STYLE.md 10).
#pragma once

#include <functional>
#include <optional>
#include <vector>

#include "kernels/logprob_head.h"
#include "model/gqa_attention.h"
#include "model/mla_attention.h"
#include "model/moe.h"

namespace crucible {

// A packed batch of token sequences.
struct Batch {
  Tensor ids;      // [T] i32
  Tensor targets;  // [T] i32: the token whose log-prob is computed at each position
  Tensor pos;      // [T] i32
  Tensor cu_seqlens;  // [B + 1] i32

  // Packs sequences; targets are the next token (the last position of each
  // sequence targets its own token: callers mask it).
  static Batch from_sequences(const std::vector<std::vector<std::int32_t>>& seqs);
  // The same batch on `device` (a copy; this batch when it is already there).
  Batch to(Device device) const;
  std::int64_t tokens() const { return ids.numel(); }
  std::int64_t sequences() const { return cu_seqlens.numel() - 1; }
};

struct LayerState {
  Tensor h_in;            // [T, H] residual stream entering the layer
  Tensor a, a_rstd;       // attention input norm out [T, H], rstd [T]
  Tensor h_mid;           // [T, H] after the attention residual
  Tensor b, b_rstd;       // FFN input norm
  GqaSaved gqa;
  MlaSaved mla;
  MlpSaved mlp;
  MoeSaved moe;
  bool moe_layer = false;
};

struct ForwardState {
  std::vector<LayerState> layers;
  Tensor h_last;          // [T, H] residual after the last layer
  Tensor hf, hf_rstd;     // final norm out [T, H], rstd [T]
  Tensor lse;             // [T] head log-sum-exp
  SeqLayout seq;
  Tensor ids, targets;
  double aux_loss = 0;    // Σ MoE balance losses (already in the gradients)
  // Weight of the balance losses' gradient in backward: this forward's share of the
  // update's sequences (all micro-batches, all ranks), so that micro-batching and data
  // parallelism sum the balance-loss gradient once, as one forward over the global
  // batch would. 1 when one forward is the whole batch.
  double aux_weight = 1;
  // backward calls it with l once layer l's parameter gradients are complete for this
  // backward (l = L-1 down to 0; the MTP module's, head's, final norm's and embedding's
  // are not reported). The data-parallel step starts summing layer l's gradients over
  // the ranks there while backward goes on (trainer/grad_overlap.h). Empty: not called.
  std::function<void(std::int64_t layer)> layer_grads_done;
};

class Transformer {
 public:
  explicit Transformer(ModelWeights& weights);

  const ModelConfig& config() const { return w_.config(); }
  // Where the weights live; every forward/backward runs there (batches must be moved
  // there first: Batch::to).
  Device device() const;
  ModelWeights& weights() { return w_; }
  const ModelWeights& weights() const { return w_; }
  // The LM head matrix [V, H]: lm_head.weight, or the embedding when tied.
  Tensor head_weight() const;
  // The LM head's options: BF16 GEMM operands unless the model trains in FP32 (the
  // DeepSeek-V3 recipe keeps the output head in BF16 under FP8). Every head of the
  // model (loss, MTP, top-k, sampling) uses them, so sampler and trainer agree.
  ops::LogprobHeadOptions head_options() const;

  // Runs the layers and the final norm; returns hf [T, H].
  Tensor forward_hidden(const Batch& batch, ForwardState& st);
  // Full forward: per-token log-probs of batch.targets [T]; entropy [T] if asked.
  Tensor forward_logprobs(const Batch& batch, ForwardState& st, Tensor* entropy = nullptr);
  // Backward of Σ_t dlogp[t] * logp[t] (+ the MoE balance losses); parameter
  // gradients accumulate (+=) into weights().grads(). extra_dh_last adds a gradient
  // on the last residual stream (the MTP module's input); extra_dhf one on the final
  // norm's output st.hf (a loss on the head's input, e.g. logit KD).
  void backward(const Tensor& dlogp, ForwardState& st, const Tensor* extra_dh_last = nullptr,
                const Tensor* extra_dhf = nullptr);

  // Per-expert token counts of the last forward, per MoE layer (for the bias update).
  std::vector<std::vector<std::int64_t>> expert_load(const ForwardState& st) const;

  // The rotary table covering the positions in `pos` (grown on demand).
  const RopeTable& rope_for(const Tensor& pos);

  // The KV cache dtype that generators over this model keep (F32 or BF16; rollout/
  // generator.h). Unset: the generator's default. The pipeline sets run.kv_cache here.
  void set_kv_cache_dtype(std::optional<DType> dtype);
  std::optional<DType> kv_cache_dtype() const { return kv_cache_dtype_; }

 private:
  friend class Mtp;  // runs its blocks through layer_forward/layer_backward
  // One decoder block (attention + FFN with their norms and residuals).
  Tensor layer_forward(std::int64_t layer, bool moe, const Tensor& h, LayerState& ls, ForwardState& st);
  // dh: gradient w.r.t. the block's output in, w.r.t. its input out.
  void layer_backward(std::int64_t layer, LayerState& ls, ForwardState& st, Tensor& dh);

  ModelWeights& w_;
  RopeTable rope_;
  std::optional<DType> kv_cache_dtype_;
};

}  // namespace crucible
