// rollout/generator.cpp: prefill, decode loop, sampling, stop rules.
#include "rollout/generator.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/rng.h"
#include "kernels/linear.h"
#include "rollout/cached_forward.h"

namespace crucible::rollout {

void SamplingParams::validate() const {
  CRUCIBLE_USER_CHECK(temperature >= 0, "sampling temperature must be >= 0, got ", temperature);
  CRUCIBLE_USER_CHECK(top_p > 0 && top_p <= 1, "sampling top_p must be in (0, 1], got ", top_p);
  CRUCIBLE_USER_CHECK(top_k >= 0, "sampling top_k must be >= 0, got ", top_k);
  CRUCIBLE_USER_CHECK(max_tokens >= 1, "max_tokens must be >= 1, got ", max_tokens);
}

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::Eos: return "eos";
    case FinishReason::Stop: return "stop";
    case FinishReason::Length: return "length";
  }
  return "?";
}

Generator::Generator(Transformer& model, std::int64_t max_batch, std::int64_t capacity)
    : model_(model),
      cache_(model.config(), max_batch, capacity, model.device()) {}

namespace {

// Samples from one row of logits [V]; returns the token.
std::int32_t sample(const float* logits, std::int64_t V, const SamplingParams& p, Rng& rng) {
  if (p.temperature == 0) return static_cast<std::int32_t>(std::max_element(logits, logits + V) - logits);
  std::vector<std::int32_t> order(static_cast<std::size_t>(V));
  std::iota(order.begin(), order.end(), 0);
  // Candidates by descending logit (ties: lower id first) - deterministic.
  std::stable_sort(order.begin(), order.end(), [&](std::int32_t a, std::int32_t b) { return logits[a] > logits[b]; });
  std::int64_t n = V;
  if (p.top_k > 0) n = std::min(n, p.top_k);
  const double mx = logits[order[0]];
  std::vector<double> prob(static_cast<std::size_t>(n));
  double sum = 0;
  for (std::int64_t i = 0; i < n; ++i) sum += (prob[i] = std::exp((logits[order[i]] - mx) / p.temperature));
  if (p.top_p < 1) {  // smallest prefix whose mass reaches top_p
    double acc = 0;
    std::int64_t keep = 0;
    while (keep < n && acc < p.top_p * sum) acc += prob[keep++];
    n = std::max<std::int64_t>(keep, 1);
    sum = acc;
  }
  double u = rng.uniform_double() * sum;
  for (std::int64_t i = 0; i < n; ++i) {
    u -= prob[i];
    if (u < 0) return order[i];
  }
  return order[n - 1];
}

double log_softmax_at(const float* logits, std::int64_t V, std::int32_t token) {
  double mx = logits[0];
  for (std::int64_t i = 1; i < V; ++i) mx = std::max(mx, static_cast<double>(logits[i]));
  double sum = 0;
  for (std::int64_t i = 0; i < V; ++i) sum += std::exp(logits[i] - mx);
  return logits[token] - mx - std::log(sum);
}

bool ends_with(const std::vector<std::int32_t>& s, const std::vector<std::int32_t>& tail) {
  return !tail.empty() && s.size() >= tail.size() && std::equal(tail.rbegin(), tail.rend(), s.rbegin());
}

}  // namespace

std::vector<Completion> Generator::generate(const std::vector<std::vector<std::int32_t>>& prompts,
                                            const SamplingParams& p) {
  p.validate();
  const ModelConfig& c = model_.config();
  const std::int64_t V = c.vocab_size;
  std::vector<Completion> out(prompts.size());
  const Tensor head = model_.head_weight();
  // Prompts run in waves of at most `slots` sequences.
  for (std::size_t first = 0; first < prompts.size(); first += static_cast<std::size_t>(cache_.slots)) {
    const std::size_t count = std::min(prompts.size() - first, static_cast<std::size_t>(cache_.slots));
    cache_.reset();
    std::vector<Rng> rngs;
    std::vector<Chunk> chunks;
    for (std::size_t i = 0; i < count; ++i) {
      const auto& prompt = prompts[first + i];
      CRUCIBLE_USER_CHECK(!prompt.empty(), "prompt ", first + i, " is empty");
      for (std::int32_t t : prompt)
        CRUCIBLE_USER_CHECK(t >= 0 && t < V, "prompt ", first + i, " has token ", t, " outside the vocabulary [0, ", V, ")");
      CRUCIBLE_USER_CHECK(static_cast<std::int64_t>(prompt.size()) + p.max_tokens <= cache_.capacity,
                          "prompt ", first + i, " (", prompt.size(), " tokens) + max_tokens (", p.max_tokens,
                          ") exceeds the generator capacity of ", cache_.capacity);
      rngs.emplace_back(p.seed, p.stream_base + first + i);
      chunks.push_back({static_cast<std::int64_t>(i), prompt});
    }
    Tensor hf = on_host(forward_cached(model_, cache_, chunks));
    // The hidden state of each sequence's last token predicts its first new token.
    std::vector<std::int64_t> last_row;
    std::int64_t row = -1;
    for (const Chunk& ch : chunks) last_row.push_back(row += static_cast<std::int64_t>(ch.tokens.size()));
    std::vector<std::size_t> active(count);
    std::iota(active.begin(), active.end(), 0);
    while (!active.empty()) {
      const std::int64_t n = static_cast<std::int64_t>(active.size());
      // The last rows are gathered and the logits sampled on the host; the head GEMM
      // runs where the model lives, in the precision of the trainer's head.
      Tensor h_last(Shape{n, c.hidden_size}, DType::F32);
      for (std::int64_t i = 0; i < n; ++i)
        std::copy_n(hf.data<float>() + last_row[i] * c.hidden_size, c.hidden_size,
                    h_last.data<float>() + i * c.hidden_size);
      Tensor logits(Shape{n, V}, DType::F32, head.device());
      ops::gemm_nt(on_device(h_last, head.device()), head, logits, 0.0f,
                   model_.head_options().bf16 ? ops::GemmPrecision::Bf16 : ops::GemmPrecision::Fp32);
      logits = on_host(logits);
      std::vector<Chunk> next;
      std::vector<std::size_t> still;
      for (std::int64_t i = 0; i < n; ++i) {
        const std::size_t s = active[i];
        Completion& comp = out[first + s];
        const float* lg = logits.data<float>() + i * V;
        const std::int32_t tok = sample(lg, V, p, rngs[s]);
        comp.tokens.push_back(tok);
        comp.logprobs.push_back(static_cast<float>(log_softmax_at(lg, V, tok)));
        bool done = false;
        if (std::find(p.eos_ids.begin(), p.eos_ids.end(), tok) != p.eos_ids.end()) {
          comp.finish = FinishReason::Eos;
          done = true;
        } else if (std::any_of(p.stop_sequences.begin(), p.stop_sequences.end(),
                               [&](const auto& stop) { return ends_with(comp.tokens, stop); })) {
          comp.finish = FinishReason::Stop;
          done = true;
        } else if (static_cast<std::int64_t>(comp.tokens.size()) >= p.max_tokens) {
          comp.finish = FinishReason::Length;
          done = true;
        }
        if (!done) {
          still.push_back(s);
          next.push_back({static_cast<std::int64_t>(s), {tok}});
        }
      }
      active = std::move(still);
      if (active.empty()) break;
      hf = on_host(forward_cached(model_, cache_, next));
      last_row.resize(active.size());
      std::iota(last_row.begin(), last_row.end(), 0);
    }
  }
  return out;
}

}  // namespace crucible::rollout
