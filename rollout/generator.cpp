// rollout/generator.cpp: prefill, decode loop, sampling, stop rules.
//
// Hidden states, logits and the sampling (ops::sample_tokens) stay on the model's
// device; per step only each sequence's uniform goes there and its token and log-prob
// come back. The uniforms are drawn here, one per sampled token (none when greedy),
// from the sequence's own stream.
#include "rollout/generator.h"

#include <algorithm>
#include <numeric>

#include "core/rng.h"
#include "kernels/linear.h"
#include "kernels/sampling.h"
#include "kernels/tensor_ops.h"
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

DType default_cache_dtype(const Transformer& model) {
  if (const std::optional<DType> chosen = model.kv_cache_dtype()) return *chosen;
  return model.device().is_cuda() && model.config().is_mla() ? DType::BF16 : DType::F32;
}

Generator::Generator(Transformer& model, std::int64_t max_batch, std::int64_t capacity,
                     std::optional<DType> cache_dtype)
    : model_(model),
      cache_(model.config(), max_batch, capacity, model.device(), cache_dtype.value_or(default_cache_dtype(model))) {}

namespace {

bool ends_with(const std::vector<std::int32_t>& s, const std::vector<std::int32_t>& tail) {
  return !tail.empty() && s.size() >= tail.size() && std::equal(tail.rbegin(), tail.rend(), s.rbegin());
}

}  // namespace

std::vector<Completion> Generator::generate(const std::vector<std::vector<std::int32_t>>& prompts,
                                            const SamplingParams& p) {
  p.validate();
  const ops::WeightCacheScope fixed_weights;  // the model does not change while it generates
  CRUCIBLE_CHECK(p.streams.empty() || p.streams.size() == prompts.size(), "generate: ", p.streams.size(),
                 " streams for ", prompts.size(), " prompts (give one per prompt, or none)");
  const ModelConfig& c = model_.config();
  const std::int64_t V = c.vocab_size;
  std::vector<Completion> out(prompts.size());
  const Tensor head = model_.head_weight();
  const Device dev = head.device();
  const ops::SamplingOptions sampling{p.temperature, p.top_p, p.top_k};
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
      rngs.emplace_back(p.seed, p.streams.empty() ? p.stream_base + first + i : p.streams[first + i]);
      chunks.push_back({static_cast<std::int64_t>(i), prompt});
    }
    // The hidden state of each sequence's last prompt token predicts its first new token.
    Tensor hf = forward_cached(model_, cache_, chunks);  // [Σ prompt tokens, H]
    {
      Tensor last_row(Shape{static_cast<std::int64_t>(count)}, DType::I32, Device::cpu(), "last_row");
      std::int32_t row = -1;
      for (std::size_t i = 0; i < count; ++i)
        last_row.data<std::int32_t>()[i] = row += static_cast<std::int32_t>(chunks[i].tokens.size());
      Tensor h_last = Tensor::empty(Shape{static_cast<std::int64_t>(count), c.hidden_size}, DType::F32, hf.device(),
                                    "h_last");
      ops::gather_rows(hf, on_device(last_row, hf.device()), h_last);
      hf = h_last;  // [count, H]: row i is sequence i; decode steps keep one row per active sequence
    }
    std::vector<std::size_t> active(count);
    std::iota(active.begin(), active.end(), 0);
    while (!active.empty()) {
      const std::int64_t n = static_cast<std::int64_t>(active.size());
      Tensor logits = Tensor::empty(Shape{n, V}, DType::F32, dev, "logits");  // [n, V]
      // The head GEMM in the precision of the trainer's head, as a linear op: the head is
      // a weight of the generate call's WeightCacheScope, so its BF16 copy is made once per
      // call, not once per decode step (gemm_nt's b is never cached).
      ops::linear_forward(on_device(hf, dev), head, Tensor(), logits,
                          model_.head_options().bf16 ? ops::GemmPrecision::Bf16 : ops::GemmPrecision::Fp32);
      Tensor u(Shape{n}, DType::F64, Device::cpu(), "u");  // [n] one uniform per sampled token
      if (p.temperature != 0)
        for (std::int64_t i = 0; i < n; ++i) u.data<double>()[i] = rngs[active[i]].uniform_double();
      Tensor tokens_d = Tensor::empty(Shape{n}, DType::I32, dev, "tokens"),
             logprobs_d = Tensor::empty(Shape{n}, DType::F32, dev, "logprobs");
      ops::sample_tokens(logits, on_device(u, dev), sampling, tokens_d, logprobs_d);
      const Tensor tokens = on_host(tokens_d), logprobs = on_host(logprobs_d);
      std::vector<Chunk> next;
      std::vector<std::size_t> still;
      for (std::int64_t i = 0; i < n; ++i) {
        const std::size_t s = active[i];
        Completion& comp = out[first + s];
        const std::int32_t tok = tokens.data<std::int32_t>()[i];
        comp.tokens.push_back(tok);
        comp.logprobs.push_back(logprobs.data<float>()[i]);
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
      hf = forward_cached(model_, cache_, next);  // [n', H], one row per active sequence
    }
  }
  return out;
}

std::vector<Completion> generate_groups(Transformer& model, const std::vector<std::vector<std::int32_t>>& prompts,
                                        const std::vector<std::int64_t>& index, std::int64_t per_prompt,
                                        SamplingParams sp) {
  CRUCIBLE_CHECK(index.size() == prompts.size() && per_prompt > 0, "generate_groups: ", prompts.size(),
                 " prompts with ", index.size(), " indices and ", per_prompt, " completions each");
  std::vector<std::vector<std::int32_t>> batch;
  sp.streams.clear();
  std::int64_t longest = 0;
  for (std::size_t p = 0; p < prompts.size(); ++p) {
    for (std::int64_t i = 0; i < per_prompt; ++i) {
      batch.push_back(prompts[p]);
      sp.streams.push_back(static_cast<std::uint64_t>(index[p] * per_prompt + i));
    }
    longest = std::max<std::int64_t>(longest, static_cast<std::int64_t>(prompts[p].size()));
  }
  if (batch.empty()) return {};
  Generator gen(model, std::min<std::int64_t>(static_cast<std::int64_t>(batch.size()), kMaxDecodeBatch),
                longest + sp.max_tokens);
  return gen.generate(batch, sp);
}

}  // namespace crucible::rollout
