#!/usr/bin/env python3
"""Writes tests/rewards/data/cases.jsonl: labelled correctness cases with math-verify's verdict.

Each line: {"id", "category", "gold", "completion", "label", "math_verify"}.
  label        true when the completion's final answer should be graded equal to gold
               (equal answers in other forms), false for near-misses and for answers a
               reward must not pay (unboxed "last number", answer only inside <think>).
  math_verify  huggingface/Math-Verify's verdict: verify(parse(gold), parse(section)),
               gold parsed as "$gold$" (falling back to the raw text), the prediction
               parsed with the default extraction config from the answer section (text
               after the last "</think>", or the whole completion when there is none).

tests/rewards/test_correctness.cpp runs crucible's correctness reward on every case
and requires agreement with math_verify except for the ids it lists with an argument.

Usage: pip install math-verify==0.9.0; python3 tools/make_reward_cases.py
"""
import json
import os
import sys

from math_verify import parse, verify

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "rewards", "data", "cases.jsonl")

THINK = "<think>\nLet me work through the problem step by step.\nFirst I set up the equation, then I simplify.\n</think>\n\n"

# How a boxed answer X is written after the think block (rotated over the cases).
BOXED_TEMPLATES = [
    THINK + "The answer is $\\boxed{X}$.",
    THINK + "**Final Answer**\n\\[\n\\boxed{X}\n\\]",
    "Prefilled template: the completion starts inside the think block.\n</think>\nSo the result is \\boxed{X}.",
    THINK + "Putting it together, we get $\\boxed{X}$",
]

# gold, forms that must match, near-misses that must not. Every form is boxed.
TABLE = [
    ("integers", "42", ["42", "042", "+42", "42.0", "\\text{42}", "{42}", "42."], ["24", "41", "-42", "420", "4.2"]),
    ("integers", "-7", ["-7", "- 7", "-7.00", "(-7)", "\\left(-7\\right)"], ["7", "-17", "-\\frac{1}{7}"]),
    ("integers", "0", ["0", "-0", "0.0", "0.000"], ["1", "o"]),
    ("separators", "1000", ["1,000", "1{,}000", "1000", "1\\,000", "10^3", "1 000"], ["100", "10000", "1,001"]),
    ("separators", "1234567", ["1,234,567", "1{,}234{,}567", "1234567"], ["1,234,568", "123,4567"]),
    ("separators", "25000", ["25,000", "25{,}000", "2.5\\times 10^{4}", "2.5 \\cdot 10^4"], ["2500", "25,001"]),
    ("decimals", "0.5", ["\\frac{1}{2}", "1/2", ".5", "0.50", "\\dfrac12", "\\tfrac{1}{2}", "\\frac{2}{4}"],
     ["0.51", "0.05", "5", "\\frac{1}{3}"]),
    ("decimals", "2.75", ["\\frac{11}{4}", "2\\frac{3}{4}", "2.750", "11/4"], ["2.7", "2.8", "\\frac{4}{11}"]),
    ("decimals", "-1.25", ["-\\frac{5}{4}", "\\frac{-5}{4}", "-1\\frac{1}{4}", "-5/4"], ["1.25", "-1.2", "-\\frac{4}{5}"]),
    ("decimals", "3.14", ["3.14", "3.140", "\\frac{157}{50}"], ["\\pi", "3.1416", "3.15"]),
    ("fractions", "\\frac{1}{3}", ["\\frac13", "1/3", "\\dfrac{1}{3}", "\\frac{2}{6}", "0.3333333", "0.333333",
                                  "\\frac{-1}{-3}"], ["0.333", "0.33", "\\frac{1}{4}", "3", "\\frac{3}{1}"]),
    ("fractions", "\\frac{2}{3}", ["\\frac{4}{6}", "0.666667", "2/3", "\\frac{2}{3}"], ["0.67", "0.6667", "\\frac{3}{2}"]),
    ("fractions", "-\\frac{3}{4}", ["-0.75", "\\frac{-3}{4}", "\\frac{3}{-4}", "-3/4", "-\\dfrac{3}{4}"],
     ["\\frac{3}{4}", "-\\frac{4}{3}", "-0.7"]),
    ("fractions", "\\frac{7}{2}", ["3\\frac{1}{2}", "3.5", "7/2", "\\frac{14}{4}"], ["\\frac{2}{7}", "3\\frac{1}{3}", "3"]),
    ("fractions", "\\frac{11}{12}", ["\\frac{22}{24}", "11/12"], ["\\frac{12}{11}", "\\frac{11}{13}", "0.91"]),
    ("radicals", "2\\sqrt{2}", ["\\sqrt{8}", "2 \\sqrt 2", "\\sqrt{2}\\cdot 2", "2\\sqrt2", "\\frac{4}{\\sqrt{2}}"],
     ["\\sqrt{2}", "4\\sqrt{2}", "2\\sqrt{3}", "2.83"]),
    ("radicals", "\\frac{\\sqrt{3}}{2}", ["\\frac{\\sqrt3}{2}", "\\sqrt{3}/2", "\\sqrt{\\frac{3}{4}}", "\\frac{3}{2\\sqrt{3}}",
                                          "0.866025"], ["\\frac{\\sqrt{3}}{3}", "\\frac{\\sqrt{2}}{2}", "0.866", "\\sqrt{3}"]),
    ("radicals", "3+2\\sqrt{5}", ["2\\sqrt{5}+3", "3 + \\sqrt{20}", "\\sqrt{20}+3"], ["3-2\\sqrt{5}", "5\\sqrt{5}", "3+\\sqrt{5}"]),
    ("radicals", "\\sqrt[3]{2}", ["2^{1/3}", "2^{\\frac{1}{3}}", "\\sqrt[3]{2}"], ["\\sqrt{2}", "\\frac{2}{3}"]),
    ("radicals", "\\sqrt{2}", ["1.414214", "1.41421356", "\\frac{2}{\\sqrt{2}}"], ["1.414", "1.4142", "2"]),
    ("pi", "2\\pi", ["2 \\pi", "\\pi \\cdot 2", "\\frac{4\\pi}{2}", "6.283185", "\\pi+\\pi"], ["\\pi", "4\\pi", "6.28", "2"]),
    ("pi", "\\frac{\\pi}{4}", ["\\pi/4", "\\frac{1}{4}\\pi", "0.25\\pi", "\\frac{\\pi}{4}"], ["\\frac{\\pi}{2}", "45", "0.785"]),
    ("pi", "\\pi", ["\\pi", "3.141593"], ["3.14159", "3.14", "\\frac{22}{7}"]),
    ("pi", "12\\pi", ["12\\pi", "\\pi 12"], ["12", "6\\pi", "37.7"]),
    ("percent", "10\\%", ["10\\%", "10", "0.1", "10 \\%"], ["1\\%", "0.01", "100"]),
    ("percent", "25", ["25\\%", "25"], ["0.25", "2.5\\%", "75\\%"]),
    ("percent", "0.3", ["30\\%", "0.30", "\\frac{3}{10}"], ["3\\%", "30", "0.03"]),
    ("percent", "12.5", ["12.5", "\\frac{25}{2}"], ["0.125", "12"]),
    ("units", "5", ["5 \\text{ cm}", "5\\text{ apples}", "5\\mbox{ m}", "5 \\text{cm}^2", "5 \\text{ units}", "5\\ \\text{ft}"],
     ["50 \\text{ cm}", "6\\text{ cm}", "0.5 \\text{ m}"]),
    ("units", "18.90", ["\\$18.90", "18.9", "\\$ 18.90", "18.90 \\text{ dollars}"], ["18.09", "\\$19.80", "189"]),
    ("units", "90", ["90^\\circ", "90^{\\circ}", "90\\text{ degrees}", "90"], ["\\frac{\\pi}{2}", "45^\\circ", "180"]),
    ("latex", "\\frac{9}{4}", ["\\left(\\frac{9}{4}\\right)", "\\displaystyle\\frac{9}{4}", "\\frac{9}{4}", "\\dfrac{9}{4}",
                               "2.25", "\\left. \\frac{9}{4} \\right."], ["\\frac{4}{9}", "\\frac{9}{5}", "2.2"]),
    ("latex", "6", ["2\\cdot 3", "2\\times 3", "\\frac{12}{2}", "\\sqrt{36}", "3!", "\\binom{4}{2}", "|-6|", "2 \\times 3"],
     ["5", "2\\cdot 4", "\\sqrt{6}", "4!"]),
    ("latex", "1024", ["2^{10}", "2^10", "4^5", "1,024", "1024"], ["2^{11}", "512", "1023"]),
    ("latex", "20", ["\\frac{5!}{3!}", "\\binom{6}{3}", "4\\cdot5"], ["\\binom{6}{2}", "5!"]),
    ("expressions", "x^2+2x+1", ["(x+1)^2", "x^2 + 2x + 1", "1+2x+x^2", "(1+x)(x+1)", "x(x+2)+1"],
     ["(x-1)^2", "x^2+1", "(x+1)^3", "x^2+2x+2"]),
    ("expressions", "\\frac{x}{2}", ["\\frac{1}{2}x", "0.5x", "x/2", "\\frac{2x}{4}"], ["2x", "\\frac{2}{x}", "\\frac{x}{3}"]),
    ("expressions", "3x-7", ["-7+3x", "3x - 7", "3(x-2)-1", "-(7-3x)"], ["3x+7", "7-3x", "3x-6"]),
    ("expressions", "\\frac{1}{x+1}", ["(x+1)^{-1}", "\\frac{2}{2x+2}", "1/(x+1)"], ["\\frac{1}{x-1}", "\\frac{1}{x}+1", "x+1"]),
    ("expressions", "a^2-b^2", ["(a-b)(a+b)", "(a+b)(a-b)", "-b^2+a^2"], ["(a-b)^2", "a^2+b^2", "b^2-a^2"]),
    ("expressions", "2\\sin x\\cos x", ["\\sin(2x)", "\\sin 2x", "2\\cos x \\sin x"], ["\\sin x", "\\cos 2x", "2\\sin x"]),
    ("expressions", "e^{2}", ["e^2", "e \\cdot e", "\\exp(2)"], ["2e", "e^3", "7.4"]),
    ("expressions", "\\ln 6", ["\\ln 2+\\ln 3", "\\ln(6)", "\\log_e 6"], ["\\ln 5", "6", "\\log(6)"]),
    ("expressions", "2", ["\\log 100", "\\log_{10} 100", "\\log_3 9"], ["\\ln 100", "\\log_2 100"]),
    ("expressions", "\\frac{n(n+1)}{2}", ["\\frac{n^2+n}{2}", "\\frac{1}{2}n(n+1)", "\\binom{n+1}{2}"], ["\\frac{n(n-1)}{2}", "n^2", "\\frac{n(n+1)}{3}"]),
    ("expressions", "x_1+x_2", ["x_2+x_1", "x_{1}+x_{2}"], ["x_1-x_2", "2x_1"]),
    ("equations", "5", ["x=5", "x = 5", "n=5", "x=\\frac{10}{2}"], ["x=6", "x=-5"]),
    ("equations", "x=2", ["2", "x=2", "x = \\frac{4}{2}"], ["y=2", "x=3", "2x=4"]),
    ("equations", "y=2x+1", ["y=1+2x", "y = 2x + 1", "2x+1=y"], ["y=2x-1", "y=x+1", "x=2y+1"]),
    ("equations", "2x+3y=6", ["3y+2x=6", "2x + 3y - 6 = 0", "4x+6y=12"], ["2x+3y=7", "2x-3y=6"]),
    ("inequalities", "x>2", ["x > 2", "2<x", "(2,\\infty)"], ["x<2", "x\\ge 2", "[2,\\infty)", "x>3"]),
    ("inequalities", "1<x\\le 4", ["1 < x \\leq 4", "(1,4]", "4\\ge x>1"], ["[1,4]", "(1,4)", "1<x<4"]),
    ("intervals", "[-1,3)", ["[-1, 3)", "\\left[-1,3\\right)"], ["(-1,3)", "[-1,3]", "[1,3)"]),
    ("intervals", "(-\\infty,5]", ["(-\\infty, 5]", "(-\\infty,5]"], ["(-\\infty,5)", "(5,\\infty)", "(-\\infty,4]"]),
    ("intervals", "(-\\infty,-1)\\cup(2,\\infty)", ["(2,\\infty)\\cup(-\\infty,-1)", "(-\\infty,-1) \\cup (2, \\infty)"],
     ["(-1,2)", "(-\\infty,-1]\\cup(2,\\infty)", "(-\\infty,1)\\cup(2,\\infty)"]),
    ("tuples", "(3,-4)", ["(3, -4)", "\\left(3,-4\\right)", "(3,-4)"], ["(-4,3)", "(3,4)", "(4,-3)"]),
    ("tuples", "(1,2,3)", ["(1, 2, 3)", "(1,2,3)"], ["(1,3,2)", "(1,2)", "(1,2,4)"]),
    ("tuples", "(\\frac{1}{2}, 0)", ["(0.5, 0)", "\\left(\\frac12,0\\right)"], ["(0, \\frac12)", "(2, 0)"]),
    ("sets", "1,2", ["1, 2", "2, 1", "\\{1,2\\}", "\\{2, 1\\}", "x=1, x=2"], ["1", "1,2,3", "1,3"]),
    ("sets", "-3, 5", ["5,-3", "-3 \\text{ and } 5", "\\{-3,5\\}"], ["3,-5", "-3", "5"]),
    ("sets", "\\frac{-1\\pm\\sqrt{5}}{2}", ["\\frac{-1+\\sqrt{5}}{2}, \\frac{-1-\\sqrt{5}}{2}",
                                            "\\frac{-1-\\sqrt5}{2},\\frac{-1+\\sqrt5}{2}", "\\frac{-1\\pm\\sqrt{5}}{2}"],
     ["\\frac{-1+\\sqrt{5}}{2}", "\\frac{1\\pm\\sqrt{5}}{2}"]),
    ("sets", "\\pm 3", ["3, -3", "-3,3", "\\pm3"], ["3", "\\pm 9"]),
    ("matrices", "\\begin{pmatrix} 1 \\\\ -2 \\end{pmatrix}", ["\\begin{pmatrix}1\\\\-2\\end{pmatrix}",
                                                               "\\begin{pmatrix} 1 \\\\ -2 \\end{pmatrix}"],
     ["\\begin{pmatrix} -2 \\\\ 1 \\end{pmatrix}", "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}"]),
    ("matrices", "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", ["\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}",
                                                                      "\\begin{bmatrix} 1 & 2 \\\\ 3 & 4 \\end{bmatrix}"],
     ["\\begin{pmatrix} 1 & 3 \\\\ 2 & 4 \\end{pmatrix}", "\\begin{pmatrix} 1 & 2 \\\\ 3 & 5 \\end{pmatrix}"]),
    ("text", "\\text{even}", ["\\text{even}", "\\text{Even}", "even", "\\textbf{even}"], ["\\text{odd}", "\\text{neither}"]),
    ("text", "\\text{(B)}", ["B", "(B)", "\\text{B}", "\\textbf{(B)}"], ["A", "(C)", "\\text{(D)}"]),
    ("text", "\\text{Monday}", ["\\text{monday}", "\\text{Monday}"], ["\\text{Tuesday}", "\\text{Mon}"]),
    ("text", "\\text{dog}", ["\\text{dog}"], ["\\text{god}"]),
    ("big", "18446744073709551616", ["2^{64}", "18,446,744,073,709,551,616"], ["2^{63}", "18446744073709551615"]),
    ("big", "1000000007", ["10^9+7", "1,000,000,007"], ["10^9", "1000000009"]),
    ("small", "0.000001", ["10^{-6}", "\\frac{1}{1000000}", "0.000001"], ["0.00001", "10^{-5}"]),
    ("small", "0.0000001", ["10^{-7}", "0.0000001"], ["0.0000002", "0.0000003"]),
    ("decimals", "1234567.8901", ["1234567.8901", "1,234,567.8901"], ["1234567.89012", "1234567.89"]),
    ("infinity", "\\infty", ["\\infty", "+\\infty"], ["-\\infty", "10^{100}"]),
    ("mixed", "\\frac{1}{2}", ["\\frac 1 2", "2^{-1}", "50\\%", "\\frac{1}{2}."], ["2", "\\frac{1}{2}x", "5\\%"]),
    ("mixed", "3", ["3.0000001", "\\sqrt{9}", "\\frac{6}{2}", "x=3"], ["3.00001", "\\sqrt{3}", "x=3, y=4"]),
    ("mixed", "\\sqrt{x}", ["x^{1/2}", "x^{0.5}", "\\sqrt{x}"], ["x^2", "\\sqrt{2x}"]),
    ("mixed", "|x|", ["\\sqrt{x^2}", "|-x|"], ["x", "-x"]),
    ("mixed", "x^2", ["x^{2}", "x\\cdot x", "xx"], ["2x", "x^3"]),
    ("mixed", "\\frac{1}{4}", ["25\\%", "0.25"], ["4", "0.2"]),
    ("mixed", "1", ["\\sin^2 x+\\cos^2 x", "\\frac{x}{x}"], ["\\sin x", "0"]),
    ("mixed", "(0,1)", ["0, 1", "(0, 1)"], ["(1,0)", "[0,1]"]),
    ("mixed", "\\{0,1\\}", ["(1,0)", "1, 0", "\\{1, 0\\}"], ["\\{0\\}", "\\{0,2\\}"]),
    ("mixed", "[0,1]", ["[0, 1]"], ["0 \\le x \\le 1", "(0,1)"]),
    ("mixed", "y=x^2", ["x^2", "y = x \\cdot x"], ["y=x^3", "x=y^2"]),
    ("mixed", "\\frac{5}{3}", ["1.666667", "1\\frac{2}{3}", "\\frac{10}{6}"], ["1.67", "1.6667", "\\frac{3}{5}"]),
    ("mixed", "5\\sqrt{3}", ["8.660254", "\\sqrt{75}", "\\frac{15}{\\sqrt{3}}"], ["8.66", "5\\sqrt{2}"]),
    ("mixed", "\\frac{\\sqrt{6}}{3}", ["\\sqrt{\\frac{2}{3}}", "\\frac{2}{\\sqrt{6}}"], ["\\frac{\\sqrt{6}}{2}", "\\sqrt{\\frac{3}{2}}"]),
    ("mixed", "e", ["2.718282", "e^1", "e"], ["2.72", "e^2"]),
    ("mixed", "\\emptyset", ["\\varnothing", "\\{\\}", "\\emptyset"], ["0", "\\{0\\}"]),
    ("mixed", "x+y", ["y+x", "x + y"], ["xy", "x-y"]),
    ("mixed", "2", ["\\sqrt{4}", "\\frac{4}{2}", "1+1"], ["-2", "\\pm 2", "\\sqrt{2}"]),
    ("mixed", "8", ["2^3", "2^{3}", "\\sqrt[3]{512}"], ["3^2", "2^{4}"]),
    ("mixed", "\\sqrt{2}+\\sqrt{3}", ["\\sqrt{3}+\\sqrt{2}", "\\sqrt{5+2\\sqrt{6}}"], ["\\sqrt{5}", "\\sqrt{2}-\\sqrt{3}"]),
    ("mixed", "\\text{No}", ["\\text{no}", "No", "\\text{NO}"], ["\\text{Yes}", "\\text{Not}"]),
    ("mixed", "(3,4)", ["(3, 4)", "\\left( 3, 4 \\right)"], ["(4,3)", "(3,5)", "[3,4]"]),
    ("mixed", "-\\infty", ["-\\infty"], ["\\infty"]),
    ("mixed", "\\frac{a+b}{2}", ["\\frac{b+a}{2}", "\\frac{a}{2}+\\frac{b}{2}", "0.5(a+b)"], ["\\frac{a-b}{2}", "a+b", "\\frac{ab}{2}"]),
    ("mixed", "\\frac{1}{\\sqrt{2}}", ["\\frac{\\sqrt{2}}{2}", "\\frac{\\sqrt2}2", "2^{-1/2}", "0.707107"], ["\\sqrt{2}", "0.7071"]),
    ("mixed", "120", ["5!", "\\frac{6!}{6}", "2 \\cdot 60"], ["6!", "4!"]),
    ("mixed", "x \\in [2,5]", ["[2,5]", "x\\in[2,5]"], ["[2,5)", "(2,5)"]),
]

# Whole completions for extraction behaviour: (category, gold, completion, label).
EXTRACTION = [
    ("extract", "7", THINK + "We could try \\boxed{5} but no.\nThe answer is $\\boxed{7}$.", True),
    ("extract", "7", THINK + "First guess \\boxed{7}, corrected: \\boxed{8}.", False),
    ("extract", "7", "<think>\nMaybe the answer is \\boxed{7}.\n</think>\n\nI am not sure.", False),
    ("extract", "7", "<think>\nThe answer is \\boxed{8}.\n</think>\n\nThe answer is $\\boxed{7}$.", True),
    ("extract", "7", "<think>\nSo we get 7.\n</think>\n\nThe final answer is $7$.", True),
    ("extract", "7", "<think>\nSo we get 7.\n</think>\n\nAnswer: 7", True),
    ("extract", "7", "<think>\nSo we get 7.\n</think>\n\n**Answer:** 7", True),
    ("extract", "7", "<think>\nSo we get 7.\n</think>\n\nThe final answer is 7 apples.", True),
    ("extract", "7", "<think>\nSo we get 7.\n</think>\n\nThe final answer is 8.", False),
    ("extract", "\\frac{1}{2}", "<think>\nhalf\n</think>\n\nThe answer is $\\frac{1}{2}$.", True),
    ("extract", "\\frac{1}{2}", "<think>\nhalf\n</think>\n\nAnswer: \\(\\frac{1}{2}\\)", True),
    ("extract", "\\frac{1}{2}", "<think>\nhalf\n</think>\n\nThe answer is $\\boxed{\\frac{1}{2}}$", True),
    ("extract", "\\frac{1}{2}", "<think>\nhalf\n</think>\n\nThe answer is $\\boxed{\\frac{1}{3}}$", False),
    ("extract", "12", "<think>\nI count them.\n</think>\n\nThere are 12 of them.", False),
    ("extract", "12", "<think>\nI count them.\n</think>\n\n12", False),
    ("extract", "12", "I count them and box it: \\boxed{12}", False),
    ("extract", "12", "<think>\nI count them.\n</think>\n\n\\boxed{12}", True),
    ("extract", "12", "<think>\nI count them.\n</think>\n\n\\boxed{  12  }", True),
    ("extract", "12", "<think>\nI count them.\n</think>\n\n\\boxed{12", False),
    ("extract", "12", "<think>\nI count them.\n</think>\n\n\\boxed{}", False),
    ("extract", "\\{1,2\\}", "<think>\nsolve\n</think>\n\nThe solutions are $\\boxed{\\{1, 2\\}}$.", True),
    ("extract", "3", "<think>\nx is 3\n</think>\n\nThe answer is $x = 3$.", True),
    ("extract", "3", "<think>\nx is 3\n</think>\n\nThe answer is $x = 3$ or $x = 4$.", False),
    ("extract", "3, 4", "<think>\nx is 3 or 4\n</think>\n\nThe answer is $x = 3$ or $x = 4$.", True),
    ("extract", "100", "<think>\ncompute\n</think>\n\n最终答案是 $\\boxed{100}$。", True),
    ("extract", "100", "<think>\n计算\n</think>\n\n答案是 100", True),
    ("extract", "\\frac{a}{b}", "<think>\ngeneral\n</think>\n\nThe answer is \\boxed{\\frac{a}{b}}.", True),
    ("extract", "5", "<think>\nnested\n</think>\n\n\\boxed{\\boxed{5}}", True),
    ("extract", "-2", "<think>\nneg\n</think>\n\nSo $\\boxed{-2}$ is it; double check \\fbox{-2}.", True),
    ("extract", "2", "<think>\nreasoning\n</think>\n\\boxed{\\text{2}}", True),
]


def section(completion: str) -> str:
    close = completion.rfind("</think>")
    return completion if close < 0 else completion[close + len("</think>"):]


def math_verify_verdict(gold: str, completion: str) -> bool:
    g = parse("$" + gold + "$")
    if not g:
        g = parse(gold)
    p = parse(section(completion))
    return bool(verify(g, p))


def main() -> int:
    cases = []
    t = 0
    for category, gold, good, bad in TABLE:
        for label, forms in ((True, good), (False, bad)):
            for form in forms:
                completion = BOXED_TEMPLATES[t % len(BOXED_TEMPLATES)].replace("X", form)
                t += 1
                cases.append((category, gold, completion, label))
    cases.extend(EXTRACTION)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    n_agree_label = 0
    per_category = {}
    with open(OUT, "w", encoding="utf-8") as f:
        for category, gold, completion, label in cases:
            mv = math_verify_verdict(gold, completion)
            n_agree_label += mv == label
            per_category[category] = per_category.get(category, 0) + 1
            f.write(json.dumps({"id": f"{category}-{per_category[category]:02d}", "category": category, "gold": gold,
                                "completion": completion, "label": label, "math_verify": mv},
                               ensure_ascii=False) + "\n")
    print(f"wrote {len(cases)} cases to {os.path.relpath(OUT)}; math-verify agrees with the label on {n_agree_label}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
