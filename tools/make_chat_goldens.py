#!/usr/bin/env python3
"""Golden chat renderings made with transformers' apply_chat_template, for crucible's chat templates.

For every template family below this script loads the real tokenizer directory with
AutoTokenizer (offline: tokenizer.json and tokenizer_config.json are there), renders the
conversations of CONVERSATIONS with apply_chat_template(tokenize=False) under every option
combination of the family, and writes tests/data/chat_golden/<family>.json:

    {"source": ..., "transformers": ..., "jinja2": ..., "tokenizer_dir": ...,
     "chat_template": <the exact Jinja text rendered>,
     "cases": [{"name", "messages": [{"role", "content"}], "options": {...}, "rendered"}]}

`options` uses crucible's ChatTemplateOptions names: add_generation_prompt (always),
enable_thinking (qwen3), think_prefill (deepseek files), bos_token (only where overridden).

Families:
  deepseek_v3  the tokenizer_config.json template of the shared deepseek_v3 directory
               (DeepSeek-V3: bare '<｜Assistant｜>' generation prompt, assistant text verbatim).
               crucible: ChatFormat::R1 with think_prefill = false.
  deepseek_r1  the same tokenizer with DeepSeek-R1's hub template passed as chat_template=
               (R1_TEMPLATE below, copied verbatim from deepseek-ai/DeepSeek-R1
               tokenizer_config.json after the "force <think>" update; the text as quoted
               verbatim by public code that loads DeepSeek-R1, e.g. MindFormers' R1 tests; the
               older hub text differs only in ending with a bare '<｜Assistant｜>'). It prefills
               '<｜Assistant｜><think>\\n' and keeps only the text after the last '</think>' of
               every assistant turn. crucible: ChatFormat::R1 with think_prefill = true.
               The expected strings are transformers' own renderings, not hand-derived; the
               script also checks the derivation "R1 = V3 + '<think>\\n' after the generation
               prompt" on every conversation without '</think>'.
  qwen3        the shared qwen3 template (enable_thinking true and false; the script checks
               that leaving enable_thinking undefined renders as true).
  llama3_1     the shared llama3_1 template. NOTE: that file carries the Llama-3 template
               (no "Cutting Knowledge Date"/"Today Date" system header, no date_string).

Usage (from the repository root):
    python3 tools/make_chat_goldens.py [--tokenizers /work/shared/data/tokenizers] [--out tests/data/chat_golden]
    python3 tools/make_chat_goldens.py --cpp data/chat_template_sources.cpp   # also writes the C++ copies

--cpp writes the four template texts as C++ raw string literals (one source line per
template line, long lines cut before a '{%' or '{{'; the pieces concatenate to the exact
text, which tests/data/test_chat_template.cpp checks against the goldens and the files).

Needs transformers and jinja2 (no torch, no network).
"""

import argparse
import json
import os
import sys

import jinja2
import transformers
from transformers import AutoTokenizer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# deepseek-ai/DeepSeek-R1 tokenizer_config.json "chat_template" (one line; the '\n' inside
# Jinja string literals are backslash escapes in the template text, as on the hub).
R1_TEMPLATE = r"""{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}{% set ns = namespace(is_first=false, is_tool=false, is_output_first=true, system_prompt='', is_first_sp=true) %}{%- for message in messages %}{%- if message['role'] == 'system' %}{%- if ns.is_first_sp %}{% set ns.system_prompt = ns.system_prompt + message['content'] %}{% set ns.is_first_sp = false %}{%- else %}{% set ns.system_prompt = ns.system_prompt + '\n\n' + message['content'] %}{%- endif %}{%- endif %}{%- endfor %}{{ bos_token }}{{ ns.system_prompt }}{%- for message in messages %}{%- if message['role'] == 'user' %}{%- set ns.is_tool = false -%}{{'<｜User｜>' + message['content']}}{%- endif %}{%- if message['role'] == 'assistant' and 'tool_calls' in message %}{%- set ns.is_tool = false -%}{%- for tool in message['tool_calls'] %}{%- if not ns.is_first %}{%- if message['content'] is none %}{{'<｜Assistant｜><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + tool['function']['name'] + '\n' + '```json' + '\n' + tool['function']['arguments'] + '\n' + '```' + '<｜tool▁call▁end｜>'}}{%- else %}{{'<｜Assistant｜>' + message['content'] + '<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + tool['function']['name'] + '\n' + '```json' + '\n' + tool['function']['arguments'] + '\n' + '```' + '<｜tool▁call▁end｜>'}}{%- endif %}{%- set ns.is_first = true -%}{%- else %}{{'\n' + '<｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + tool['function']['name'] + '\n' + '```json' + '\n' + tool['function']['arguments'] + '\n' + '```' + '<｜tool▁call▁end｜>'}}{%- endif %}{%- endfor %}{{'<｜tool▁calls▁end｜><｜end▁of▁sentence｜>'}}{%- endif %}{%- if message['role'] == 'assistant' and 'tool_calls' not in message %}{%- if ns.is_tool %}{{'<｜tool▁outputs▁end｜>' + message['content'] + '<｜end▁of▁sentence｜>'}}{%- set ns.is_tool = false -%}{%- else %}{% set content = message['content'] %}{% if '</think>' in content %}{% set content = content.split('</think>')[-1] %}{% endif %}{{'<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>'}}{%- endif %}{%- endif %}{%- if message['role'] == 'tool' %}{%- set ns.is_tool = true -%}{%- if ns.is_output_first %}{{'<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>' + message['content'] + '<｜tool▁output▁end｜>'}}{%- set ns.is_output_first = false %}{%- else %}{{'<｜tool▁output▁begin｜>' + message['content'] + '<｜tool▁output▁end｜>'}}{%- endif %}{%- endif %}{%- endfor -%}{% if ns.is_tool %}{{'<｜tool▁outputs▁end｜>'}}{% endif %}{% if add_generation_prompt and not ns.is_tool %}{{'<｜Assistant｜><think>\n'}}{% endif %}"""


def S(c):
    return {"role": "system", "content": c}


def U(c):
    return {"role": "user", "content": c}


def A(c):
    return {"role": "assistant", "content": c}


THINK1 = "<think>\nI add 2 and 3.\n2 + 3 = 5\n</think>\n\nThe answer is \\boxed{5}."

# (name, messages). Each one aims at a rule of at least one template; the comment says which.
CONVERSATIONS = [
    ("single_user", [U("What is 2 + 3?")]),
    ("system_user", [S("You are a helpful assistant."), U("Hello")]),
    ("multi_turn", [S("Be brief."), U("Hi"), A("Hello! How can I help?"), U("Tell me a joke.")]),
    # Earlier turn with reasoning: R1 and Qwen3 strip it, V3 and Llama keep it verbatim.
    ("think_history", [U("What is 2 + 3?"), A(THINK1), U("And 4 + 4?")]),
    # Final assistant turn with reasoning (an SFT target): Qwen3 re-renders the <think> block.
    ("think_final", [S("Reason step by step."), U("What is 2 + 3?"), A(THINK1)]),
    # Odd tags: '</think>' without '<think>', two '</think>', '<think>' never closed.
    ("think_odd", [U("q1"), A("no opening tag</think>answer one"), U("q2"),
                   A("<think>a</think>b</think>c"), U("q3"), A("<think>unclosed reasoning")]),
    ("unicode", [S("你是一个有帮助的助手。"), U("¿Qué es π? 🙂 Ünïcödé — ｜full width｜ Ωμέγα"),
                 A("π ≈ 3.14159 🥧 ありがとう"), U("日本語でお願いします")]),
    # Template-looking text is data, never markup.
    ("literal_markup", [U("Literal {{ bos_token }} {% if x %} <|im_end|> <｜User｜> <|eot_id|>"),
                        A("<｜end▁of▁sentence｜> stays text")]),
    ("empty_strings", [S(""), U(""), A(""), U("")]),
    # Llama trims with Python str.strip() (Unicode whitespace); Qwen3 strips only '\n' around reasoning.
    ("whitespace", [S("  padded system \n"), U("\n\nline1\r\nline2\t\n"),
                    A("  \n<think>\n\n  spaced  \n\n</think>\n\n\n  answer  \n"),
                    U("\u00a0nbsp\u3000ideographic\u2028sep\x1f\x85 \u200b")]),
    # DeepSeek hoists every system message to the front (joined by a blank line); the others
    # render a later system message in place.
    ("two_systems", [S("First."), U("u1"), S("Second."), A("a1"), U("u2")]),
    # Qwen3 looks for the last user message that is not a tool response; a user text wrapped in
    # <tool_response> tags moves that index back, so the assistant turn keeps its reasoning.
    ("tool_response_like_user", [U("real question"), A("<think>\nr\n</think>\n\na"),
                                 U("<tool_response>\n42\n</tool_response>")]),
    # Qwen3: an assistant turn after the last query keeps its <think> block when it has
    # reasoning or is the last message, else renders plain.
    ("consecutive_assistants", [U("q"), A("<think>\nr1\n</think>\n\na1"), A("a2")]),
    ("consecutive_assistants_plain_first", [U("q"), A("plain"), A("<think>r2</think>a2")]),
    ("assistant_first", [A("Hi, how can I help?"), U("hello")]),
    # No user message: Qwen3's last-query index is the last message, so a final assistant turn
    # is not "after" it and renders its content without a think block.
    ("no_user", [S("s"), A("<think>\nr\n</think>\n\na")]),
    # Every kind of Python whitespace at the edges of Llama's trimmed content.
    ("unicode_whitespace_edges", [U("\x85\u2003 q \u202f\u205f\x1c"), A("\u1680\u2000a\u200a\u2029\x0b\x0c")]),
    ("system_only", [S("Only a system prompt.")]),
]

FAMILIES = {
    "deepseek_v3": {"dir": "deepseek_v3", "template": None,
                    "grid": [{"think_prefill": False}], "bos_override": True},
    "deepseek_r1": {"dir": "deepseek_v3", "template": R1_TEMPLATE,
                    "grid": [{"think_prefill": True}], "bos_override": True},
    "qwen3": {"dir": "qwen3", "template": None,
              "grid": [{"enable_thinking": True}, {"enable_thinking": False}], "bos_override": False},
    "llama3_1": {"dir": "llama3_1", "template": None, "grid": [{}], "bos_override": True},
}


def render(tok, template, messages, add_generation_prompt, **kwargs):
    if template is not None:
        kwargs["chat_template"] = template
    return tok.apply_chat_template(messages, tokenize=False,
                                   add_generation_prompt=add_generation_prompt, **kwargs)


def family_cases(name, fam, tok):
    cases = []
    for conv_name, messages in CONVERSATIONS:
        for gen in (False, True):
            for extra in fam["grid"]:
                kwargs = {"enable_thinking": extra["enable_thinking"]} if "enable_thinking" in extra else {}
                out = render(tok, fam["template"], messages, gen, **kwargs)
                if name == "qwen3" and extra["enable_thinking"]:
                    # crucible's default enable_thinking = true must be the template's "undefined".
                    assert out == render(tok, None, messages, gen), conv_name
                options = {"add_generation_prompt": gen, **extra}
                cases.append({"name": conv_name, "messages": messages, "options": options, "rendered": out})
    if fam["bos_override"]:
        # A caller whose tokenizer adds BOS as an id renders with bos_token "".
        for conv_name, messages in CONVERSATIONS[:3]:
            out = render(tok, fam["template"], messages, True, bos_token="")
            options = {"add_generation_prompt": True, **fam["grid"][0], "bos_token": ""}
            cases.append({"name": conv_name + "+no_bos", "messages": messages, "options": options,
                          "rendered": out})
    return cases


def check_r1_derivation(v3_cases, r1_cases):
    """R1 = V3 with '<think>\\n' after the generation prompt, where no assistant has '</think>'."""
    v3 = {(c["name"], c["options"]["add_generation_prompt"]): c["rendered"] for c in v3_cases}
    checked = 0
    for c in r1_cases:
        if any("</think>" in m["content"] for m in c["messages"] if m["role"] == "assistant"):
            continue
        gen = c["options"]["add_generation_prompt"]
        expected = v3[(c["name"], gen)] + ("<think>\n" if gen else "")
        assert c["rendered"] == expected, c["name"]
        checked += 1
    return checked


CPP_HEAD = """\
// data/chat_template_sources.cpp: the stock Jinja chat templates, verbatim, and which one
// render_chat reproduces for a format and options.
//
// Invariant: every string is byte for byte the "chat_template" of its tokenizer_config.json
// (tests compare them with tests/data/chat_golden/*.json and the shared files). Adjacent
// literals concatenate; a line break of the template is the "\\n" at the end of a line.
// Generated by tools/make_chat_goldens.py --cpp; do not edit the strings by hand.
// Reference: deepseek-ai/DeepSeek-V3 and DeepSeek-R1, Qwen/Qwen3, meta-llama/Meta-Llama-3
// tokenizer_config.json (facts, copied as data).
#include <string_view>

#include "core/error.h"
#include "data/chat_template.h"

namespace crucible::data {
namespace {

"""

CPP_TAIL = """\
}  // namespace

std::string_view chat_template_source(ChatFormat f, const ChatTemplateOptions& o) {
  switch (f) {
    case ChatFormat::R1: return o.think_prefill ? kDeepSeekR1 : kDeepSeekV3;
    case ChatFormat::ChatML: return kQwen3;
    case ChatFormat::Llama3: return kLlama3;
  }
  CRUCIBLE_FAIL("chat_template_source: unknown ChatFormat ", static_cast<int>(f));
}

bool is_stock_chat_template(ChatFormat f, std::string_view jinja) {
  switch (f) {
    case ChatFormat::R1: return jinja == kDeepSeekR1 || jinja == kDeepSeekV3;
    case ChatFormat::ChatML: return jinja == kQwen3;
    case ChatFormat::Llama3: return jinja == kLlama3;
  }
  return false;
}

}  // namespace crucible::data
"""


def cpp_literal_lines(text, width=96):
    """The template as adjacent C++ raw literals, one list entry per source line."""
    lines = []
    for line in text.split("\n"):
        pieces, cur = [], ""
        i = 0
        while i < len(line):
            if len(cur.encode()) >= width and line.startswith(("{%", "{{"), i):
                pieces.append(cur)
                cur = ""
            cur += line[i]
            i += 1
        pieces.append(cur)
        lines.append(pieces)
    out = []
    for n, pieces in enumerate(lines):
        last_line = n == len(lines) - 1
        for k, piece in enumerate(pieces):
            assert ")tmpl\"" not in piece
            lit = f'R"tmpl({piece})tmpl"' if piece else ""
            if k == len(pieces) - 1 and not last_line:
                lit = (lit + ' "\\n"') if lit else '"\\n"'
            if lit:
                out.append(lit)
    return out or ['""']


def write_cpp(path, templates):
    body = CPP_HEAD
    for name, (origin, text) in templates.items():
        body += f"// {origin}\nconstexpr std::string_view {name} =\n"
        body += "\n".join("    " + l for l in cpp_literal_lines(text)) + ";\n\n"
    body += CPP_TAIL
    with open(path, "w", encoding="utf-8") as f:
        f.write(body)
    print(f"{path}: {len(templates)} templates")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokenizers", default=os.environ.get("CRUCIBLE_TOKENIZER_DIR", "/work/shared/data/tokenizers"))
    ap.add_argument("--out", default=os.path.join(REPO, "tests", "data", "chat_golden"))
    ap.add_argument("--cpp", help="also write the templates as C++ (data/chat_template_sources.cpp)")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    written = {}
    templates = {}
    for name, fam in FAMILIES.items():
        tok_dir = os.path.join(args.tokenizers, fam["dir"])
        tok = AutoTokenizer.from_pretrained(tok_dir)
        with open(os.path.join(tok_dir, "tokenizer_config.json"), encoding="utf-8") as f:
            file_template = json.load(f)["chat_template"]
        template = fam["template"] if fam["template"] is not None else file_template
        assert isinstance(template, str)
        cases = family_cases(name, fam, tok)
        written[name] = cases
        templates[name] = template
        doc = {
            "source": "tools/make_chat_goldens.py",
            "transformers": transformers.__version__,
            "jinja2": jinja2.__version__,
            "tokenizer_dir": fam["dir"],
            "chat_template_from": "tokenizer_config.json" if fam["template"] is None
                                  else "deepseek-ai/DeepSeek-R1 tokenizer_config.json (R1_TEMPLATE in the script)",
            "chat_template": template,
            "cases": cases,
        }
        path = os.path.join(args.out, name + ".json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(doc, f, ensure_ascii=False, indent=1)
            f.write("\n")
        print(f"{path}: {len(cases)} cases")

    n = check_r1_derivation(written["deepseek_v3"], written["deepseek_r1"])
    print(f"deepseek_r1: {n} cases equal deepseek_v3 + '<think>\\n' prefill (no '</think>' in them)")
    if args.cpp:
        write_cpp(args.cpp, {
            "kDeepSeekV3": ("deepseek-ai/DeepSeek-V3 (the shared deepseek_v3 tokenizer_config.json)", templates["deepseek_v3"]),
            "kDeepSeekR1": ("deepseek-ai/DeepSeek-R1, after the update that opens <think> in the generation prompt", templates["deepseek_r1"]),
            "kQwen3": ("Qwen/Qwen3 (the shared qwen3 tokenizer_config.json)", templates["qwen3"]),
            "kLlama3": ("meta-llama/Meta-Llama-3 (the shared llama3_1 tokenizer_config.json)", templates["llama3_1"]),
        })
    return 0


if __name__ == "__main__":
    sys.exit(main())
