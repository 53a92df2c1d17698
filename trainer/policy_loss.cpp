// trainer/policy_loss.cpp: GRPO / DAPO / Dr.GRPO / GSPO objective and its gradient.
#include "trainer/policy_loss.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace crucible::trainer {

void PolicyLossConfig::validate() const {
  CRUCIBLE_USER_CHECK(clip_eps_low >= 0 && clip_eps_low < 1, "grpo.clip_eps_low must be in [0, 1), got ", clip_eps_low);
  CRUCIBLE_USER_CHECK(clip_eps_high >= 0, "grpo.clip_eps_high must be >= 0, got ", clip_eps_high);
  CRUCIBLE_USER_CHECK(kl_beta >= 0, "grpo.kl_beta must be >= 0, got ", kl_beta);
  CRUCIBLE_USER_CHECK(constant_normalizer > 0, "grpo.constant_normalizer must be > 0");
}

std::vector<double> group_advantages(const std::vector<double>& rewards, std::int64_t group_size,
                                     bool std_normalize, double eps) {
  CRUCIBLE_CHECK(group_size > 0 && rewards.size() % static_cast<std::size_t>(group_size) == 0,
                 "rewards (", rewards.size(), ") are not whole groups of ", group_size);
  std::vector<double> adv(rewards.size());
  for (std::size_t g = 0; g < rewards.size(); g += static_cast<std::size_t>(group_size)) {
    double mean = 0;
    for (std::int64_t i = 0; i < group_size; ++i) mean += rewards[g + i];
    mean /= static_cast<double>(group_size);
    double var = 0;
    bool all_equal = true;
    for (std::int64_t i = 0; i < group_size; ++i) {
      var += (rewards[g + i] - mean) * (rewards[g + i] - mean);
      all_equal &= rewards[g + i] == rewards[g];
    }
    // Sample std (n - 1) as in the GRPO reference implementations; 0 for n = 1.
    const double std_dev = group_size > 1 ? std::sqrt(var / static_cast<double>(group_size - 1)) : 0.0;
    for (std::int64_t i = 0; i < group_size; ++i) {
      double a = all_equal ? 0.0 : rewards[g + i] - mean;
      if (std_normalize && !all_equal) a /= std_dev + eps;
      adv[g + i] = a;
    }
  }
  return adv;
}

PolicyLossStats policy_loss(const PolicyLossConfig& cfg, const LossNormalizer& norm,
                            const std::vector<ResponseSpan>& spans, const Tensor& logp_new,
                            const Tensor& logp_old, const Tensor& logp_ref, Tensor& dlogp) {
  const float* lp = logp_new.data<float>();
  const float* lo = logp_old.data<float>();
  const float* lr = cfg.kl_beta > 0 ? logp_ref.data<float>() : nullptr;
  float* d = dlogp.data<float>();
  std::fill(d, d + dlogp.numel(), 0.0f);
  CRUCIBLE_CHECK(norm.total_sequences > 0 && norm.total_tokens > 0, "policy loss with an empty step");
  PolicyLossStats st;
  const double lo_clip = 1 - cfg.clip_eps_low, hi_clip = 1 + cfg.clip_eps_high;
  for (const ResponseSpan& s : spans) {
    const double len = static_cast<double>(s.end - s.begin);
    if (len <= 0) continue;
    double w = 0;  // per-token weight of this response
    switch (cfg.aggregation) {
      case LossAggregation::TokenMean: w = 1.0 / norm.total_tokens; break;
      case LossAggregation::SeqMeanTokenMean: w = 1.0 / (norm.total_sequences * len); break;
      case LossAggregation::SeqMeanTokenSum: w = 1.0 / norm.total_sequences; break;
      case LossAggregation::ConstantNormalized: w = 1.0 / (norm.total_sequences * cfg.constant_normalizer); break;
    }
    const double A = s.advantage;
    // GSPO: one ratio per sequence, from the mean token log-ratio.
    double seq_ratio = 0;
    if (cfg.ratio_level == RatioLevel::Sequence) {
      double mean = 0;
      for (std::int64_t t = s.begin; t < s.end; ++t) mean += static_cast<double>(lp[t]) - lo[t];
      seq_ratio = std::exp(mean / len);
    }
    for (std::int64_t t = s.begin; t < s.end; ++t) {
      const double r = cfg.ratio_level == RatioLevel::Token ? std::exp(static_cast<double>(lp[t]) - lo[t]) : seq_ratio;
      const double unclipped = r * A, clipped = std::clamp(r, lo_clip, hi_clip) * A;
      // -min(unclipped, clipped): the gradient flows only through the unclipped branch.
      const bool use_clipped = clipped < unclipped;
      // d(-r A)/dlogp_t = -A r. For the sequence ratio, the response's len equal
      // terms w f(s) each contribute f'(s) s / len: together -A s w as well.
      double grad = use_clipped ? 0.0 : -A * r;
      double term = -std::min(unclipped, clipped);
      if (lr) {
        const double diff = static_cast<double>(lr[t]) - lp[t];  // ref - new
        const double k3 = std::exp(diff) - diff - 1;
        term += cfg.kl_beta * k3;
        grad += cfg.kl_beta * (1 - std::exp(diff));
        st.kl_sum += k3;
      }
      d[t] = static_cast<float>(w * grad);
      st.loss += w * term;
      st.clipped_tokens += use_clipped ? 1 : 0;
      st.ratio_sum += r;
      st.tokens += 1;
    }
  }
  return st;
}

}  // namespace crucible::trainer
