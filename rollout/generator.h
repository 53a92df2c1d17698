// rollout/generator.h: batched sampling with a KV cache.
//
// Prompts are prefilled together, then every unfinished sequence decodes one token
// per step; a sequence that meets EOS, a stop sequence or its token budget leaves
// the batch (its slot idles) while the others continue. Sampling applies
// temperature, then top-k, then top-p (nucleus) to the next-token distribution;
// each sequence draws from its own Philox stream (seed, index of the prompt), so
// results do not depend on batch composition. The returned log-prob of each token
// is under the model's untempered distribution — what the trainer recomputes — so
// the sampler/trainer gap is a like-for-like comparison.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "model/transformer.h"
#include "rollout/kv_cache.h"

namespace crucible::rollout {

struct SamplingParams {
  double temperature = 1.0;  // 0 = greedy
  double top_p = 1.0;        // (0, 1]
  std::int64_t top_k = 0;    // 0 = off
  std::int64_t max_tokens = 64;
  std::vector<std::int32_t> eos_ids;                     // any of these ends a sequence (kept in the output)
  std::vector<std::vector<std::int32_t>> stop_sequences;  // token sequences that end a sequence (kept)
  std::uint64_t seed = 0;
  // Prompt i draws from Philox stream stream_base + i: ranks that each sample a
  // slice of a global batch pass the slice's global offset, so results do not
  // depend on how the batch is split.
  std::uint64_t stream_base = 0;
  // When set (one per prompt), prompt i draws from stream streams[i] instead: a batch of
  // groups that are not contiguous in the global numbering (a rank's share of the
  // prompts) keeps the streams each group would have had alone.
  std::vector<std::uint64_t> streams;

  void validate() const;
};

// The most sequences the stages decode in one wave (a generator of more prompts than
// slots runs them in waves): bounds the [n, vocab] logits and the sampler's scratch.
inline constexpr std::int64_t kMaxDecodeBatch = 512;

enum class FinishReason : std::uint8_t { Eos, Stop, Length };
const char* finish_reason_name(FinishReason r);

struct Completion {
  std::vector<std::int32_t> tokens;  // generated tokens only
  std::vector<float> logprobs;       // log p(token) under the untempered model, per token
  FinishReason finish = FinishReason::Length;
};

// The KV cache a generator keeps unless told otherwise: the model's kv_cache_dtype() if
// set (run.kv_cache), else BF16 for MLA models on CUDA, whose decode kernels multiply
// the latent as BF16 whatever the cache stores (the same RNE rounding as the append), so
// the rounded cache changes no operand and halves the bytes read per step; FP32
// otherwise (the GQA decode kernels and the CPU multiply in FP32).
DType default_cache_dtype(const Transformer& model);

class Generator {
 public:
  // max_batch sequences at once; capacity = longest prompt + completion; cache_dtype
  // F32 or BF16 (default: default_cache_dtype).
  Generator(Transformer& model, std::int64_t max_batch, std::int64_t capacity,
            std::optional<DType> cache_dtype = std::nullopt);

  std::vector<Completion> generate(const std::vector<std::vector<std::int32_t>>& prompts,
                                   const SamplingParams& params);
  const KvCache& cache() const { return cache_; }

 private:
  Transformer& model_;
  KvCache cache_;
};

// `per_prompt` completions of each prompt, all decoded as one batch (in waves of
// kMaxDecodeBatch): completion i of prompts[p] is out[p * per_prompt + i] and draws from
// Philox stream index[p] * per_prompt + i (index: the prompt's global number), so a
// rank's share of the groups samples what each group would alone. sp.streams is set here.
std::vector<Completion> generate_groups(Transformer& model, const std::vector<std::vector<std::int32_t>>& prompts,
                                        const std::vector<std::int64_t>& index, std::int64_t per_prompt,
                                        SamplingParams sp);

}  // namespace crucible::rollout
