#!/usr/bin/env python3
"""Golden log-probs of crucible's exported DeepSeek-V3-style teacher, made with transformers.

tests/checkpoints/test_export_python.cpp ("exported teacher ... golden") exports a tiny
random DeepSeek-V3 teacher (tiny-deepseek-v3 preset, fixed seed, non-zero
e_score_correction_bias) as a BF16 Hugging Face directory, then checks crucible's FP32
forward of the exported weights against this file -- without Python. This script makes
the file from that directory:

  * loads it with AutoModelForCausalLM (dtype=float32, eager attention, eval mode), the
    way a user reads an exported checkpoint;
  * scores the token ids stored by the test next to the export (tokens.json) and writes
    the float64 log-softmax of the logits: the log-prob of every next token and the full
    rows at a few positions (`rows`: {position: [V floats]});
  * records every routed layer's chosen experts and the smallest routing margin (the gap
    between the last chosen and the best unchosen biased score, and between the last kept
    and the best dropped group); it refuses (exit 1) when a margin is below 1e-4, since
    FP32 round-off could then flip an expert between runtimes;
  * stores the FNV-1a 64 digest of model.safetensors so that the test can tell "the
    export changed, make the golden again" from a parity failure.

Regenerate (from the repository root, after a build):
    CRUCIBLE_KEEP_TEACHER_EXPORT=/tmp/teacher_export build/tests/test_checkpoints "[teacher_golden]"
    python3 tools/make_export_goldens.py --hf /tmp/teacher_export \
        --out tests/data/models/deepseek_v3_export/golden.json

Needs torch, transformers (>= 5), numpy. CPU only.
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
import transformers
from transformers import AutoModelForCausalLM

# Routing decisions closer than this (in biased router score units) are refused: FP32
# round-off differs between runtimes by ~1e-6 here, far below it.
MIN_ROUTING_MARGIN = 1e-4


def fnv1a64(path):
    h = 0xCBF29CE484222325
    data = np.frombuffer(open(path, "rb").read(), dtype=np.uint8)
    for b in data.tolist():  # small files (a few MB): plain loop is fine
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return format(h, "016x")


def routing_record(model, hidden_in):
    """Chosen experts and margins of every routed layer for the recorded router inputs."""
    out, worst = {}, float("inf")
    cfg = model.config
    for li, layer in enumerate(model.model.layers):
        gate = getattr(layer.mlp, "gate", None)
        if gate is None or li not in hidden_in:
            continue
        x = hidden_in[li].reshape(-1, cfg.hidden_size).float().detach()
        scores = torch.sigmoid(x @ gate.weight.detach().float().T)
        biased = scores + gate.e_score_correction_bias.detach().float()
        T, E = biased.shape
        G = cfg.n_group
        group = biased.view(T, G, E // G).topk(2, dim=-1)[0].sum(-1)
        gsorted = group.sort(dim=-1, descending=True)[0]
        if cfg.topk_group < G:
            worst = min(worst, float((gsorted[:, cfg.topk_group - 1] - gsorted[:, cfg.topk_group]).min()))
        keep = torch.zeros_like(group, dtype=torch.bool)
        keep.scatter_(1, group.topk(cfg.topk_group, dim=-1)[1], True)
        masked = biased.masked_fill(~keep.repeat_interleave(E // G, dim=1), float("-inf"))
        ms = masked.sort(dim=-1, descending=True)
        k = cfg.num_experts_per_tok
        nxt = ms[0][:, k]
        gap = ms[0][:, k - 1] - torch.where(torch.isinf(nxt), torch.full_like(nxt, -1e9), nxt)
        worst = min(worst, float(gap.min()))
        out[str(li)] = ms[1][:, :k].sort(dim=-1)[0].tolist()
    return out, worst


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hf", required=True, help="the export the test kept (CRUCIBLE_KEEP_TEACHER_EXPORT)")
    ap.add_argument("--out", required=True, help="golden.json to write")
    ap.add_argument("--rows", default="0,64,128,-1", help="positions whose full log-softmax rows are stored")
    a = ap.parse_args()

    tokens = json.load(open(os.path.join(a.hf, "tokens.json")))["tokens"]
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(a.hf, dtype=torch.float32, attn_implementation="eager").eval()
    hidden_in = {}
    hooks = []
    for li, layer in enumerate(model.model.layers):
        if hasattr(layer.mlp, "gate"):
            hooks.append(layer.mlp.register_forward_hook(
                lambda m, inp, out, li=li: hidden_in.__setitem__(li, inp[0].detach())))
    with torch.no_grad():
        logits = model(torch.tensor([tokens], dtype=torch.long)).logits[0].double()
    for h in hooks:
        h.remove()
    lp = torch.log_softmax(logits, dim=-1).numpy()
    routing, margin = routing_record(model, hidden_in)
    if margin < MIN_ROUTING_MARGIN:
        print(f"smallest routing margin {margin:.2e} < {MIN_ROUTING_MARGIN}: pick another seed in the test",
              file=sys.stderr)
        return 1
    T = len(tokens)
    rows = {}
    for s in a.rows.split(","):
        p = int(s) % T
        rows[str(p)] = [float(x) for x in lp[p]]
    golden = {
        "generator": "tools/make_export_goldens.py",
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "safetensors_fnv1a64": fnv1a64(os.path.join(a.hf, "model.safetensors")),
        "tokens": tokens,
        "next_token_logprobs": [float(lp[t, tokens[t + 1]]) for t in range(T - 1)],
        "rows": rows,
        "routing": routing,
        "min_routing_margin": margin,
    }
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(golden, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {a.out}: {T} tokens, min routing margin {margin:.3e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
