#!/usr/bin/env python3
"""transformers peer of bench/gpu/model_step.cpp: one training step (forward with the
LM loss + backward) of DeepseekV3ForCausalLM in BF16 on the GPU, on the config.json
the crucible benchmark wrote (--hf-config DIR) and a batch of the same shape
(SEQS sequences of SEQ random tokens; PyTorch's SDPA attention, causal).

  python3 tools/bench_hf_step.py DIR [SEQS] [SEQ] [ITERS]

Wall-clock time of whole steps with the device synchronized around each, after one
warm-up step; median over ITERS. Prints "step hf_bf16 <median ms> <tokens/s>".
"""
import sys

import torch

from hf_peer import bf16_model, median_ms


def main():
    cfg_dir = sys.argv[1]
    seqs = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    seq = int(sys.argv[3]) if len(sys.argv) > 3 else 1024
    iters = int(sys.argv[4]) if len(sys.argv) > 4 else 5
    cfg, model = bf16_model(cfg_dir)
    model.train()
    ids = torch.randint(0, cfg.vocab_size, (seqs, seq), device="cuda")

    def step():
        model.zero_grad(set_to_none=True)
        out = model(input_ids=ids, labels=ids)
        out.loss.backward()

    med = median_ms(step, iters)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"hf model: {type(model).__name__}, {n_params} params, transformers "
          f"{__import__('transformers').__version__}, torch {torch.__version__}")
    print(f"step hf_bf16 {med:.1f} {seqs * seq / (med / 1000):.0f}")


if __name__ == "__main__":
    main()
