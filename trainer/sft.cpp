// trainer/sft.cpp: packed SFT forward/backward.
#include "trainer/sft.h"

#include "kernels/kd_head.h"
#include "kernels/linear.h"

namespace crucible::trainer {

double response_tokens(std::span<const data::TokenizedExample> examples) {
  double n = 0;
  for (const auto& e : examples)
    for (std::size_t i = 1; i < e.loss_mask.size(); ++i) n += e.loss_mask[i];  // targets of positions 0..n-2
  return n;
}

void add_expert_load(std::vector<std::vector<std::int64_t>>& total, const std::vector<std::vector<std::int64_t>>& part) {
  if (total.empty()) {
    total = part;
    return;
  }
  for (std::size_t l = 0; l < part.size(); ++l)
    for (std::size_t e = 0; e < part[l].size(); ++e) total[l][e] += part[l][e];
}

SftAccumulation sft_accumulate(Transformer& model, std::span<const data::TokenizedExample> examples,
                               double norm_tokens, double norm_sequences, std::int64_t max_tokens, double weight,
                               const KdTerm* kd, const std::function<void(std::int64_t)>& last_backward) {
  SftAccumulation acc;
  if (examples.empty()) return acc;
  if (kd && kd->weight <= 0) kd = nullptr;
  const double ce_weight = kd ? weight * (1 - kd->weight) : weight;
  data::PackingOptions opts;
  opts.max_tokens = max_tokens;
  const auto rows = data::pack_examples(examples, opts);
  const ops::WeightCacheScope fixed_weights;  // the model's (and the KD teacher's) weights, until the update
  for (const data::PackedRow& row : rows) {
    const Batch b = Batch{row.ids, row.targets, row.pos, row.cu_seqlens}.to(model.device());
    ForwardState st;
    if (&row == &rows.back()) st.layer_grads_done = last_backward;
    st.aux_weight = static_cast<double>(b.sequences()) / norm_sequences;
    const Tensor logp = on_host(model.forward_logprobs(b, st));
    const std::int64_t T = b.tokens();
    Tensor dlogp(Shape{T}, DType::F32, Device::cpu(), "sft.dlogp");  // built on the host
    const float* lp = logp.data<float>();
    const float* mask = row.loss_mask.data<float>();
    float* d = dlogp.data<float>();
    for (std::int64_t t = 0; t < T; ++t) {
      acc.loss_sum -= static_cast<double>(mask[t]) * lp[t];
      acc.tokens += mask[t];
      d[t] = static_cast<float>(-ce_weight * mask[t] / norm_tokens);
    }
    acc.all_tokens += static_cast<double>(T);
    add_expert_load(acc.expert_load, model.expert_load(st));
    if (!kd) {
      model.backward(on_device(dlogp, model.device()), st);
      continue;
    }
    // KD: the frozen teacher's final hidden states on the same rows, then the KL of the
    // two heads' tempered distributions; its gradient enters at the student's head input.
    ForwardState teacher_st;
    const Tensor ht = kd->teacher->forward_hidden(b, teacher_st);  // [T, D_teacher]
    const ops::KdHeadOptions ko{static_cast<float>(kd->temperature)};
    const Device dev = model.device();
    Tensor kl(Shape{T}, DType::F32, dev, "kd.loss");  // [T] tau^2 KL
    ops::kd_head_forward(st.hf, model.head_weight(), ht, kd->teacher->head_weight(), kl, ko);
    const Tensor kl_host = on_host(kl);
    Tensor dkl(Shape{T}, DType::F32, Device::cpu(), "kd.dloss");  // built on the host
    for (std::int64_t t = 0; t < T; ++t) {
      acc.kd_sum += static_cast<double>(mask[t]) * kl_host.data<float>()[t];
      dkl.data<float>()[t] = static_cast<float>(weight * kd->weight * mask[t] / norm_tokens);
    }
    const ModelConfig& c = model.config();
    Tensor dhead = model.weights().grad(c.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight");
    Tensor dhf(st.hf.shape(), DType::F32, dev, "kd.dhf");  // [T, H]
    ops::kd_head_backward(on_device(dkl, dev), st.hf, model.head_weight(), ht,
                          kd->teacher->head_weight(), dhf, dhead, ko);
    model.backward(on_device(dlogp, dev), st, nullptr, &dhf);
  }
  return acc;
}

}  // namespace crucible::trainer
