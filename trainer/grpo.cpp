// trainer/grpo.cpp: sampling, rewards, advantages and the clipped-surrogate updates.
#include "trainer/grpo.h"

#include <chrono>
#include <algorithm>
#include <cmath>
#include <optional>
#include <span>

#include "core/error.h"
#include "kernels/linear.h"
#include "trainer/sft.h"

namespace crucible::trainer {

void GrpoConfig::validate() const {
  CRUCIBLE_USER_CHECK(steps >= 0, "grpo.steps must be >= 0");
  CRUCIBLE_USER_CHECK(prompts_per_step >= 1, "grpo.prompts_per_step must be >= 1");
  CRUCIBLE_USER_CHECK(group_size >= 2, "grpo.group_size must be >= 2 (advantages compare samples of a group)");
  CRUCIBLE_USER_CHECK(temperature > 0, "grpo.temperature must be > 0 for sampling");
  CRUCIBLE_USER_CHECK(max_new_tokens >= 1, "grpo.max_new_tokens must be >= 1");
  CRUCIBLE_USER_CHECK(ppo_epochs >= 1 && mini_batches >= 1, "grpo.ppo_epochs and grpo.mini_batches must be >= 1");
  CRUCIBLE_USER_CHECK(max_tokens_per_forward >= 64, "grpo.max_tokens_per_forward must be >= 64");
  loss.validate();
}

namespace {

struct Sample {
  std::vector<std::int32_t> ids;  // prompt + completion
  std::int64_t prompt_len = 0;
  std::vector<float> sampler_logp;  // per completion token
  std::vector<float> old_logp, ref_logp;
  double advantage = 0;
  std::int64_t completion_len() const { return static_cast<std::int64_t>(ids.size()) - prompt_len; }
};

// Splits sample indices into chunks of at most `budget` tokens (at least one each).
std::vector<std::vector<std::size_t>> chunks_of(const std::vector<Sample>& s, const std::vector<std::size_t>& idx,
                                                std::int64_t budget) {
  std::vector<std::vector<std::size_t>> out;
  std::int64_t used = 0;
  for (std::size_t i : idx) {
    const auto n = static_cast<std::int64_t>(s[i].ids.size());
    if (out.empty() || used + n > budget) out.emplace_back(), used = 0;
    out.back().push_back(i);
    used += n;
  }
  return out;
}

// Teacher-forced log-probs of each sample's completion tokens (and entropy sum).
double score_completions(Transformer& model, std::vector<Sample>& s, const std::vector<std::size_t>& idx,
                         std::int64_t budget, bool ref) {
  double entropy = 0;
  for (const auto& chunk : chunks_of(s, idx, budget)) {
    std::vector<std::vector<std::int32_t>> seqs;
    for (std::size_t i : chunk) seqs.push_back(s[i].ids);
    const Batch b = Batch::from_sequences(seqs).to(model.device());
    ForwardState st;
    Tensor ent;
    const Tensor lp = on_host(model.forward_logprobs(b, st, ref ? nullptr : &ent));
    if (!ref) ent = on_host(ent);
    std::int64_t base = 0;
    for (std::size_t i : chunk) {
      auto& dst = ref ? s[i].ref_logp : s[i].old_logp;
      dst.assign(lp.data<float>() + base + s[i].prompt_len - 1,
                 lp.data<float>() + base + s[i].prompt_len - 1 + s[i].completion_len());
      if (!ref)
        for (std::int64_t t = 0; t < s[i].completion_len(); ++t) entropy += ent.data<float>()[base + s[i].prompt_len - 1 + t];
      base += static_cast<std::int64_t>(s[i].ids.size());
    }
  }
  return entropy;
}

}  // namespace

GrpoMetrics grpo_step(Transformer& policy, Transformer* reference, AdamW& opt, const TaskEnv& env,
                      const Scorer& scorer, const GrpoConfig& c, std::int64_t step, std::int64_t first_prompt,
                      std::uint64_t seed, dist::Communicator& comm, const SftTerm& sft) {
  const auto t0 = std::chrono::steady_clock::now();
  const int rank = comm.rank(), world = comm.world();
  CRUCIBLE_CHECK(world == 1 || opt.data_parallel().comm == &comm,
                 "grpo_step: the optimizer must be data parallel over the step's communicator");
  const std::int64_t G = c.group_size;
  GrpoMetrics m;

  // 1. This rank's prompts (whole groups) and their samples.
  std::vector<Sample> samples;
  std::vector<std::vector<double>> components;
  double sum_reward = 0, sum_correct = 0, sum_format = 0, sum_len = 0;
  rollout::SamplingParams sp;
  sp.temperature = c.temperature;
  sp.top_p = c.top_p;
  sp.top_k = c.top_k;
  sp.max_tokens = c.max_new_tokens;
  sp.eos_ids = {env.eos_id()};
  sp.seed = seed * 1000003ull + static_cast<std::uint64_t>(step);
  std::vector<std::string> component_names;
  // All of this rank's groups decode as one batch (rollout::generate_groups).
  std::vector<PromptItem> prompts;
  std::vector<std::vector<std::int32_t>> ids;
  std::vector<std::int64_t> numbers;
  for (std::int64_t j = rank; j < c.prompts_per_step; j += world) {
    prompts.push_back(env.prompt(static_cast<std::uint64_t>(first_prompt + step * c.prompts_per_step + j),
                                 data::Split::Train));
    ids.push_back(prompts.back().ids);
    numbers.push_back(j);
  }
  const std::vector<rollout::Completion> all = rollout::generate_groups(policy, ids, numbers, G, sp);
  for (std::size_t pi = 0; pi < prompts.size(); ++pi) {
    const PromptItem& prompt = prompts[pi];
    const std::span<const rollout::Completion> outs(all.data() + pi * static_cast<std::size_t>(G),
                                                    static_cast<std::size_t>(G));
    std::vector<double> rewards;
    for (const auto& o : outs) {
      std::vector<std::int32_t> content(o.tokens.begin(), o.tokens.end());
      if (!content.empty() && content.back() == env.eos_id()) content.pop_back();
      const std::string text = env.full_completion(env.tokenizer().decode(content));
      const Score sc = scorer.score(prompt, text, static_cast<std::int64_t>(o.tokens.size()));
      rewards.push_back(sc.reward);
      sum_reward += sc.reward;
      sum_correct += sc.correct;
      sum_format += sc.formatted;
      sum_len += static_cast<double>(o.tokens.size());
      if (component_names.empty())
        for (const auto& [name, v] : sc.components) component_names.push_back(name);
      components.emplace_back();
      for (const auto& [name, v] : sc.components) components.back().push_back(v);
      Sample s;
      s.ids = prompt.ids;
      s.prompt_len = static_cast<std::int64_t>(prompt.ids.size());
      s.ids.insert(s.ids.end(), o.tokens.begin(), o.tokens.end());
      s.sampler_logp = o.logprobs;
      samples.push_back(std::move(s));
    }
    const auto adv = group_advantages(rewards, G, c.std_normalize);
    for (std::int64_t g = 0; g < G; ++g) samples[samples.size() - static_cast<std::size_t>(G - g)].advantage = adv[g];
  }

  // 2. Dynamic sampling: groups with all-equal rewards carry no signal.
  std::vector<std::size_t> kept;
  double groups = 0, groups_kept = 0;
  for (std::size_t g0 = 0; g0 < samples.size(); g0 += static_cast<std::size_t>(G)) {
    bool all_equal = true;
    for (std::int64_t g = 0; g < G; ++g) all_equal &= samples[g0 + g].advantage == 0;
    ++groups;
    if (c.dynamic_sampling && all_equal) continue;
    ++groups_kept;
    for (std::int64_t g = 0; g < G; ++g) kept.push_back(g0 + static_cast<std::size_t>(g));
  }

  // 3. Old-policy and reference log-probs, recomputed by the trainer. The policy's weights
  // stay fixed from here to the first update: one weight cache serves both.
  std::optional<ops::WeightCacheScope> fixed_weights(std::in_place);
  double entropy_sum = score_completions(policy, samples, kept, c.max_tokens_per_forward, false);
  if (reference && c.loss.kl_beta > 0) score_completions(*reference, samples, kept, c.max_tokens_per_forward, true);
  double gap_sum = 0, tokens = 0;
  for (std::size_t i : kept)
    for (std::int64_t t = 0; t < samples[i].completion_len(); ++t) {
      gap_sum += std::abs(static_cast<double>(samples[i].sampler_logp[t]) - samples[i].old_logp[t]);
      tokens += 1;
    }

  // 4. Updates: ppo_epochs x mini_batches, each normalized over its global mini-batch.
  PolicyLossStats total;
  StepStats last{};
  std::vector<std::vector<std::int64_t>> load;  // expert load of the forwards of one update
  for (std::int64_t epoch = 0; epoch < c.ppo_epochs; ++epoch) {
    for (std::int64_t mb = 0; mb < c.mini_batches; ++mb) {
      std::vector<std::size_t> part;
      for (std::size_t k = 0; k < kept.size(); ++k)
        if (static_cast<std::int64_t>((k / static_cast<std::size_t>(G)) % static_cast<std::size_t>(c.mini_batches)) == mb)
          part.push_back(kept[k]);
      double counts[2] = {0, 0};
      for (std::size_t i : part) counts[0] += static_cast<double>(samples[i].completion_len()), counts[1] += 1;
      comm.all_reduce_f64(std::span<double>(counts, 2), dist::ReduceOp::Sum);
      const bool has_sft = sft.examples && sft.weight > 0 && mb == c.mini_batches - 1;
      if (counts[1] == 0 && !has_sft) continue;
      policy.weights().zero_grads();
      if (!fixed_weights) fixed_weights.emplace();
      // The update's sequences over all ranks: the balance-loss weight of each forward.
      const double update_sequences = counts[1] + (has_sft ? sft.global_sequences : 0.0);
      // The update's last backward on this rank starts the ranks' gradient sum per layer.
      const bool sft_backward = has_sft && !sft.examples->empty();
      const auto chunks = chunks_of(samples, part, c.max_tokens_per_forward);
      for (const auto& chunk : chunks) {
        std::vector<std::vector<std::int32_t>> seqs;
        for (std::size_t i : chunk) seqs.push_back(samples[i].ids);
        const Batch b = Batch::from_sequences(seqs).to(policy.device());
        ForwardState st;
        st.aux_weight = static_cast<double>(chunk.size()) / update_sequences;
        if (!sft_backward && &chunk == &chunks.back()) st.layer_grads_done = opt.last_backward_hook();
        const Tensor lp = on_host(policy.forward_logprobs(b, st));  // the loss is computed on the host
        const std::int64_t T = b.tokens();
        Tensor old_t(Shape{T}, DType::F32), ref_t, d(Shape{T}, DType::F32);
        if (reference && c.loss.kl_beta > 0) ref_t = Tensor(Shape{T}, DType::F32);
        std::vector<ResponseSpan> spans;
        std::int64_t base = 0;
        for (std::size_t i : chunk) {
          const std::int64_t begin = base + samples[i].prompt_len - 1, n = samples[i].completion_len();
          std::copy(samples[i].old_logp.begin(), samples[i].old_logp.end(), old_t.data<float>() + begin);
          if (ref_t.defined()) std::copy(samples[i].ref_logp.begin(), samples[i].ref_logp.end(), ref_t.data<float>() + begin);
          spans.push_back({begin, begin + n, samples[i].advantage});
          base += static_cast<std::int64_t>(samples[i].ids.size());
        }
        const PolicyLossStats ps = policy_loss(c.loss, {counts[0], counts[1]}, spans, lp, old_t, ref_t, d);
        total.loss += ps.loss;
        total.kl_sum += ps.kl_sum;
        total.clipped_tokens += ps.clipped_tokens;
        total.tokens += ps.tokens;
        add_expert_load(load, policy.expert_load(st));
        policy.backward(on_device(d, policy.device()), st);
      }
      if (has_sft)
        sft_accumulate(policy, *sft.examples, std::max(sft.global_tokens, 1.0), update_sequences,
                       c.max_tokens_per_forward, sft.weight, nullptr, opt.last_backward_hook());
      fixed_weights.reset();  // the update changes the weights
      last = opt.step(step, c.steps);  // sums the ranks' gradients first (opt is data parallel over comm)
      balance_router(policy.weights(), std::move(load), comm);
      load.clear();
    }
  }

  // 5. Metrics over all ranks.
  std::vector<double> agg = {sum_reward, sum_correct, sum_format, sum_len, static_cast<double>(samples.size()),
                             groups, groups_kept, entropy_sum, gap_sum, tokens, total.kl_sum, total.clipped_tokens,
                             total.tokens};
  std::vector<double> comp(component_names.size(), 0.0);
  for (const auto& row : components)
    for (std::size_t k = 0; k < row.size() && k < comp.size(); ++k) comp[k] += row[k];
  agg.insert(agg.end(), comp.begin(), comp.end());
  comm.all_reduce_f64(std::span<double>(agg), dist::ReduceOp::Sum);
  const double n = std::max(agg[4], 1.0);
  m.reward = agg[0] / n;
  m.accuracy = agg[1] / n;
  m.format_rate = agg[2] / n;
  m.response_length = agg[3] / n;
  m.groups = agg[5];
  m.groups_kept = agg[6];
  m.entropy = agg[7] / std::max(agg[9], 1.0);
  m.sampler_gap = agg[8] / std::max(agg[9], 1.0);
  m.kl = agg[10] / std::max(agg[12], 1.0);
  m.clip_fraction = agg[11] / std::max(agg[12], 1.0);
  m.tokens = agg[3];
  for (std::size_t k = 0; k < component_names.size(); ++k) m.components.emplace_back(component_names[k], agg[13 + k] / n);
  m.grad_norm = last.grad_norm;
  m.lr = last.lr;
  m.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return m;
}

}  // namespace crucible::trainer
