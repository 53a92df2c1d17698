#!/usr/bin/env python3
"""Make tiny Hugging Face models plus golden log-probs for crucible's parity tests.

For every model below this script
  * builds a tiny randomly initialised model with transformers' own class
    (fp32, eager attention, eval mode), with a fixed seed;
  * saves it with save_pretrained() to tests/data/models/<name>/
    (config.json as transformers writes it, model.safetensors with fp32 weights
    under the classic Hugging Face names -- for MoE models one tensor per expert,
    the on-disk format of real checkpoints; the fused in-memory layout of
    transformers v5 is kept as model_fused.safetensors for reference);
  * runs two token sequences through it and writes golden.json with the fp32
    log-softmax of the logits: log-prob of the next given token, top-5 at every
    position, and the full rows of the first three positions;
  * reloads the saved directory with from_pretrained() and checks that it
    reproduces the goldens exactly (max abs diff 0).

Usage (from the repository root):
    python3 tools/make_model_goldens.py [--out tests/data/models] [--only NAME ...]

Needs torch, transformers (>= 5), safetensors.  CPU only.
"""

import argparse
import json
import math
import os
import platform
import re
import shutil
import sys
import tempfile

import torch
import transformers
import safetensors
from safetensors import safe_open
from safetensors.torch import save_file

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO, "tests", "data", "models")

BASE_SEED = 20240611
SEQ_LENS = (11, 7)
TOPK = 5
FULL_ROWS = 3
# Routing decisions closer than this (in router score units) are rejected: a
# different seed is tried so that fp32 round-off elsewhere cannot flip an expert.
MIN_ROUTING_MARGIN = 1e-3
MAX_SEED_TRIES = 50


# ----------------------------------------------------------------------------
# Model definitions
# ----------------------------------------------------------------------------

def qwen2_config(tied):
    return transformers.Qwen2Config(
        vocab_size=151,
        hidden_size=64,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        rms_norm_eps=1e-6,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
        tie_word_embeddings=tied,
        use_sliding_window=False,
        bos_token_id=0,
        eos_token_id=1,
        attn_implementation="eager",
    )


def llama3_config():
    return transformers.LlamaConfig(
        vocab_size=97,
        hidden_size=64,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        rms_norm_eps=1e-5,
        rope_parameters={
            "rope_type": "llama3",
            "rope_theta": 10000.0,
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 16,
        },
        tie_word_embeddings=False,
        attention_bias=False,
        mlp_bias=False,
        bos_token_id=1,
        eos_token_id=2,
        attn_implementation="eager",
    )


def deepseek_v3_config(q_lora_rank):
    return transformers.DeepseekV3Config(
        vocab_size=128,
        hidden_size=32,
        intermediate_size=64,
        moe_intermediate_size=16,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=4,
        q_lora_rank=q_lora_rank,
        kv_lora_rank=16,
        qk_nope_head_dim=8,
        qk_rope_head_dim=8,
        v_head_dim=8,
        n_routed_experts=8,
        n_shared_experts=1,
        num_experts_per_tok=2,
        n_group=4,
        topk_group=2,
        first_k_dense_replace=1,
        routed_scaling_factor=2.5,
        norm_topk_prob=True,
        max_position_embeddings=64,
        rms_norm_eps=1e-6,
        rope_parameters={
            "rope_type": "yarn",
            "rope_theta": 10000.0,
            "factor": 4.0,
            "original_max_position_embeddings": 16,
            "beta_fast": 32,
            "beta_slow": 1,
            "mscale": 1.0,
            "mscale_all_dim": 1.0,
        },
        # The modelling code of transformers has no MTP module; keep the config honest.
        num_mtp_layers=0,
        tie_word_embeddings=False,
        attention_bias=False,
        bos_token_id=0,
        eos_token_id=1,
        attn_implementation="eager",
    )


MODELS = {
    "qwen2_tied": (transformers.Qwen2ForCausalLM, lambda: qwen2_config(True)),
    "qwen2_untied": (transformers.Qwen2ForCausalLM, lambda: qwen2_config(False)),
    "llama3": (transformers.LlamaForCausalLM, llama3_config),
    "deepseek_v3": (transformers.DeepseekV3ForCausalLM, lambda: deepseek_v3_config(24)),
    "deepseek_v3_noq": (transformers.DeepseekV3ForCausalLM, lambda: deepseek_v3_config(None)),
}


# ----------------------------------------------------------------------------
# Initialisation: transformers' default (std 0.02, unit norms, zero biases) gives
# near-uniform attention and logits, which would make a weak parity test.  Re-draw
# every tensor so that each sublayer produces O(1) activations and every weight
# (norm scales, biases, router bias included) visibly matters.
# ----------------------------------------------------------------------------

def randomize(model, gen):
    cfg = model.config
    hidden = cfg.hidden_size

    def normal(t, std, mean=0.0):
        t.copy_(torch.randn(t.shape, generator=gen, dtype=torch.float32) * std + mean)

    with torch.no_grad():
        for name, p in model.named_parameters():  # tied lm_head is not listed twice
            if name.endswith("embed_tokens.weight"):
                normal(p, 0.3)
            elif name == "lm_head.weight":
                normal(p, 2.0 / math.sqrt(hidden))
            elif "norm" in name and p.dim() == 1:
                normal(p, 0.1, mean=1.0)
            elif name.endswith(".bias"):
                normal(p, 0.1)
            elif name.endswith("experts.gate_up_proj") or name.endswith("experts.down_proj"):
                normal(p, 1.0 / math.sqrt(p.shape[-1]))  # [E, out, in]
            elif p.dim() == 2:
                normal(p, 1.0 / math.sqrt(p.shape[1]))  # nn.Linear [out, in]
            else:
                raise RuntimeError(f"no init rule for {name} {tuple(p.shape)}")
        for name, b in model.named_buffers():
            if name.endswith("e_score_correction_bias"):
                b.copy_(torch.randn(b.shape, generator=gen, dtype=torch.float32) * 0.1)


# ----------------------------------------------------------------------------
# Routing diagnostics (DeepSeek-V3): margins of the group and expert selections.
# ----------------------------------------------------------------------------

class RouterProbe:
    def __init__(self, model):
        self.records = []
        self.handles = []
        for name, m in model.named_modules():
            if type(m).__name__ == "DeepseekV3TopkRouter":
                self.handles.append(m.register_forward_hook(self._hook(name)))

    def _hook(self, name):
        def hook(m, inputs, output):
            h = inputs[0].reshape(-1, m.hidden_dim).float()
            scores = torch.nn.functional.linear(h, m.weight.float()).sigmoid()
            choice = scores + m.e_score_correction_bias
            e_per_g = m.num_experts // m.num_group
            group_scores = choice.view(-1, m.num_group, e_per_g).topk(2, dim=-1)[0].sum(-1)
            gs = group_scores.sort(dim=-1, descending=True)[0]
            group_margin = (gs[:, m.topk_group - 1] - gs[:, m.topk_group]).min().item() \
                if m.topk_group < m.num_group else float("inf")
            gidx = group_scores.topk(m.topk_group, dim=-1)[1]
            gmask = torch.zeros_like(group_scores).scatter_(1, gidx, 1.0)
            emask = gmask.unsqueeze(-1).expand(-1, m.num_group, e_per_g).reshape(-1, m.num_experts)
            masked = choice.masked_fill(~emask.bool(), float("-inf"))
            ms = masked.sort(dim=-1, descending=True)[0]
            expert_margin = (ms[:, m.top_k - 1] - ms[:, m.top_k]).min().item()
            # what the same tokens would pick without the correction bias
            nb_group = scores.view(-1, m.num_group, e_per_g).topk(2, dim=-1)[0].sum(-1)
            nb_gidx = nb_group.topk(m.topk_group, dim=-1)[1]
            nb_gmask = torch.zeros_like(nb_group).scatter_(1, nb_gidx, 1.0)
            nb_emask = nb_gmask.unsqueeze(-1).expand(-1, m.num_group, e_per_g).reshape(-1, m.num_experts)
            nb_sel = scores.masked_fill(~nb_emask.bool(), float("-inf")).topk(m.top_k, dim=-1)[1]
            _, _, topk_idx = output
            sel = topk_idx.sort(-1)[0]
            changed = (sel != nb_sel.sort(-1)[0]).any(-1).sum().item()
            self.records.append({
                "router": name,
                "tokens": int(h.shape[0]),
                "group_margin": group_margin,
                "expert_margin": expert_margin,
                "tokens_routed_differently_without_bias": int(changed),
                "experts_hit": sorted(set(topk_idx.flatten().tolist())),
            })
        return hook

    def close(self):
        for h in self.handles:
            h.remove()


# ----------------------------------------------------------------------------

def make_sequences(vocab, gen):
    return [torch.randint(0, vocab, (n,), generator=gen).tolist() for n in SEQ_LENS]


@torch.no_grad()
def logprobs_of(model, tokens):
    ids = torch.tensor([tokens], dtype=torch.long)
    out = model(input_ids=ids, use_cache=False)
    logits = out.logits[0].to(torch.float32)
    return torch.log_softmax(logits, dim=-1)


def golden_for(lp, tokens):
    n = len(tokens)
    top = lp.topk(TOPK + 1, dim=-1)
    gaps = (top.values[:, :TOPK] - top.values[:, 1:TOPK + 1]).min().item()
    return {
        "tokens": tokens,
        "next_token_logprobs": [lp[i, tokens[i + 1]].item() for i in range(n - 1)],
        "top5_ids": top.indices[:, :TOPK].tolist(),
        "top5_logprobs": top.values[:, :TOPK].tolist(),
        "full_logprobs_first3": lp[:FULL_ROWS].tolist(),
        "min_gap_among_top6": gaps,
        "max_prob_per_position": lp.max(-1).values.exp().tolist(),
    }


def tensor_names(path):
    with safe_open(path, framework="pt") as f:
        names = list(f.keys())
        shapes = {k: list(f.get_slice(k).get_shape()) for k in names}
        dtypes = {f.get_slice(k).get_dtype() for k in names}
    return names, shapes, dtypes


def rope_info(model):
    rot = model.model.rotary_emb
    cfg = model.config
    info = {
        "rope_parameters": dict(cfg.rope_parameters),
        "inv_freq": rot.inv_freq.tolist(),
        "attention_scaling_applied_to_cos_sin": float(rot.attention_scaling),
    }
    dim = len(rot.inv_freq) * 2
    base = cfg.rope_parameters["rope_theta"]
    default = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    info["unscaled_inv_freq"] = default.tolist()
    info["scaling_changes_inv_freq"] = bool((default != rot.inv_freq).any().item())
    attn = model.model.layers[0].self_attn
    info["softmax_scale"] = float(attn.scaling)
    return info


def unfuse_experts(tensors):
    """Fused transformers-v5 expert tensors -> classic per-expert names (fallback)."""
    out = {}
    for k, v in tensors.items():
        m = re.match(r"(.*\.mlp\.experts)\.(gate_up_proj|down_proj)$", k)
        if not m:
            out[k] = v
            continue
        prefix, kind = m.groups()
        for e in range(v.shape[0]):
            if kind == "gate_up_proj":
                g, u = v[e].chunk(2, dim=0)
                out[f"{prefix}.{e}.gate_proj.weight"] = g.contiguous()
                out[f"{prefix}.{e}.up_proj.weight"] = u.contiguous()
            else:
                out[f"{prefix}.{e}.down_proj.weight"] = v[e].contiguous()
    return out


def check_file_matches_model(model, path):
    """Every tensor in the file equals the live weight it names (experts: a slice)."""
    sd = model.state_dict()
    with safe_open(path, framework="pt") as f:
        for k in f.keys():
            t = f.get_tensor(k)
            if k in sd:
                ref = sd[k]
            else:
                m = re.match(r"(.*\.mlp\.experts)\.(\d+)\.(gate_proj|up_proj|down_proj)\.weight$", k)
                assert m, f"{path}: unexpected tensor {k}"
                prefix, e, kind = m.group(1), int(m.group(2)), m.group(3)
                if kind == "down_proj":
                    ref = sd[f"{prefix}.down_proj"][e]
                else:
                    g, u = sd[f"{prefix}.gate_up_proj"][e].chunk(2, dim=0)
                    ref = g if kind == "gate_proj" else u
            assert t.dtype == torch.float32, f"{k}: {t.dtype}"
            assert t.shape == ref.shape and torch.equal(t, ref), f"{path}: {k} differs from the model"


# ----------------------------------------------------------------------------
# Independent reference: a plain float64 forward pass driven only by config.json
# and model.safetensors (classic names, per-expert tensors), written from the
# published formulas (Llama-3 rope scaling; DeepSeek-V3's own inference code:
# complex/interleaved rope on (x[2i], x[2i+1]), YaRN, softmax_scale * mscale^2,
# noaux_tc routing).  It shares no code with transformers' modelling classes, so
# agreement with the goldens checks that transformers computes what the
# checkpoints mean.
# ----------------------------------------------------------------------------

def _rms(x, w, eps):
    return w * (x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps))


def _inv_freq(rp, dim, max_pos):
    base = rp["rope_theta"]
    inv = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))
    kind = rp.get("rope_type", rp.get("type", "default"))
    if kind == "llama3":
        f, lo, hi, old = rp["factor"], rp["low_freq_factor"], rp["high_freq_factor"], rp["original_max_position_embeddings"]
        out = []
        for v in inv.tolist():
            wl = 2 * math.pi / v
            if wl < old / hi:
                out.append(v)
            elif wl > old / lo:
                out.append(v / f)
            else:
                smooth = (old / wl - lo) / (hi - lo)
                out.append((1 - smooth) * v / f + smooth * v)
        inv = torch.tensor(out, dtype=torch.float64)
    elif kind == "yarn":
        f, orig = rp["factor"], rp["original_max_position_embeddings"]
        if max_pos > orig:  # DeepSeek-V3 inference code: only when extending
            def corr_dim(rot):
                return dim * math.log(orig / (rot * 2 * math.pi)) / (2 * math.log(base))
            low = max(math.floor(corr_dim(rp.get("beta_fast", 32))), 0)
            high = min(math.ceil(corr_dim(rp.get("beta_slow", 1))), dim - 1)
            if low == high:
                high += 0.001
            ramp = ((torch.arange(dim // 2, dtype=torch.float64) - low) / (high - low)).clamp(0, 1)
            smooth = 1 - ramp
            inv = inv / f * (1 - smooth) + inv * smooth
    elif kind != "default":
        raise NotImplementedError(kind)
    return inv


def _rope_half(x, cos, sin):  # Llama/Qwen layout: pairs (x[i], x[i + d/2])
    h = x.shape[-1] // 2
    x1, x2 = x[..., :h], x[..., h:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


def _rope_interleaved(x, cos, sin):  # DeepSeek layout: pairs (x[2i], x[2i+1]), result stays interleaved
    xr, xi = x[..., 0::2], x[..., 1::2]
    out = torch.empty_like(x)
    out[..., 0::2] = xr * cos - xi * sin
    out[..., 1::2] = xr * sin + xi * cos
    return out


def _attend(q, k, v, scale):  # [H, T, d]
    T = q.shape[1]
    s = (q @ k.transpose(-1, -2)) * scale
    s = s.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), 1), float("-inf"))
    return torch.softmax(s, dim=-1) @ v


def reference_logprobs(model_dir, tokens):
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    with safe_open(os.path.join(model_dir, "model.safetensors"), framework="pt") as f:
        W = {k: f.get_tensor(k).to(torch.float64) for k in f.keys()}
    rp = cfg.get("rope_parameters") or dict(cfg.get("rope_scaling") or {}, rope_theta=cfg.get("rope_theta", 10000.0))
    ds = cfg["model_type"] == "deepseek_v3"
    eps = cfg["rms_norm_eps"]
    H = cfg["num_attention_heads"]
    T = len(tokens)
    pos = torch.arange(T, dtype=torch.float64)[:, None]
    silu = torch.nn.functional.silu

    def lin(x, name):
        y = x @ W[name + ".weight"].T
        return y + W[name + ".bias"] if name + ".bias" in W else y

    def mlp(x, p):
        return lin(silu(lin(x, p + ".gate_proj")) * lin(x, p + ".up_proj"), p + ".down_proj")

    x = W["model.embed_tokens.weight"][torch.tensor(tokens)]
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        h = _rms(x, W[p + "input_layernorm.weight"], eps)
        a = p + "self_attn."
        if ds:
            dn, dr, dv, r = cfg["qk_nope_head_dim"], cfg["qk_rope_head_dim"], cfg["v_head_dim"], cfg["kv_lora_rank"]
            if cfg.get("q_lora_rank"):
                q = lin(_rms(lin(h, a + "q_a_proj"), W[a + "q_a_layernorm.weight"], eps), a + "q_b_proj")
            else:
                q = lin(h, a + "q_proj")
            q = q.view(T, H, dn + dr).transpose(0, 1)
            kv = lin(h, a + "kv_a_proj_with_mqa")
            c, k_pe = kv[:, :r], kv[:, r:]
            kvb = lin(_rms(c, W[a + "kv_a_layernorm.weight"], eps), a + "kv_b_proj").view(T, H, dn + dv).transpose(0, 1)
            inv = _inv_freq(rp, dr, cfg["max_position_embeddings"])
            ang = pos * inv
            cos, sin = ang.cos(), ang.sin()
            rope = _rope_interleaved if cfg.get("rope_interleave", True) else _rope_half
            q_pe = rope(q[..., dn:], cos, sin)
            k_pe = rope(k_pe, cos, sin).expand(H, T, dr)
            qq = torch.cat([q[..., :dn], q_pe], -1)
            kk = torch.cat([kvb[..., :dn], k_pe], -1)
            scale = (dn + dr) ** -0.5
            if rp.get("rope_type") == "yarn" and cfg["max_position_embeddings"] > rp["original_max_position_embeddings"]:
                m = 0.1 * rp.get("mscale_all_dim", 1.0) * math.log(rp["factor"]) + 1.0
                scale = scale * m * m
            o = _attend(qq, kk, kvb[..., dn:], scale)
        else:
            hd = cfg.get("head_dim") or cfg["hidden_size"] // H
            KV = cfg["num_key_value_heads"]
            q = lin(h, a + "q_proj").view(T, H, hd).transpose(0, 1)
            k = lin(h, a + "k_proj").view(T, KV, hd).transpose(0, 1)
            v = lin(h, a + "v_proj").view(T, KV, hd).transpose(0, 1)
            ang = pos * _inv_freq(rp, hd, cfg["max_position_embeddings"])
            cos, sin = ang.cos(), ang.sin()
            q, k = _rope_half(q, cos, sin), _rope_half(k, cos, sin)
            k = k.repeat_interleave(H // KV, dim=0)
            v = v.repeat_interleave(H // KV, dim=0)
            o = _attend(q, k, v, hd ** -0.5)
        x = x + lin(o.transpose(0, 1).reshape(T, -1), a + "o_proj")
        h = _rms(x, W[p + "post_attention_layernorm.weight"], eps)
        m = p + "mlp."
        if ds and l >= cfg["first_k_dense_replace"]:
            E, k_, G, TG = cfg["n_routed_experts"], cfg["num_experts_per_tok"], cfg["n_group"], cfg["topk_group"]
            scores = torch.sigmoid(h @ W[m + "gate.weight"].T)
            biased = scores + W[m + "gate.e_score_correction_bias"]
            gscore = biased.view(T, G, E // G).topk(2, dim=-1).values.sum(-1)
            gsel = gscore.topk(TG, dim=-1).indices
            gmask = torch.zeros(T, G, dtype=torch.bool).scatter_(1, gsel, True)
            emask = gmask[:, :, None].expand(T, G, E // G).reshape(T, E)
            idx = biased.masked_fill(~emask, float("-inf")).topk(k_, dim=-1).indices
            wts = scores.gather(1, idx)
            if cfg.get("norm_topk_prob", True):
                wts = wts / wts.sum(-1, keepdim=True)
            wts = wts * cfg["routed_scaling_factor"]
            y = mlp(h, m + "shared_experts")
            for t in range(T):
                for j in range(k_):
                    y[t] = y[t] + wts[t, j] * mlp(h[t:t + 1], f"{m}experts.{idx[t, j].item()}")[0]
        else:
            y = mlp(h, m[:-1])
        x = x + y
    x = _rms(x, W["model.norm.weight"], eps)
    head = W["lm_head.weight"] if "lm_head.weight" in W else W["model.embed_tokens.weight"]
    assert ("lm_head.weight" not in W) == bool(cfg.get("tie_word_embeddings", False))
    return torch.log_softmax(x @ head.T, dim=-1)


def build(name, seed):
    cls, make_cfg = MODELS[name]
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    cfg = make_cfg()
    model = cls(cfg).to(torch.float32).eval()
    randomize(model, gen)
    seqs = make_sequences(cfg.vocab_size, gen)
    return model, seqs


def make_one(name, out_dir, versions):
    cls, _ = MODELS[name]
    is_moe = name.startswith("deepseek")
    seed = BASE_SEED + sum(map(ord, name))
    tries = []
    for attempt in range(MAX_SEED_TRIES):
        model, seqs = build(name, seed)
        probe = RouterProbe(model) if is_moe else None
        lps = [logprobs_of(model, s) for s in seqs]
        if probe is None:
            break
        probe.close()
        margin = min(min(r["group_margin"], r["expert_margin"]) for r in probe.records)
        tries.append({"seed": seed, "min_routing_margin": margin})
        if margin >= MIN_ROUTING_MARGIN:
            break
        seed += 1
    else:
        raise RuntimeError(f"{name}: no seed with routing margin >= {MIN_ROUTING_MARGIN}")

    assert model.config._attn_implementation == "eager", model.config._attn_implementation
    assert all(p.dtype == torch.float32 for p in model.parameters())

    d = os.path.join(out_dir, name)
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    model.save_pretrained(d)  # save_original_format=True: classic checkpoint names
    for extra in ("generation_config.json",):
        p = os.path.join(d, extra)
        if os.path.exists(p):
            os.remove(p)
    st_path = os.path.join(d, "model.safetensors")
    names, shapes, dtypes = tensor_names(st_path)
    assert dtypes == {"F32"}, dtypes

    notes = []
    module_names = list(model.state_dict().keys())
    fused_in_file = any(re.search(r"\.mlp\.experts\.(gate_up_proj|down_proj)$", k) for k in names)
    if fused_in_file:
        # Fallback: this transformers saved fused experts; rewrite per expert.
        notes.append("save_pretrained wrote fused experts; model.safetensors was unfused by this script")
        shutil.move(st_path, os.path.join(d, "model_fused.safetensors"))
        with safe_open(os.path.join(d, "model_fused.safetensors"), framework="pt") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        save_file(unfuse_experts(tensors), st_path, metadata={"format": "pt"})
        names, shapes, dtypes = tensor_names(st_path)
    elif is_moe:
        # Also keep the in-memory (fused) layout of this transformers version, for reference.
        with tempfile.TemporaryDirectory() as tmp:
            model.save_pretrained(tmp, save_original_format=False)
            shutil.copy(os.path.join(tmp, "model.safetensors"), os.path.join(d, "model_fused.safetensors"))
    check_file_matches_model(model, st_path)
    fused_names = None
    if os.path.exists(os.path.join(d, "model_fused.safetensors")):
        fused_names, fused_shapes, _ = tensor_names(os.path.join(d, "model_fused.safetensors"))
        check_file_matches_model(model, os.path.join(d, "model_fused.safetensors"))

    # Goldens.
    sequences = [golden_for(lp, s) for lp, s in zip(lps, seqs)]

    # Reload the saved directory and recompute: must match bit for bit.
    reloaded = cls.from_pretrained(d, dtype=torch.float32, attn_implementation="eager").eval()
    max_diff = 0.0
    for lp, s in zip(lps, seqs):
        max_diff = max(max_diff, (logprobs_of(reloaded, s) - lp).abs().max().item())
    assert max_diff == 0.0, f"{name}: reload differs by {max_diff}"
    for k, v in model.state_dict().items():
        assert torch.equal(v, reloaded.state_dict()[k]), f"{name}: reloaded {k} differs"

    # Independent float64 reference from the files on disk.
    ref_diff = 0.0
    for lp, s in zip(lps, seqs):
        ref_diff = max(ref_diff, (reference_logprobs(d, s) - lp.double()).abs().max().item())
    assert ref_diff < 1e-4, f"{name}: independent reference differs by {ref_diff}"

    cfg = model.config
    golden = {
        "name": name,
        "model_class": cls.__name__,
        "model_type": cfg.model_type,
        "seed": seed,
        "versions": versions,
        "dtype": "float32",
        "attn_implementation": "eager",
        "how_logprobs_are_made": "log_softmax(fp32 logits) of model(input_ids=[tokens]) (batch 1, no padding, "
                                 "positions 0..n-1, no cache); next_token_logprobs[i] = logprob[i, tokens[i+1]]",
        "init": "transformers init, then every parameter redrawn (randn*std): embed std 0.3, untied lm_head std 2/sqrt(H), "
                "norm weights 1+0.1*randn, biases std 0.1, matrices and experts std 1/sqrt(fan_in), "
                "e_score_correction_bias randn*0.1",
        "tie_word_embeddings": bool(cfg.tie_word_embeddings),
        "rope": rope_info(model),
        "state_dict_names": names,
        "state_dict_shapes": shapes,
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "sequences": sequences,
        "reload_max_abs_diff": max_diff,
        "independent_fp64_reference_max_abs_diff": ref_diff,
        "notes": notes,
    }
    if set(module_names) != set(names):
        golden["module_state_dict_names"] = module_names
    if fused_names is not None:
        golden["fused_state_dict_names"] = fused_names
    if is_moe:
        golden["rope_interleave"] = getattr(cfg, "rope_interleave", None)
        golden["num_mtp_layers"] = getattr(cfg, "num_mtp_layers", None)
        golden["routing"] = {
            "min_margin_required": MIN_ROUTING_MARGIN,
            "seed_tries": tries,
            "per_router_call": probe.records,
            "note": "records are per router call in forward order: for each sequence (tokens as listed), "
                    "layers first_k_dense_replace..L-1",
        }
        # How much the correction bias matters for the final log-probs.
        with torch.no_grad():
            saved = {}
            for n_, b in model.named_buffers():
                if n_.endswith("e_score_correction_bias"):
                    saved[n_] = b.clone()
                    b.zero_()
            diff = max((logprobs_of(model, s) - lp).abs().max().item() for lp, s in zip(lps, seqs))
            for n_, b in model.named_buffers():
                if n_ in saved:
                    b.copy_(saved[n_])
        golden["logprob_max_abs_change_if_router_bias_zeroed"] = diff
    if name == "qwen2_tied":
        golden["lm_head_shares_embedding_storage"] = (
            model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr())

    with open(os.path.join(d, "golden.json"), "w") as f:
        json.dump(golden, f, indent=1)
        f.write("\n")
    for fn in os.listdir(d):
        os.chmod(os.path.join(d, fn), 0o644)  # safetensors are written 0600
    return golden


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--only", nargs="*", choices=sorted(MODELS))
    args = ap.parse_args()

    transformers.utils.logging.disable_progress_bar()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    versions = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "safetensors": safetensors.__version__,
    }
    os.makedirs(args.out, exist_ok=True)
    for name in args.only or list(MODELS):
        g = make_one(name, args.out, versions)
        size = os.path.getsize(os.path.join(args.out, name, "model.safetensors"))
        extra = ""
        if "routing" in g:
            extra = (f" seed={g['seed']} min_routing_margin={g['routing']['seed_tries'][-1]['min_routing_margin']:.4g}"
                     f" bias_effect={g['logprob_max_abs_change_if_router_bias_zeroed']:.3g}")
        print(f"{name}: {len(g['state_dict_names'])} tensors, model.safetensors {size} bytes, "
              f"params {g['num_parameters']}, reload diff {g['reload_max_abs_diff']}, "
              f"fp64 reference diff {g['independent_fp64_reference_max_abs_diff']:.3g}{extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
