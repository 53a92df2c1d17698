#!/usr/bin/env python3
"""transformers peer of bench/gpu/model_step.cpp: one training step (forward with the
LM loss + backward) of DeepseekV3ForCausalLM in BF16 on the GPU, on the config.json
the crucible benchmark wrote (--hf-config DIR) and a batch of the same shape
(SEQS sequences of SEQ random tokens; PyTorch's SDPA attention, causal).

  python3 tools/bench_hf_step.py DIR [SEQS] [SEQ] [ITERS]

Wall-clock time of whole steps with the device synchronized around each, after one
warm-up step; median over ITERS. Prints "step hf_bf16 <median ms> <tokens/s>".
"""
import statistics
import sys
import time

import torch
from transformers import AutoConfig, AutoModelForCausalLM


def main():
    cfg_dir = sys.argv[1]
    seqs = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    seq = int(sys.argv[3]) if len(sys.argv) > 3 else 1024
    iters = int(sys.argv[4]) if len(sys.argv) > 4 else 5
    cfg = AutoConfig.from_pretrained(cfg_dir)
    cfg._attn_implementation = "sdpa"
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(cfg, torch_dtype=torch.bfloat16)
    model.train()
    ids = torch.randint(0, cfg.vocab_size, (seqs, seq), device="cuda")

    def step():
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = model(input_ids=ids, labels=ids)
        out.loss.backward()
        torch.cuda.synchronize()
        ms = (time.perf_counter() - t0) * 1000
        model.zero_grad(set_to_none=True)
        return ms

    step()  # warm-up
    med = statistics.median(step() for _ in range(iters))
    n_params = sum(p.numel() for p in model.parameters())
    print(f"hf model: {type(model).__name__}, {n_params} params, transformers "
          f"{__import__('transformers').__version__}, torch {torch.__version__}")
    print(f"step hf_bf16 {med:.1f} {seqs * seq / (med / 1000):.0f}")


if __name__ == "__main__":
    main()
