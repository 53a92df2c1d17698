"""Common setup of the transformers peers (bench_hf_step.py, bench_hf_generate.py): the
model of a config.json written by a crucible benchmark, in BF16 on the GPU with SDPA
attention, and wall-clock medians of whole calls."""
import statistics
import time

import torch
from transformers import AutoConfig, AutoModelForCausalLM


def bf16_model(cfg_dir):
    """(config, model): random weights (torch seed 0), BF16, on the GPU."""
    cfg = AutoConfig.from_pretrained(cfg_dir)
    cfg._attn_implementation = "sdpa"
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
    return cfg, model


def median_ms(call, iters):
    """One warm-up call, then the median wall-clock ms of `iters` calls, the device
    synchronized around each; the timed calls are a CUDA profiler capture range."""
    def timed():
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        call()
        torch.cuda.synchronize()
        return (time.perf_counter() - t0) * 1000

    timed()
    torch.cuda.profiler.start()  # the capture range of bench/gpu/trace and nsys
    ms = [timed() for _ in range(iters)]
    torch.cuda.profiler.stop()
    return statistics.median(ms)
