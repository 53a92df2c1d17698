#!/usr/bin/env python3
"""transformers peer of bench/gpu/dp_step.cpp: the data-parallel training step of
DeepseekV3ForCausalLM in BF16 under PyTorch DistributedDataParallel (NCCL; its
gradient buckets all-reduced during backward), on the config.json the crucible
benchmark wrote (--hf-config DIR), each rank on its own batch of SEQS random sequences
of SEQ tokens (PyTorch's SDPA attention, causal). Start one process per GPU:

  torchrun --nproc_per_node N tools/bench_hf_ddp.py DIR [SEQS] [SEQ] [ITERS]

Wall-clock time of whole steps with every rank's device synchronized around each,
after one warm-up step; median over ITERS. Rank 0 prints
"dp hf_ddp world=<N> <median ms> <job tokens/s>" and, for the same model without the
gradient sum, "dp hf_compute world=<N> ...".
"""
import os
import sys

import torch
import torch.distributed as dist

from hf_peer import bf16_model, median_ms


def main():
    cfg_dir = sys.argv[1]
    seqs = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    seq = int(sys.argv[3]) if len(sys.argv) > 3 else 1024
    iters = int(sys.argv[4]) if len(sys.argv) > 4 else 5
    local = int(os.environ.get("LOCAL_RANK", "0"))
    torch.cuda.set_device(local)
    dist.init_process_group("nccl", device_id=torch.device("cuda", local))
    world, rank = dist.get_world_size(), dist.get_rank()
    cfg, model = bf16_model(cfg_dir)
    model.train()
    gen = torch.Generator(device="cuda").manual_seed(7 + rank)
    ids = torch.randint(0, cfg.vocab_size, (seqs, seq), device="cuda", generator=gen)

    def compute():
        model.zero_grad(set_to_none=True)
        model(input_ids=ids, labels=ids).loss.backward()

    results = {}
    dist.barrier()
    results["hf_compute"] = median_ms(compute, iters)  # before DDP hooks the parameters

    # MoE: an expert no token of this batch reached has no gradient this step.
    ddp = torch.nn.parallel.DistributedDataParallel(model, device_ids=[local], find_unused_parameters=True)

    def step():
        ddp.zero_grad(set_to_none=True)
        ddp(input_ids=ids, labels=ids).loss.backward()

    dist.barrier()
    results["hf_ddp"] = median_ms(step, iters)
    if rank == 0:
        print(f"hf ddp: transformers {__import__('transformers').__version__}, torch {torch.__version__}, "
              f"{sum(p.numel() for p in model.parameters())} params, world {world}")
        for name, ms in results.items():
            print(f"dp {name} world={world} {ms:.1f} {world * seqs * seq / (ms / 1000):.0f}")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
