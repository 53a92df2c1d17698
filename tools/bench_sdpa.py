#!/usr/bin/env python3
"""PyTorch SDPA peer for bench/gpu/attention.cpp: same shapes, same keys, same FLOPs.

Times torch.nn.functional.scaled_dot_product_attention in BF16 with is_causal=True on
the cases of tests/gpu/attention_cases.h (kAttentionBenchCases; kept in sync by hand):
4 sequences of 4096 tokens as a batch of 4 (the same causal pairs as our 4 packed
sequences). Forward (no_grad), and forward+backward (out.backward(dout)); bwd = fwd+bwd - fwd. Median of CUDA-event timings.
FLOPs as in bench/gpu/attention.cpp: pairs = B L (L + 1) / 2 per head,
fwd 2 Hq pairs (dqk + dv), bwd 2 Hq pairs (3 dqk + 2 dv).
Prints "attn <key> <ms> <TFLOP/s>" lines; the backend SDPA picked is PyTorch's choice.
"""
import statistics
import sys

import torch
import torch.nn.functional as F

# name, Hq, Hkv, dqk, dv, batch, seq_len
CASES = [
    ("mla_128h_4x4096", 128, 128, 192, 128, 4, 4096),
    ("mla_16h_4x4096", 16, 16, 192, 128, 4, 4096),
    ("gqa_32_8_d128_4x4096", 32, 8, 128, 128, 4, 4096),
]
ITERS = 5


def median_ms(fn, iters=ITERS):
    fn()  # warm-up
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        a = torch.cuda.Event(enable_timing=True)
        b = torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return statistics.median(times)


def report(key, flops, ms):
    print(f"attn {key:<36} {ms:10.3f} {flops / (ms * 1e-3) / 1e12:10.1f}", flush=True)


def main():
    if not torch.cuda.is_available():
        print("bench_sdpa: no CUDA device", file=sys.stderr)
        return 1
    print(f"torch {torch.__version__} SDPA (bf16, is_causal=True); columns: key, median ms, TFLOP/s")
    for name, hq, hkv, dqk, dv, batch, seq in CASES:
        pairs = batch * seq * (seq + 1) / 2
        fwd_flops = 2.0 * hq * pairs * (dqk + dv)
        bwd_flops = 2.0 * hq * pairs * (3 * dqk + 2 * dv)
        gen = torch.Generator(device="cuda").manual_seed(0)

        def rand(*shape):
            t = torch.rand(*shape, device="cuda", generator=gen, dtype=torch.float32) * 2 - 1
            return t.to(torch.bfloat16)

        # [batch, heads, seq, dim], the layout SDPA documents.
        q = rand(batch, hq, seq, dqk).requires_grad_()
        k = rand(batch, hkv, seq, dqk).requires_grad_()
        v = rand(batch, hkv, seq, dv).requires_grad_()
        dout = rand(batch, hq, seq, dv)
        gqa = hq != hkv

        def fwd():
            with torch.no_grad():
                F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=gqa)

        def fwd_bwd():
            q.grad = k.grad = v.grad = None
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=gqa)
            out.backward(dout)

        try:
            fwd_ms = median_ms(fwd)
            fb_ms = median_ms(fwd_bwd)
        except RuntimeError as e:  # e.g. no backend for dqk != dv, or out of memory
            print(f"attn {name}: SDPA failed: {str(e).splitlines()[0]}", flush=True)
            del q, k, v, dout
            torch.cuda.empty_cache()
            continue
        report(f"fwd/{name}", fwd_flops, fwd_ms)
        report(f"bwd/{name}", bwd_flops, fb_ms - fwd_ms)
        report(f"fwd+bwd/{name}", fwd_flops + bwd_flops, fb_ms)
        del q, k, v, dout
        torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
