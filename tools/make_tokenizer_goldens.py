#!/usr/bin/env python3
"""Reference data for crucible's tokenizers (data/tokenizer*), made with Hugging Face `tokenizers`.

Three subcommands:

  tables   writes data/tokenizer_unicode_tables.cpp: the Unicode data the regex engine and
           the NFC normalizer need, as compact ranges. The general categories are read off
           the regex engine that `tokenizers` itself runs (Oniguruma, through `\\p{Lu}` ...
           Split pre-tokenizers over every code point), so \\p{..} classes agree with it exactly
           (oniguruma 6.9.x = Unicode 16.0 for tokenizers 0.23). The NFC data come from
           Python's unicodedata, then are clamped to what `tokenizers`' NFC normalizer knows
           (its unicode-normalization-alignments crate is on Unicode 9.0): combining classes
           of marks it does not know become 0, compositions it does not make are dropped.
           Each clamp is found by probing `tokenizers.normalizers.NFC`, not by a version list.

  goldens  writes tests/data/tokenizer_golden/golden.json: a varied corpus (code, math, LaTeX,
           CJK, emoji, whitespace runs, long numbers, contractions, special tokens inside text,
           combining marks, RTL, ...) with the ids `tokenizers` gives for each shared tokenizer
           (encode(text, add_special_tokens=False)), a set of decode cases, and NFC cases
           (input -> tokenizers' NFC output).

  bench    the Python peer of bench/tokenizer_encode.cpp: encodes a file with `tokenizers`
           on one thread, as one encode() call and as one call per paragraph (split on a
           blank line), best of --passes, and prints one JSON line {"mb_per_s_document",
           "mb_per_s_paragraphs", "tokens", "ids_fnv1a": FNV-1a of the document's ids}.

Usage (from the repository root):
    python3 tools/make_tokenizer_goldens.py tables  [--out data/tokenizer_unicode_tables.cpp]
    python3 tools/make_tokenizer_goldens.py goldens [--tokenizers /work/shared/data/tokenizers]
                                                    [--out tests/data/tokenizer_golden/golden.json]
    python3 tools/make_tokenizer_goldens.py bench --tokenizer DIR --file TEXT [--passes 5]

Needs `tokenizers` (pip install tokenizers); no network.
"""

import argparse
import json
import os
import random
import sys
import time
import unicodedata

import tokenizers
from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = ["qwen3", "deepseek_v3", "llama3_1"]

# Order = the C++ enum GeneralCategory in data/tokenizer_unicode.h (Cn first: the default).
CATEGORIES = ("Cn Lu Ll Lt Lm Lo Mn Mc Me Nd Nl No Pc Pd Ps Pe Pi Pf Po "
              "Sm Sc Sk So Zs Zl Zp Cc Cf Co Cs").split()


def all_code_points():
    return [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]


# ----------------------------------------------------------------------------- tables

def probe_categories():
    """code point -> category as tokenizers' regex engine sees it (\\p{XX} per category)."""
    cps = all_code_points()
    text = "".join(chr(c) for c in cps)
    gc = {}
    for cat in CATEGORIES:
        if cat in ("Cn", "Cs"):
            continue
        keep = set(cps)
        split = pre_tokenizers.Split(Regex(r"\p{%s}" % cat), "removed")
        for piece, _ in split.pre_tokenize_str(text):  # what remains did not match
            for ch in piece:
                keep.discard(ord(ch))
        for c in keep:
            if c in gc:
                sys.exit(f"U+{c:04X} is in both \\p{{{gc[c]}}} and \\p{{{cat}}}")
            gc[c] = cat
        print(f"  \\p{{{cat}}}: {len(keep)} code points", file=sys.stderr)
    for c in range(0xD800, 0xE000):
        gc[c] = "Cs"
    return gc


def probe_nfc():
    """(ccc table, decomposition entries) clamped to tokenizers' NFC."""
    nfc = normalizers.NFC()
    ccc = {}
    unknown_marks = []
    for c in all_code_points():
        k = unicodedata.combining(chr(c))
        if k == 0:
            continue
        # A mark the normalizer knows reorders against U+0334 (ccc 1) or U+0301 (ccc 230).
        s = "x" + chr(c) + "\u0334" if k > 1 else "x\u0301" + chr(c)
        if nfc.normalize_str(s) != unicodedata.normalize("NFC", s):
            unknown_marks.append(c)
            continue
        ccc[c] = k
    decomps = []
    dropped = []
    for c in all_code_points():
        d = unicodedata.decomposition(chr(c))
        if not d or d.startswith("<"):
            continue
        parts = [int(x, 16) for x in d.split()]
        assert 1 <= len(parts) <= 2
        single = "".join(chr(p) for p in parts)
        composes = len(parts) == 2 and unicodedata.normalize("NFC", single) == chr(c)
        if nfc.normalize_str(single) != unicodedata.normalize("NFC", single):
            dropped.append(c)  # a composite the normalizer does not know: leave it alone
            continue
        decomps.append((c, parts[0], parts[1] if len(parts) == 2 else 0, composes))
    print(f"  NFC: {len(ccc)} marks with ccc > 0 ({len(unknown_marks)} newer marks clamped to 0), "
          f"{len(decomps)} decompositions ({len(dropped)} newer composites dropped: "
          f"{' '.join('U+%04X' % c for c in dropped)})", file=sys.stderr)
    return ccc, decomps, unknown_marks, dropped


def write_tables(out_path):
    print("probing tokenizers' regex engine for general categories ...", file=sys.stderr)
    gc = probe_categories()
    print("probing tokenizers' NFC ...", file=sys.stderr)
    ccc, decomps, unknown_marks, dropped = probe_nfc()

    runs = []  # (first code point, category); each run lasts until the next one
    prev = None
    for c in range(0x110000):
        cat = gc.get(c, "Cn")
        if cat != prev:
            runs.append((c, cat))
            prev = cat
    ccc_runs = []  # (first, last, ccc), ccc > 0 only
    for c in sorted(ccc):
        if ccc_runs and ccc_runs[-1][1] == c - 1 and ccc_runs[-1][2] == ccc[c]:
            ccc_runs[-1][1] = c
        else:
            ccc_runs.append([c, c, ccc[c]])

    def rows(items, per_line):
        lines = []
        for i in range(0, len(items), per_line):
            lines.append("    " + " ".join(items[i:i + per_line]))
        return "\n".join(lines)

    text = f"""// data/tokenizer_unicode_tables.cpp: GENERATED by tools/make_tokenizer_goldens.py tables.
// Do not edit; rerun the script (it needs Python `tokenizers` {tokenizers.__version__}).
//
// What is inside: the general category of every code point as runs (a run lasts until the
// next one starts), the canonical combining classes > 0 as ranges, and the canonical
// decompositions (one level; `composes` marks primary composites that NFC recomposes).
// Invariant: the categories are those tokenizers' own regex engine (Oniguruma, Unicode 16.0)
// gives to \\p{{..}}; the NFC data are Python unicodedata {unicodedata.unidata_version} clamped to
// tokenizers' NFC (unicode-normalization-alignments, Unicode 9.0): {len(unknown_marks)} newer marks have
// ccc 0 here and {len(dropped)} newer composite(s) are left out, as that normalizer does.
// Reference: Unicode Standard Annex #15 (normalization), #44 (UCD); onig doc/RE.
#include "data/tokenizer_unicode.h"

namespace crucible::data::unicode {{

using enum GeneralCategory;

const CategoryRun kCategoryRuns[] = {{
{rows([f"{{0x{c:X},{cat}}}," for c, cat in runs], 8)}
}};
const std::size_t kCategoryRunCount = sizeof(kCategoryRuns) / sizeof(kCategoryRuns[0]);

const CombiningClassRange kCombiningClassRanges[] = {{
{rows([f"{{0x{a:X},0x{b:X},{k}}}," for a, b, k in ccc_runs], 6)}
}};
const std::size_t kCombiningClassRangeCount =
    sizeof(kCombiningClassRanges) / sizeof(kCombiningClassRanges[0]);

const Decomposition kDecompositions[] = {{
{rows([f"{{0x{c:X},0x{a:X},0x{b:X},{int(k)}}}," for c, a, b, k in decomps], 5)}
}};
const std::size_t kDecompositionCount = sizeof(kDecompositions) / sizeof(kDecompositions[0]);

}}  // namespace crucible::data::unicode
"""
    with open(out_path, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"wrote {out_path}: {len(runs)} category runs, {len(ccc_runs)} ccc ranges, "
          f"{len(decomps)} decompositions, {len(text)} bytes", file=sys.stderr)


# ----------------------------------------------------------------------------- goldens

# Hand-written cases: each names what it exercises.
CASES = [
    "Hello world",
    "Hello, world! How are you doing today?",
    "",
    " ",
    "a",
    " leading space and trailing space ",
    "I'm sure you've heard they'll say it's what we'd do. DON'T SHOUT: I'LL, WE'VE, SHE'S, 'S 'T 'Re 'vE",
    "the cat's toy, the dogs' toys, rock'n'roll, o'clock, 'quoted', \"double\"",
    "'ſ 'K ſtop Kelvin (long s and the Kelvin sign fold to s and k under (?i))",
    "def fib(n: int) -> int:\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "for (int i = 0; i < n; ++i) { sum += a[i] * b[i]; }  // dot product\n\tx->y = &z;",
    "#include <vector>\nstd::vector<std::int32_t> ids{1, 2, 3};\nauto [a, b] = f();\n",
    "SELECT id, name FROM users WHERE age >= 18 AND email LIKE '%@example.com';",
    "https://example.com/path?q=a+b&x=1#frag user@mail.org C:\\Windows\\System32",
    "$$\\int_0^1 x^2\\,dx = \\frac{1}{3}$$ and \\(\\sum_{k=1}^{n} k = \\frac{n(n+1)}{2}\\)",
    "\\begin{align} e^{i\\pi} + 1 &= 0 \\\\ \\mathbb{R}^n \\to \\mathbb{C} \\end{align}",
    "The answer is \\boxed{42}. So 3.14159 ≈ π, 2^10 = 1024, x² + y² = z², ½ + ¼ = ¾",
    "0 1 12 123 1234 12345 123456 1234567 12345678 123456789 1234567890 3141592653589793238462643383279",
    "2024-01-15T12:34:56Z, +1 (555) 010-9999, 1,234,567.89, 1e-10, 0xDEADBEEF, v1.2.3",
    "٠١٢٣٤٥٦٧٨٩ ۱۲۳ ०१२३ ５６７８ ⅫⅣ ①②③ 𝟘𝟙𝟚",
    "你好，世界！我们今天学习数学：三加四等于七。",
    "日本語のテキスト、ひらがなとカタカナ。東京タワーは３３３メートルです。",
    "한국어 텍스트입니다. 안녕하세요!",
    "Привет, мир! Ελληνικά κείμενα. Ünïcödé façade naïve café résumé coöperate",
    "مرحبا بالعالم! هذا نص عربي. שלום עולם, זה טקסט בעברית.",
    "नमस्ते दुनिया। ภาษาไทยไม่มีช่องว่าง ᐊᐃᐅ ትግርኛ",
    "Emoji: 😀😃😄 👍🏽 👨‍👩‍👧‍👦 🇫🇷🇯🇵 ❤️ ✨ 🧑🏿‍🚀 🏳️‍🌈 ☕️",
    "   multiple   spaces\t\ttabs\n\n\nnewlines\r\nwindows\rold mac\n \n \t \n",
    "trailing spaces   \nand more    ",
    "\u00a0nbsp\u00a0\u00a0 ideographic\u3000space line\u2028separator para\u2029sep nel\u0085next",
    "\u2000\u2001\u2002\u2003 em spaces \u200b zero width \u200d joiner \ufeff bom",
    "e\u0301 a\u0300 o\u0308 n\u0303 (decomposed) é à ö ñ (precomposed)",
    "\u0301 lone combining acute, \u0327\u0301 two marks, a\u0323\u0307 and a\u0307\u0323",
    "Å\u212b\u2126 ḱ\u1e31 ﬁ ﬀ Ǆ ǅ ǆ (angstrom sign, ohm sign, ligatures)",
    "Hangul jamo: \u1100\u1161\u11a8 \u1100\u1161 \uac00\u11a8 \u110b\u1169\u11ab",
    "Devanagari marks: क\u093c\u094d ज़ \u0915\u093c",
    "Dives Akuru \U00011935\U00011930 and new marks a\u0898\u0334 b\u1df6\u0301",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n<think>\nEasy.\n</think>\n\n4<|im_end|>",
    "<|endoftext|><|endoftext|>text<|endoftext|> <|im_start|><|im_end|>",
    "<｜begin▁of▁sentence｜>You are helpful.<｜User｜>Hi<｜Assistant｜><think>\nhmm\n</think>Hello<｜end▁of▁sentence｜>",
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
    "partial specials: <|im_start <|im_end| <｜User <|eot_id <think </think <tool_call> </tool_call>",
    "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"x\": 1}}\n</tool_call> <|fim_prefix|>a<|fim_middle|>b<|fim_suffix|>",
    "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get\n```json\n{}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
    "JSON: {\"a\": [1, 2.5, true, null], \"b\": \"\\u00e9\\n\"}",
    "Markdown: # Title\n\n- item **bold** _it_ `code`\n> quote\n\n| a | b |\n|---|---|\n",
    "!!!???...---___===+++***&&&%%%$$$###@@@^^^~~~```|||\\\\\\///",
    "([{<>}]) «quotes» „German“ ‘single’ “double” —dash– …ellipsis • bullet",
    "mixed: abc123def 123abc abc-123 a1b2c3 A1B2 x86_64 utf-8 ISO-8859-1",
    "ALLCAPS WORDS AND lowercase and CamelCaseWords and snake_case_words and kebab-case",
    "\x00\x01\x07\x1b[31mred\x1b[0m\x7f control characters",
    "Ḩ̸̢e̵l̶l̷o̴ z̷a̶l̸g̵o̵ t̴e̶x̷t̸",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕄𝕒𝕥𝕙 𝒮𝒸𝓇𝒾𝓅𝓉 𐍈𐌰𐌹 𓀀𓀁 𠀀𠀁 (astral planes)",
    "Ꭰ Ꮳ ᏍᏗ (Cherokee) ꙮ (multiocular O) ß ẞ ǈ ǋ ǲ (titlecase digraphs)",
    "a" * 200,
    " " * 37 + "x" + "\n" * 9 + "y" + "\t " * 11,
    "9" * 100,
    "ab" * 60 + " " + "xyz" * 40,
    "The quick brown fox jumps over the lazy dog. " * 6,
]

# Pools for the random cases: every class the split regexes distinguish.
POOLS = {
    "ascii_letters": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "digits": "0123456789",
    "punct": "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
    "space": [" ", " ", " ", "  ", "\t", "\n", "\r\n", "\r", "\u00a0", "\u3000", "\u2009", "\x0b", "\x0c", "\u0085"],
    "latin": "àáâãäåæçèéêëìíîïðñòóôõöøùúûüýþÿĀāĂăĄąĆćŒœŠšŸŽžſƒǄǅǆ",
    "marks": "\u0300\u0301\u0302\u0303\u0308\u030a\u0323\u0327\u0328\u0331\u0334\u0338\u0345\u05b0\u064b\u093c\u094d\u0e31\u302a\u3099\u309a\u20d7\u0898\u1df6",
    "cjk": "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长",
    "kana": "あいうえおかきくけこさしすせそたちつてとなにぬねのアイウエオカキクケコサシスセソタチツテトンーッャュョ゛゜",
    "hangul": "가나다라마바사아자차카타파하한국어\u1100\u1161\u11a8\u1112\u1175",
    "cyrillic_greek": "абвгдеёжзийклмнопрстуфхцчшщъыьэюяΑΒΓΔαβγδεζηθλμπσω",
    "rtl": "ابتثجحخدذرزسشصضطظعغفقكلمنهويءآأإةىשלוםעברית",
    "indic_thai": "कखगघङचछजझञटठडढणतथदधनपफबभमयरलवशषसहािीुूेैोौ्ंःกขคงจฉชซญดตถทนบปผพฟภมยรลวศษสหอฮะาิีึืุู่้๊๋",
    "emoji": ["😀", "👍", "🏽", "\u200d", "👩", "🔥", "🇺🇸", "❤", "\ufe0f", "🤖", "🧠", "✅", "🚀"],
    "symbols": "€£¥©®™°±×÷≤≥≠≈∞∑∏√∫∂∇∈∉⊂⊃∪∩∧∨¬→←↑↓⇒⇔♠♣♥♦★☆■□▲△●○",
    "numbers_other": "²³¹¼½¾ⅠⅡⅢⅣⅤ①②③٠١٢٣٤۵۶०१२३४５６７",
    "rare": ["\u200b", "\u200c", "\u2028", "\u2029", "\ufeff", "\x00", "\x1f", "\x7f", "\U0001d400",
             "\U00020000", "\U0010fffd", "\ue000", "\U000e0041", "\u0378", "\u1e9e", "\U00011935\U00011930"],
    "contractions": ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'Ve", "'LL", "'D", "'ſ"],
}


def random_cases(count, seed):
    rng = random.Random(seed)
    names = sorted(POOLS)
    out = []
    for _ in range(count):
        pieces = []
        for _ in range(rng.randint(3, 24)):
            pool = POOLS[rng.choice(names)]
            n = rng.choice([1, 1, 1, 2, 3, 4, 7, 12])
            pieces.append("".join(rng.choice(pool) for _ in range(n)))
            if rng.random() < 0.4:
                pieces.append(rng.choice([" ", " ", "\n", ""]))
        out.append("".join(pieces))
    return out


def special_cases(toks):
    """Each file's added tokens inside text: glued to words, spaced, doubled, cut short."""
    rng = random.Random(7)
    out = []
    for name, tok in toks.items():
        added = sorted(tok.get_added_tokens_decoder().items())
        contents = [t.content for _, t in added]
        picks = contents[:6] + rng.sample(contents, min(6, len(contents)))
        for c in picks:
            out.append(f"x{c}y {c} {c}{c}\n{c[:-1]} {c[1:]}")
    return out


def nfc_cases():
    rng = random.Random(11)
    starters = "aeiouAEOUcnszCNSZ\u00e9\u00c5\u0391\u03b9\u0415\u0438\u1100\u1161\u11a8\uac00\u0b47\u0b3e\u0cc6\u0cd5"
    marks = ("\u0300\u0301\u0302\u0303\u0304\u0306\u0307\u0308\u030a\u030c\u0316\u0323\u0327\u0328"
             "\u0334\u0338\u0345\u05b0\u0591\u064b\u093c\u094d\u0f71\u302a\u3099\u1dce\u0898\u08ca\u1df6\u1ac0"
             "\u1161\u11a8\u0b3e\u0cd5")
    cases = []
    for _ in range(300):
        s = ""
        for _ in range(rng.randint(1, 6)):
            s += rng.choice(starters) + "".join(rng.choice(marks) for _ in range(rng.randint(0, 4)))
        cases.append(s)
    # every character with a canonical decomposition, with its NFD form, 24 to a case
    chars = []
    for c in all_code_points():
        d = unicodedata.decomposition(chr(c))
        if d and not d.startswith("<"):
            chars.append(chr(c) + unicodedata.normalize("NFD", chr(c)))
    cases += ["".join(chars[i:i + 24]) for i in range(0, len(chars), 24)]
    return cases


def synthetic_tokenizers(corpus):
    """A tiny BPE trained on the corpus, and variants that use the tokenizer.json features the
    three real files leave out. Returns (base document, {name: top-level overrides}, cases)."""
    from tokenizers import decoders, models, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=420, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(corpus, trainer)
    base = json.loads(tok.to_str())
    vocab = base["model"]["vocab"]
    n = len(vocab)
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
    # unk: two byte tokens that no merge uses leave the vocabulary, "<unk>" joins.
    merged_chars = set("".join("".join(m if isinstance(m, list) else m.split(" ")) for m in base["model"]["merges"]))
    gone = [c for c in "~`|^@$%&" if c not in merged_chars][:2]
    assert len(gone) == 2, "every candidate byte appears in a merge"
    unk_vocab = {t: i for t, i in vocab.items() if t not in gone}
    unk_vocab = {t: i for i, t in enumerate(sorted(unk_vocab, key=lambda t: unk_vocab[t]))}
    unk_vocab["<unk>"] = len(unk_vocab)
    added = [
        {"content": "<mask>", "single_word": True, "lstrip": True, "rstrip": True, "normalized": False, "special": True},
        {"content": "e\u0301x", "single_word": False, "lstrip": False, "rstrip": False, "normalized": True, "special": False},
        {"content": "[SEP]", "single_word": False, "lstrip": False, "rstrip": True, "normalized": False, "special": True},
        {"content": "<s>", "single_word": False, "lstrip": True, "rstrip": False, "normalized": False, "special": True},
        {"content": "ab", "single_word": True, "lstrip": False, "rstrip": False, "normalized": False, "special": False},
        {"content": "abc", "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": False},
    ]
    next_id = n  # tokenizers' rule: a vocabulary token keeps its id, a new one takes the next
    for a in added:
        if a["content"] in vocab:
            a["id"] = vocab[a["content"]]
        else:
            a["id"] = next_id
            next_id += 1
    variants = {
        "gpt2_prefix_space": {"pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                                                "use_regex": True}},
        "split_behaviors": {"pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": r"\d"}, "behavior": "MergedWithPrevious", "invert": False},
            {"type": "Split", "pattern": {"String": "--"}, "behavior": "Removed", "invert": False},
            {"type": "Split", "pattern": {"Regex": "[aeiou]"}, "behavior": "MergedWithNext", "invert": False},
            {"type": "Split", "pattern": {"Regex": r"\s"}, "behavior": "Contiguous", "invert": True},
            {"type": "Split", "pattern": {"Regex": "x+"}, "behavior": "Isolated", "invert": True},
            {"type": "Split", "pattern": {"Regex": "q*"}, "behavior": "Isolated", "invert": False},
            byte_level]}},
        "added_flags": {"normalizer": {"type": "NFC"}, "added_tokens": added,
                        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                            {"type": "Split", "pattern": {"Regex": r"\s+|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+"},
                             "behavior": "Isolated", "invert": False}, byte_level]},
                        "model": {"ignore_merges": True}},
        "unk_fuse": {"model": {"vocab": unk_vocab, "unk_token": "<unk>", "fuse_unk": True}},
        "unk_nofuse": {"model": {"vocab": unk_vocab, "unk_token": "<unk>", "fuse_unk": False}},
        "merge_pairs": {"model": {"merges": [m.split(" ") if isinstance(m, str) else m for m in base["model"]["merges"]]}},
    }
    cases = [
        "Hello world, the answer is 42. The quick brown fox!",
        "  leading and trailing  ", "tabs\tand\nnewlines\r\n", "x", "xxx yxxz", "qqq aqb q",
        "a--b---c -- d", "123abc45 6 7", "aeiou bcd eat", "sea of seas", "naïve café e\u0301x éx",
        "<mask> my <mask>, a<mask> <mask>b x <mask>\t", "one[SEP]  two[SEP]\nthree", "x  <s>y <s>",
        "ab abc abcd xab ab. (ab) ab_", "~~ a~b ``~ ` || ^^|^ @$%& x@@y", "日本語 😀 ok", "",
    ] + CASES[:12]
    return base, variants, cases


def deep_update(doc, over):
    out = json.loads(json.dumps(doc))
    for k, v in over.items():
        if k == "model":
            out["model"].update(v)
        else:
            out[k] = v
    return out


def write_goldens(tok_dir, out_path):
    toks = {m: Tokenizer.from_file(os.path.join(tok_dir, m, "tokenizer.json")) for m in MODELS}
    corpus = CASES + special_cases(toks) + random_cases(100, seed=1234)
    expected = {}
    for m, tok in toks.items():
        ids = [tok.encode(t, add_special_tokens=False).ids for t in corpus]
        norm = tok.normalizer
        for t, i in zip(corpus, ids):  # round trip up to the normalizer, as the C++ test asserts
            want = norm.normalize_str(t) if norm is not None else t
            if tok.decode(i, skip_special_tokens=False) != want:
                sys.exit(f"{m}: decode(encode(text)) != normalize(text) for {t!r}")
        expected[m] = ids
    # Decode cases: special skipping, unknown ids, pieces of a multi-byte character.
    decode = {}
    for m, tok in toks.items():
        some = tok.encode("héllo 😀 世界", add_special_tokens=False).ids
        specials = [i for i, t in sorted(tok.get_added_tokens_decoder().items()) if t.special][:3]
        seqs = [some, specials + some + specials[:1], some[:-1], some[1:2], [tok.get_vocab_size() + 5] + some]
        decode[m] = [{"ids": s, "text": tok.decode(s, skip_special_tokens=False),
                      "text_skip_special": tok.decode(s, skip_special_tokens=True)} for s in seqs]
    base, variants, syn_cases = synthetic_tokenizers(CASES)
    synthetic = {"base": base, "cases": syn_cases, "variants": {}}
    for name, over in variants.items():
        tok = Tokenizer.from_str(json.dumps(deep_update(base, over)))
        synthetic["variants"][name] = {
            "overrides": over,
            "ids": [tok.encode(t, add_special_tokens=False).ids for t in syn_cases],
            "decoded": [tok.decode(tok.encode(t, add_special_tokens=False).ids, skip_special_tokens=False)
                        for t in syn_cases],
        }
    nfc = normalizers.NFC()
    nfc_in = nfc_cases()
    golden = {
        "source": "tools/make_tokenizer_goldens.py goldens",
        "tokenizers": tokenizers.__version__,
        "models": MODELS,
        "corpus": corpus,
        "expected_ids": expected,
        "decode": decode,
        "notes": "expected_ids[model][i] = tokenizers' ids of corpus[i]; nfc: [input, NFC output]; "
                 "synthetic: a tiny trained BPE (base) and variants (top-level overrides; model keys merged) "
                 "with ids and decoded text per case",
        "nfc": [[s, nfc.normalize_str(s)] for s in nfc_in],
        "synthetic": synthetic,
    }
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(golden, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {out_path}: {len(corpus)} texts, {len(nfc_in)} NFC cases, "
          f"{os.path.getsize(out_path)} bytes", file=sys.stderr)


# ----------------------------------------------------------------------------- bench peer

def run_bench(tok_dir, text_path, passes):
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    path = tok_dir if tok_dir.endswith(".json") else os.path.join(tok_dir, "tokenizer.json")
    tok = Tokenizer.from_file(path)
    with open(text_path, "rb") as f:
        text = f.read().decode("utf-8")
    mb = len(text.encode("utf-8")) / 1e6
    paragraphs = text.split("\n\n")  # the C++ side cuts the same way
    best_doc = best_par = 0.0
    ids = []
    for _ in range(passes):
        t0 = time.perf_counter()
        ids = tok.encode(text, add_special_tokens=False).ids
        best_doc = max(best_doc, mb / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        for p in paragraphs:
            tok.encode(p, add_special_tokens=False)
        best_par = max(best_par, mb / (time.perf_counter() - t0))
    h = 0xcbf29ce484222325
    for i in ids:  # FNV-1a over the ids as little-endian int32, as the C++ side hashes them
        for b in int(i).to_bytes(4, "little"):
            h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    print(json.dumps({"mb_per_s_document": best_doc, "mb_per_s_paragraphs": best_par, "tokens": len(ids),
                      "ids_fnv1a": f"{h:016x}", "tokenizers": tokenizers.__version__}))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("tables")
    t.add_argument("--out", default=os.path.join(REPO, "data", "tokenizer_unicode_tables.cpp"))
    g = sub.add_parser("goldens")
    g.add_argument("--tokenizers", default="/work/shared/data/tokenizers")
    g.add_argument("--out", default=os.path.join(REPO, "tests", "data", "tokenizer_golden", "golden.json"))
    b = sub.add_parser("bench")
    b.add_argument("--tokenizer", required=True)
    b.add_argument("--file", required=True)
    b.add_argument("--passes", type=int, default=5)
    a = ap.parse_args()
    if a.cmd == "tables":
        write_tables(a.out)
    elif a.cmd == "goldens":
        write_goldens(a.tokenizers, a.out)
    else:
        run_bench(a.tokenizer, a.file, a.passes)


if __name__ == "__main__":
    main()
