// trainer/sft.cpp: packed SFT forward/backward.
#include "trainer/sft.h"

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
                               double norm_tokens, std::int64_t max_tokens, double weight) {
  SftAccumulation acc;
  if (examples.empty()) return acc;
  data::PackingOptions opts;
  opts.max_tokens = max_tokens;
  const auto rows = data::pack_examples(examples, opts);
  for (const data::PackedRow& row : rows) {
    const Batch b = Batch{row.ids, row.targets, row.pos, row.cu_seqlens}.to(model.device());
    ForwardState st;
    const Tensor logp = on_host(model.forward_logprobs(b, st));
    const std::int64_t T = b.tokens();
    Tensor dlogp(Shape{T}, DType::F32, Device::cpu(), "sft.dlogp");  // built on the host
    const float* lp = logp.data<float>();
    const float* mask = row.loss_mask.data<float>();
    float* d = dlogp.data<float>();
    for (std::int64_t t = 0; t < T; ++t) {
      acc.loss_sum -= static_cast<double>(mask[t]) * lp[t];
      acc.tokens += mask[t];
      d[t] = static_cast<float>(-weight * mask[t] / norm_tokens);
    }
    acc.all_tokens += static_cast<double>(T);
    add_expert_load(acc.expert_load, model.expert_load(st));
    model.backward(dlogp.device() == model.device() ? dlogp : dlogp.to(model.device()), st);
  }
  return acc;
}

}  // namespace crucible::trainer
