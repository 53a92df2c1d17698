#!/usr/bin/env python3
"""Scores token ids with the reference runtimes of an exported model; prints JSON.

Given an HF directory written by crucible's export (checkpoints/hf_export.h) and/or
GGUF files (checkpoints/gguf_export.h), prints for each runtime the log-softmax of
the next-token logits at every position (float64 log-softmax of the runtime's
logits), so a caller can compare them with crucible's own log-probs:

  {"tokens": [...],
   "transformers": {"rows": [[V floats] * T], "next": [T-1 floats]},
   "llama_cpp": {"<gguf path>": {"rows": ..., "next": ...}, ...},
   "tokenize": {"text": ..., "bytes": [...], "tokenizers": [...], "llama_cpp": {"<gguf>": [...]}}}

"next"[t] is the log-prob of tokens[t+1] at position t. "rows" are written only
when T * V <= --max-row-values. llama.cpp runs on the CPU with an F32 KV cache
(--kv-f16 for its default F16 cache), no flash attention, one sequence.

With --text, the text is also tokenized (no special-token insertion by the
tokenizer itself, specials in the text parsed) by `tokenizers` (HF dir) and by
llama.cpp (each GGUF), to check that both give the same ids.

Needs: torch + transformers (for --hf), llama-cpp-python (for --gguf), numpy.
Usage:
  tools/check_export.py --hf OUT/hf --gguf OUT/model-f32.gguf --tokens 256,72,105,257
"""
import argparse
import json
import sys

import numpy as np


def log_softmax(logits):
    x = np.asarray(logits, dtype=np.float64)
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def summarize(rows, tokens, max_values):
    out = {"next": [float(rows[t, tokens[t + 1]]) for t in range(len(tokens) - 1)]}
    if rows.size <= max_values:
        out["rows"] = rows.tolist()
    return out


def run_transformers(hf_dir, tokens):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32)
    model.eval()
    with torch.no_grad():
        logits = model(torch.tensor([tokens], dtype=torch.long)).logits[0]
    return log_softmax(logits.double().numpy())


def load_llama(path, n_ctx, kv_f16):
    from llama_cpp import Llama

    kw = dict(model_path=path, logits_all=True, n_ctx=n_ctx, n_batch=n_ctx, n_ubatch=n_ctx,
              n_threads=2, n_gpu_layers=0, flash_attn=False, verbose=False)
    if not kv_f16:
        kw.update(type_k=0, type_v=0)  # GGML_TYPE_F32
    return Llama(**kw)


def run_llama_cpp(llm, tokens):
    llm.reset()
    llm.eval(tokens)
    return log_softmax(np.array(llm.scores[: len(tokens)], dtype=np.float64))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hf", help="exported Hugging Face directory")
    ap.add_argument("--gguf", action="append", default=[], help="exported GGUF file (repeatable)")
    ap.add_argument("--tokens", required=True, help="comma-separated token ids")
    ap.add_argument("--text", help="also tokenize this text with both tokenizers")
    ap.add_argument("--text-file", help="read --text from this UTF-8 file")
    ap.add_argument("--chat-file", help="JSON list of chat messages to render with the HF tokenizer's "
                    "chat template and with the GGUF's tokenizer.chat_template (generation prompt added)")
    ap.add_argument("--kv-f16", action="store_true", help="llama.cpp F16 KV cache (its default)")
    ap.add_argument("--max-row-values", type=int, default=2_000_000)
    args = ap.parse_args()

    if args.text_file:
        with open(args.text_file, encoding="utf-8", newline="") as f:  # keep \r as is
            args.text = f.read()
    tokens = [int(t) for t in args.tokens.split(",") if t.strip()]
    if len(tokens) < 2:
        sys.exit("check_export.py: give at least two tokens")
    result = {"tokens": tokens}
    if args.hf:
        result["transformers"] = summarize(run_transformers(args.hf, tokens), tokens, args.max_row_values)
    llms = {}
    if args.gguf:
        result["llama_cpp"] = {}
        n_ctx = max(64, len(tokens) + 8)
        for path in args.gguf:
            llms[path] = load_llama(path, n_ctx, args.kv_f16)
            rows = run_llama_cpp(llms[path], tokens)
            result["llama_cpp"][path] = summarize(rows, tokens, args.max_row_values)
    if args.text is not None:
        tk = {"text": args.text, "bytes": list(args.text.encode("utf-8"))}
        if args.hf:
            from tokenizers import Tokenizer

            hf_tok = Tokenizer.from_file(args.hf + "/tokenizer.json")
            tk["tokenizers"] = hf_tok.encode(args.text, add_special_tokens=False).ids
            tk["tokenizers_decoded"] = hf_tok.decode(tk["tokenizers"], skip_special_tokens=False)
        tk["llama_cpp"] = {p: llm.tokenize(args.text.encode("utf-8"), add_bos=False, special=True)
                           for p, llm in llms.items()}
        result["tokenize"] = tk
    if args.chat_file:
        with open(args.chat_file, encoding="utf-8") as f:
            messages = json.load(f)
        chat = {}
        if args.hf:
            from transformers import AutoTokenizer

            tok = AutoTokenizer.from_pretrained(args.hf)
            chat["transformers"] = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        if llms:
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            chat["llama_cpp"] = {}
            for p, llm in llms.items():
                meta = llm.metadata
                bos = llm.detokenize([llm.token_bos()], special=True).decode("utf-8")
                eos = llm.detokenize([llm.token_eos()], special=True).decode("utf-8")
                fmt = Jinja2ChatFormatter(meta["tokenizer.chat_template"], eos_token=eos, bos_token=bos)
                chat["llama_cpp"][p] = fmt(messages=messages).prompt
        result["chat"] = chat
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
