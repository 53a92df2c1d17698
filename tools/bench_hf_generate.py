#!/usr/bin/env python3
"""transformers peer of bench/gpu/generate.cpp: greedy generate with the KV cache of
DeepseekV3ForCausalLM (or any causal LM config) in BF16 on the GPU, on the config.json
the crucible benchmark wrote (--hf-config DIR), SEQS random prompts of PROMPT tokens,
exactly NEW new tokens each (min_new_tokens = max_new_tokens).

  python3 tools/bench_hf_generate.py DIR [SEQS] [PROMPT] [NEW] [ITERS]

Wall-clock time of whole generate calls with the device synchronized around each,
after one warm-up call; median over ITERS. Prints "generate hf_bf16 <median ms> <new tokens/s>".
"""
import sys

import torch

from hf_peer import bf16_model, median_ms


def main():
    cfg_dir = sys.argv[1]
    seqs = int(sys.argv[2]) if len(sys.argv) > 2 else 32
    prompt = int(sys.argv[3]) if len(sys.argv) > 3 else 128
    new = int(sys.argv[4]) if len(sys.argv) > 4 else 128
    iters = int(sys.argv[5]) if len(sys.argv) > 5 else 3
    cfg, model = bf16_model(cfg_dir)
    model.eval()
    ids = torch.randint(0, cfg.vocab_size, (seqs, prompt), device="cuda")
    mask = torch.ones_like(ids)

    @torch.no_grad()
    def call():
        out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=new, min_new_tokens=new,
                             do_sample=False, use_cache=True, pad_token_id=0)
        assert out.shape[1] == prompt + new, out.shape

    med = median_ms(call, iters)
    print(f"hf generate: {type(model).__name__}, transformers {__import__('transformers').__version__}")
    print(f"generate hf_bf16 {med:.1f} {seqs * new / (med / 1000):.0f}")


if __name__ == "__main__":
    main()
