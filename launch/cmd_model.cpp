// launch/cmd_model.cpp: model-level commands: import, logprobs, generate.
#include <cstdio>
#include <sstream>

#include "checkpoints/model_file.h"
#include "core/error.h"
#include "core/json.h"
#include "kernels/logprob_head.h"
#include "launch/args.h"
#include "launch/commands.h"
#include "model/transformer.h"
#include "rollout/generator.h"

namespace crucible::launch {

namespace {

std::vector<std::int32_t> parse_tokens(const std::string& text, const char* option) {
  std::vector<std::int32_t> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    std::size_t used = 0;
    long long v = -1;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size() || item.empty() || v < 0 || v > INT32_MAX)
      throw UsageError(std::string(option) + ": '" + item + "' is not a token id (comma-separated non-negative integers)");
    out.push_back(static_cast<std::int32_t>(v));
  }
  if (out.empty()) throw UsageError(std::string(option) + " needs at least one token id");
  return out;
}

void check_vocab(const std::vector<std::int32_t>& tokens, std::int64_t vocab, const char* what) {
  for (std::int32_t t : tokens)
    CRUCIBLE_USER_CHECK(t < vocab, what, ": token ", t, " is outside the model's vocabulary [0, ", vocab, ")");
}

}  // namespace

int cmd_import(const CommandContext& ctx, const std::vector<std::string>& args) {
  std::string hf, out;
  ArgParser p("import", "Convert a Hugging Face model directory (config.json + safetensors, sharded or not,\n"
                        "FP8 block-scaled included) into a crucible checkpoint (HDF5).");
  p.option("--hf", &hf, "DIR", "Hugging Face model directory")
      .option("--out", &out, "FILE", "crucible checkpoint to write (atomically)");
  if (!p.parse(args)) return 0;
  if (hf.empty() || out.empty()) throw UsageError("crucible import: --hf DIR and --out FILE are required");
  auto weights = checkpoints::load_model(hf);
  if (ctx.mpi.rank() == 0) {
    checkpoints::save_model(out, *weights);
    const ModelSizes s = model_sizes(weights->config());
    std::printf("imported %s (%s, %lld parameters) -> %s\n", hf.c_str(), arch_name(weights->config().arch),
                static_cast<long long>(s.params_total + s.params_mtp), out.c_str());
  }
  return 0;
}

int cmd_logprobs(const CommandContext& ctx, const std::vector<std::string>& args) {
  std::string checkpoint, tokens_text;
  std::string top_text = "5", precision_text;
  bool as_json = false;
  ArgParser p("logprobs", "Score a token sequence: for every position, the log-prob of the next given token\n"
                          "and the top next tokens with their log-probs (FP32 log-softmax of the logits).");
  p.option("--checkpoint", &checkpoint, "C", "crucible checkpoint or Hugging Face model directory")
      .option("--tokens", &tokens_text, "IDS", "comma-separated token ids, e.g. 1,2,3")
      .option("--top", &top_text, "K", "top next tokens per position (default 5)")
      .option("--precision", &precision_text, "P",
              "fp32, bf16 or fp8 arithmetic instead of the checkpoint's own (an HF directory's\n"
              "torch_dtype); fp32 on an exported bf16 directory is what transformers computes\n"
              "when it loads that directory with dtype=float32")
      .flag("--json", &as_json, "print one JSON object");
  if (!p.parse(args)) return 0;
  if (checkpoint.empty() || tokens_text.empty()) throw UsageError("crucible logprobs: --checkpoint and --tokens are required");
  const auto tokens = parse_tokens(tokens_text, "--tokens");
  const std::int64_t top = parse_tokens(top_text, "--top")[0];
  auto weights = checkpoints::load_model(checkpoint);
  if (!precision_text.empty()) {
    ModelConfig pc = weights->config();
    if (precision_text == "fp32") pc.precision = Precision::Fp32;
    else if (precision_text == "bf16") pc.precision = Precision::Bf16;
    else if (precision_text == "fp8") pc.precision = Precision::Fp8;
    else throw UsageError("crucible logprobs: --precision must be fp32, bf16 or fp8, got '" + precision_text + "'");
    pc.validate();
    auto w = std::make_unique<ModelWeights>(pc, weights->params().flat().device(), false);
    w->params().flat().copy_from(weights->params().flat());  // same layout: precision is arithmetic only
    weights = std::move(w);
  }
  const ModelConfig& c = weights->config();
  check_vocab(tokens, c.vocab_size, "--tokens");
  Transformer model(*weights);
  const Batch batch = Batch::from_sequences({tokens});
  ForwardState st;
  const Tensor logp = model.forward_logprobs(batch, st);
  const std::int64_t T = batch.tokens(), k = std::min<std::int64_t>(top, c.vocab_size);
  Tensor top_ids(Shape{T, k}, DType::I32), top_lp(Shape{T, k}, DType::F32);
  ops::logprob_head_topk(st.hf, model.head_weight(), k, top_ids, top_lp, model.head_options());
  if (ctx.mpi.rank() != 0) return 0;
  if (as_json) {
    json::Value j = json::Value::object();
    json::Value toks = json::Value::array();
    for (std::int32_t t : tokens) toks.push_back(t);
    j.set("tokens", toks);
    json::Value positions = json::Value::array();
    for (std::int64_t t = 0; t < T; ++t) {
      json::Value row = json::Value::object();
      row.set("position", t);
      row.set("token", tokens[t]);
      if (t + 1 < T) {
        row.set("next", tokens[t + 1]);
        row.set("logprob", static_cast<double>(logp.data<float>()[t]));
      }
      json::Value tops = json::Value::array();
      for (std::int64_t i = 0; i < k; ++i) {
        json::Value e = json::Value::object();
        e.set("id", top_ids.data<std::int32_t>()[t * k + i]);
        e.set("logprob", static_cast<double>(top_lp.data<float>()[t * k + i]));
        tops.push_back(e);
      }
      row.set("top", tops);
      positions.push_back(row);
    }
    j.set("positions", positions);
    std::printf("%s\n", json::dump(j, 2).c_str());
    return 0;
  }
  std::printf("%-5s %-8s %-8s %-12s %s\n", "pos", "token", "next", "logprob", "top next (id:logprob)");
  for (std::int64_t t = 0; t < T; ++t) {
    std::string tops;
    for (std::int64_t i = 0; i < k; ++i) {
      char buf[48];
      std::snprintf(buf, sizeof buf, "%s%d:%.4f", i ? " " : "", top_ids.data<std::int32_t>()[t * k + i],
                    top_lp.data<float>()[t * k + i]);
      tops += buf;
    }
    if (t + 1 < T)
      std::printf("%-5lld %-8d %-8d %-12.6f %s\n", static_cast<long long>(t), tokens[t], tokens[t + 1],
                  logp.data<float>()[t], tops.c_str());
    else
      std::printf("%-5lld %-8d %-8s %-12s %s\n", static_cast<long long>(t), tokens[t], "-", "-", tops.c_str());
  }
  return 0;
}

int cmd_generate(const CommandContext& ctx, const std::vector<std::string>& args) {
  std::string checkpoint, max_tokens = "32", temperature = "1.0", top_p = "1.0", top_k = "0", seed = "0", eos,
      kv_cache = "auto";
  std::vector<std::string> prompts;
  bool as_json = false;
  ArgParser p("generate", "Sample completions with a KV cache (MLA latent cache for deepseek_v3, K/V for GQA).");
  p.option("--checkpoint", &checkpoint, "C", "crucible checkpoint or Hugging Face model directory")
      .multi("--prompt-tokens", &prompts, "IDS", "a prompt as comma-separated token ids (repeat for a batch)")
      .option("--max-tokens", &max_tokens, "N", "tokens to generate per prompt (default 32)")
      .option("--temperature", &temperature, "T", "sampling temperature, 0 = greedy (default 1.0)")
      .option("--top-p", &top_p, "P", "nucleus sampling mass (default 1.0)")
      .option("--top-k", &top_k, "K", "sample among the K most likely tokens (default 0 = off)")
      .option("--seed", &seed, "S", "sampling seed (default 0)")
      .option("--eos", &eos, "IDS", "token ids that end a sequence (default: the model's eos_token_id)")
      .option("--kv-cache", &kv_cache, "D", "KV cache dtype: auto, f32 or bf16 (default auto: f32 here)")
      .flag("--json", &as_json, "print one JSON object");
  if (!p.parse(args)) return 0;
  if (checkpoint.empty() || prompts.empty())
    throw UsageError("crucible generate: --checkpoint and at least one --prompt-tokens are required");
  if (kv_cache != "auto" && kv_cache != "f32" && kv_cache != "bf16")
    throw UsageError("--kv-cache: '" + kv_cache + "' is not one of auto, f32, bf16");
  auto to_double = [](const std::string& s, const char* opt) {
    try {
      std::size_t used = 0;
      double v = std::stod(s, &used);
      if (used == s.size()) return v;
    } catch (const std::exception&) {
    }
    throw UsageError(std::string(opt) + ": '" + s + "' is not a number");
  };
  rollout::SamplingParams sp;
  sp.max_tokens = parse_tokens(max_tokens, "--max-tokens")[0];
  sp.temperature = to_double(temperature, "--temperature");
  sp.top_p = to_double(top_p, "--top-p");
  sp.top_k = parse_tokens(top_k, "--top-k")[0];
  sp.seed = static_cast<std::uint64_t>(parse_tokens(seed, "--seed")[0]);
  auto weights = checkpoints::load_model(checkpoint);
  const ModelConfig& c = weights->config();
  if (!eos.empty()) sp.eos_ids = parse_tokens(eos, "--eos");
  else if (c.eos_token_id >= 0) sp.eos_ids = {static_cast<std::int32_t>(c.eos_token_id)};
  std::vector<std::vector<std::int32_t>> prompt_ids;
  std::int64_t longest = 0;
  for (const std::string& text : prompts) {
    prompt_ids.push_back(parse_tokens(text, "--prompt-tokens"));
    check_vocab(prompt_ids.back(), c.vocab_size, "--prompt-tokens");
    longest = std::max<std::int64_t>(longest, static_cast<std::int64_t>(prompt_ids.back().size()));
  }
  Transformer model(*weights);
  if (kv_cache != "auto") model.set_kv_cache_dtype(kv_cache == "bf16" ? DType::BF16 : DType::F32);
  rollout::Generator gen(model, static_cast<std::int64_t>(prompt_ids.size()), longest + sp.max_tokens);
  const auto completions = gen.generate(prompt_ids, sp);
  if (ctx.mpi.rank() != 0) return 0;
  json::Value j = json::Value::array();
  for (const auto& comp : completions) {
    json::Value e = json::Value::object();
    json::Value toks = json::Value::array(), lps = json::Value::array();
    for (std::size_t i = 0; i < comp.tokens.size(); ++i) {
      toks.push_back(comp.tokens[i]);
      lps.push_back(static_cast<double>(comp.logprobs[i]));
    }
    e.set("tokens", toks);
    e.set("logprobs", lps);
    e.set("finish_reason", rollout::finish_reason_name(comp.finish));
    j.push_back(e);
  }
  if (as_json) {
    std::printf("%s\n", json::dump(j, 2).c_str());
  } else {
    for (std::size_t i = 0; i < completions.size(); ++i) {
      std::printf("[%zu] (%s)", i, rollout::finish_reason_name(completions[i].finish));
      for (std::int32_t t : completions[i].tokens) std::printf(" %d", t);
      std::printf("\n");
    }
  }
  return 0;
}

}  // namespace crucible::launch
