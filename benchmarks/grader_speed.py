"""Grader speed and agreement: mathjax.grader vs Hugging Face Math-Verify.

Builds a labelled set of realistic outputs from GSM8K/MATH test data:

* correct: the real reference solutions (MATH ``\\boxed{}``, GSM8K ``#### N``),
  and the same solutions ending in the Xwin-Math line ``The answer is: X.``,
  a Minerva ``Final Answer:`` line or a box, where X is the gold answer
  rewritten in an equal form (``\\frac{3}{4}`` -> ``0.75``, ``1234`` ->
  ``1,234``, ``18`` -> ``\\$18.00``, ``x = 5``, reordered answer lists,
  ``2\\sqrt3`` -> ``\\sqrt{12}``);
* incorrect: the same solutions ending in a wrong answer: another question's
  (different) answer, an off-by-one or sign-flipped number, a rounded decimal
  of a non-terminating value (``\\frac13`` -> ``0.33``, ``\\sqrt2`` -> ``1.414``),
  swapped tuple coordinates, a flipped interval bracket;

plus the hand-labelled pairs in ``tests/fixtures/grader/tricky_pairs.jsonl``.
Labels come from how each item was built, never from either grader.

Both graders run in this one process, one item at a time, end to end (gold
and output parsed each time; our per-process answer cache is cleared first,
and a "no cache" run clears it before every item). Prints answers per second,
the speed ratio and each grader's agreement with the labels.

    python benchmarks/grader_speed.py [--limit 1000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import sys
import time
from fractions import Fraction

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from mathjax import grader  # noqa: E402
from mathjax.grader import equiv, keys  # noqa: E402
from mathjax.grader.normalize import last_boxed  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

_INT = re.compile(r"^-?\d+$")
_DEC = re.compile(r"^-?\d*\.\d+$")
_FRAC = re.compile(r"^(-?)\\[dt]?frac\{(\d+)\}\{(\d+)\}$")
_SURD = re.compile(r"^(\d+)\\sqrt\{(\d+)\}$")
_TUPLE2 = re.compile(r"^\(([^,()]+),([^,()]+)\)$")
_INTERVAL = re.compile(r"^\[([^,\[\]()]+),([^,\[\]()]+)\]$")
_THOUSANDS = re.compile(r"^-?\d{1,3}(?:,\d{3})+$")  # "58,500" is a number, not a list to reorder
_PLAIN_LIST = re.compile(r"^[^()\[\]{}\\]+(?:,[^()\[\]{}\\]+)+$")


def simple_value(s: str) -> Fraction | None:
    """Value of an integer, decimal or \\frac{a}{b} string (independent of the grader)."""
    s = s.strip().replace(" ", "")
    if _INT.match(s) or _DEC.match(s):
        return Fraction(s)
    m = _FRAC.match(s)
    if m and int(m.group(3)):
        v = Fraction(int(m.group(2)), int(m.group(3)))
        return -v if m.group(1) else v
    return None


def terminating(q: Fraction) -> bool:
    d = q.denominator
    for p in (2, 5):
        while d % p == 0:
            d //= p
    return d == 1


def decimal_str(q: Fraction) -> str:
    sign = "-" if q < 0 else ""
    q = abs(q)
    whole, rest = divmod(q.numerator, q.denominator)
    digits = ""
    while rest and len(digits) < 30:
        rest *= 10
        digits += str(rest // q.denominator)
        rest %= q.denominator
    return f"{sign}{whole}" + (f".{digits}" if digits else "")


def equal_rewrites(gold: str, rng: random.Random) -> list[tuple[str, str]]:
    """(kind, answer) pairs mathematically equal to gold."""
    g = gold.strip()
    out = []
    v = simple_value(g)
    if v is not None:
        if _FRAC.match(g.replace(" ", "")) and terminating(v):
            out.append(("frac->decimal", decimal_str(v)))
        if _DEC.match(g) and v.denominator != 1:
            out.append(("decimal->frac", f"\\frac{{{v.numerator}}}{{{v.denominator}}}"))
        if v.denominator == 1 and abs(v) >= 1000:
            out.append(("thousands", f"{int(v):,}"))
        if v.denominator == 1 and abs(v) < 1000:
            out.append(("x=", f"x = {g}"))
            out.append(("trailing-zeros", f"{g}.00"))
    m = _SURD.match(g)
    if m:
        a, b = int(m.group(1)), int(m.group(2))
        out.append(("surd", f"\\sqrt{{{a * a * b}}}"))
    if "\\dfrac" in g:
        out.append(("dfrac", g.replace("\\dfrac", "\\frac")))
    if _PLAIN_LIST.match(g) and "=" not in g and "<" not in g and not _THOUSANDS.match(g.replace(" ", "")):
        items = [x.strip() for x in g.split(",")]
        if len(set(items)) == len(items):
            rng.shuffle(items)
            out.append(("list-reorder", ", ".join(reversed(items))))
    if not out:
        out.append(("same", g))
    return out


def wrong_rewrites(gold: str, other: str | None) -> list[tuple[str, str]]:
    """(kind, answer) pairs certainly different from gold."""
    g = gold.strip()
    out = []
    v = simple_value(g)
    if v is not None:
        if v.denominator == 1:
            out.append(("off-by-one", str(int(v) + 1)))
        else:
            out.append(("perturbed-fraction", f"\\frac{{{v.numerator + 1}}}{{{v.denominator}}}"))
            if not terminating(v):
                out.append(("rounded-decimal", f"{float(v):.2f}"))
        if v != 0:
            out.append(("sign-flip", str(-v) if v.denominator == 1 else f"-\\frac{{{v.numerator}}}{{{v.denominator}}}".replace("--", "")))
    m = re.fullmatch(r"\\sqrt\{(\d+)\}", g)
    if m and math.isqrt(int(m.group(1))) ** 2 != int(m.group(1)):
        out.append(("rounded-surd", f"{math.sqrt(int(m.group(1))):.3f}"))
    if re.fullmatch(r"(\d+)\\pi", g):
        out.append(("rounded-pi", f"{int(g[:-3]) * math.pi:.2f}"))
    m = _TUPLE2.match(g.replace(" ", ""))
    if m:
        a, b = simple_value(m.group(1)), simple_value(m.group(2))
        if a is not None and b is not None and a != b:
            out.append(("tuple-swap", f"({m.group(2)}, {m.group(1)})"))
    m = _INTERVAL.match(g.replace(" ", ""))
    if m:
        out.append(("interval-bracket", f"({m.group(1)}, {m.group(2)}]"))
    if other is not None:
        vo = simple_value(other)
        if v is not None and vo is not None and vo != v:
            out.append(("swapped", other))
    return out


def body_of_math(solution: str) -> str:
    """The solution with its final box unwrapped (so the appended line decides)."""
    i = solution.rfind("\\boxed")
    if i < 0:
        return solution
    inner = last_boxed(solution) or ""
    j = solution.find("{", i)
    end = j + 1 + len(inner) + 1
    return solution[:i] + inner + solution[end:]


def ending(answer: str, style: int) -> str:
    if style == 0:
        return f"\nThe answer is: {answer}."
    if style == 1:
        return f"\nThe answer is: $\\boxed{{{answer}}}$."
    if style == 2:
        return f"\nFinal Answer: The final answer is ${answer}$. I hope it is correct."
    return f"\nTherefore, the answer is $\\boxed{{{answer}}}$."


def build_items(math_path: str, gsm_path: str, limit: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    items = []
    if os.path.exists(math_path):
        rows = [json.loads(line) for line in open(math_path)]
        rng.shuffle(rows)
        rows = rows[:limit]
        golds = [last_boxed(r["solution"]) for r in rows]
        for i, (r, g) in enumerate(zip(rows, golds)):
            if not g:
                continue
            sol = r["solution"]
            if sol.count("\\boxed") == 1:
                # (Solutions with several boxes, "$\\boxed{3}$ or $\\boxed{2/5}$", have no single label.)
                items.append({"text": sol, "gold": g, "label": True, "kind": "math/reference"})
            body = body_of_math(sol)
            kind, ans = rng.choice(equal_rewrites(g, rng))
            items.append({"text": body + ending(ans, rng.randrange(4)), "gold": g, "label": True, "kind": f"math/{kind}"})
            wr = wrong_rewrites(g, golds[(i + 1) % len(golds)])
            if wr:
                kind, ans = rng.choice(wr)
                items.append({"text": body + ending(ans, rng.randrange(4)), "gold": g, "label": False, "kind": f"math/{kind}"})
    if os.path.exists(gsm_path):
        rows = [json.loads(line) for line in open(gsm_path)]
        rng.shuffle(rows)
        rows = rows[:limit]
        golds = [r["answer"].split("####")[-1].strip().replace(",", "") for r in rows]
        for i, (r, g) in enumerate(zip(rows, golds)):
            sol = r["answer"]
            body = re.sub(r"<<[^>]*>>", "", sol.split("####")[0]).rstrip()
            items.append({"text": sol, "gold": g, "label": True, "kind": "gsm8k/reference"})
            v = int(Fraction(g)) if simple_value(g) is not None and Fraction(g).denominator == 1 else None
            forms = [("same", g), ("dollars", f"\\${g}.00"), ("units", f"{g} dollars")]
            if v is not None and abs(v) >= 1000:
                forms.append(("thousands", f"{v:,}"))
            kind, ans = rng.choice(forms)
            items.append({"text": body + ending(ans, rng.randrange(4)), "gold": g, "label": True, "kind": f"gsm8k/{kind}"})
            wr = wrong_rewrites(g, golds[(i + 1) % len(golds)])
            if wr:
                kind, ans = rng.choice(wr)
                items.append({"text": body + ending(ans, rng.randrange(4)), "gold": g, "label": False, "kind": f"gsm8k/{kind}"})
    return items


def tricky_items(path: str) -> list[dict]:
    if not os.path.exists(path):
        return []
    out = []
    for line in open(path):
        r = json.loads(line)
        out.append({"pred": r["pred"], "gold": r["gold"], "label": r["equal"], "kind": f"tricky/{r['category']}"})
    return out


# ---- the two graders -----------------------------------------------------------


def ours_text(item) -> bool:
    return grader.grade(item["text"], item["gold"])


def ours_pair(item) -> bool:
    return grader.is_equiv(item["pred"], item["gold"])


def _clear_caches() -> None:
    equiv.analyze.cache_clear()
    keys.answer_key.cache_clear()


def make_math_verify():
    try:
        from math_verify import parse, verify
    except ImportError:
        return None

    def mv_text(item) -> bool:
        gold = parse(f"${item['gold']}$")
        return bool(verify(gold, parse(item["text"])))

    def mv_pair(item) -> bool:
        return bool(verify(parse(f"${item['gold']}$"), parse(f"${item['pred']}$")))

    return mv_text, mv_pair


def run(fn, items, clear_each: bool = False) -> tuple[float, list[bool]]:
    _clear_caches()
    out = []
    t0 = time.perf_counter()
    for it in items:
        if clear_each:
            _clear_caches()
        try:
            out.append(bool(fn(it)))
        except Exception:
            out.append(False)
    return time.perf_counter() - t0, out


def agreement(preds: list[bool], items: list[dict]) -> dict:
    n = len(items)
    tp = sum(p and it["label"] for p, it in zip(preds, items))
    tn = sum((not p) and (not it["label"]) for p, it in zip(preds, items))
    return {
        "agreement": (tp + tn) / n if n else 0.0,
        "false_accepts": sum(p and not it["label"] for p, it in zip(preds, items)),
        "false_rejects": sum((not p) and it["label"] for p, it in zip(preds, items)),
        "n": n,
    }


def per_kind(preds, items) -> dict:
    kinds: dict[str, list[int]] = {}
    for p, it in zip(preds, items):
        k = kinds.setdefault(it["kind"], [0, 0])
        k[0] += int(p == it["label"])
        k[1] += 1
    return {k: f"{a}/{n}" for k, (a, n) in sorted(kinds.items())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--math", default=os.path.join(ROOT, "..", "shared", "data", "math", "test.jsonl"))
    ap.add_argument("--gsm8k", default=os.path.join(ROOT, "..", "shared", "data", "gsm8k", "test.jsonl"))
    ap.add_argument("--tricky", default=os.path.join(ROOT, "tests", "fixtures", "grader", "tricky_pairs.jsonl"))
    ap.add_argument("--limit", type=int, default=1000, help="questions per dataset")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no_math_verify", action="store_true")
    ap.add_argument("--show_disagreements", type=int, default=10)
    ap.add_argument("--json", default=None, help="write the figures here")
    args = ap.parse_args()

    texts = build_items(args.math, args.gsm8k, args.limit, args.seed)
    pairs = tricky_items(args.tricky)
    print(f"labelled outputs: {len(texts)} ({sum(i['label'] for i in texts)} correct); tricky pairs: {len(pairs)}")
    grader.is_equiv("1", "1")  # warm imports on both sides before timing
    mv = None if args.no_math_verify else make_math_verify()
    if mv:
        mv[0]({"text": "\\boxed{1}", "gold": "1"})

    results = {}
    t, ours = run(ours_text, texts)
    t_nc, _ = run(ours_text, texts, clear_each=True)
    results["ours"] = {"seconds": t, "per_second": len(texts) / t, "per_second_no_cache": len(texts) / t_nc}
    results["ours"].update(agreement(ours, texts))
    tp, ours_p = run(ours_pair, pairs)
    results["ours"]["tricky"] = agreement(ours_p, pairs)
    if mv:
        tm, mvs = run(mv[0], texts)
        results["math_verify"] = {"seconds": tm, "per_second": len(texts) / tm}
        results["math_verify"].update(agreement(mvs, texts))
        _, mv_p = run(mv[1], pairs)
        results["math_verify"]["tricky"] = agreement(mv_p, pairs)
        results["speed_ratio"] = results["ours"]["per_second"] / results["math_verify"]["per_second"]
        results["speed_ratio_no_cache"] = results["ours"]["per_second_no_cache"] / results["math_verify"]["per_second"]

    print(f"\n{'grader':<14}{'answers/s':>12}{'agreement':>12}{'false acc':>11}{'false rej':>11}{'tricky agr':>12}")
    for name in ("ours", "math_verify"):
        if name in results:
            r = results[name]
            print(
                f"{name:<14}{r['per_second']:>12.0f}{100 * r['agreement']:>11.2f}%{r['false_accepts']:>11}"
                f"{r['false_rejects']:>11}{100 * r['tricky']['agreement']:>11.2f}%"
            )
    print(f"ours without answer cache: {results['ours']['per_second_no_cache']:.0f} answers/s")
    if "speed_ratio" in results:
        print(f"speed ratio ours / Math-Verify: {results['speed_ratio']:.1f}x "
              f"({results['speed_ratio_no_cache']:.1f}x without our cache)")
        print("\nper kind (ours | Math-Verify):")
        ko, km = per_kind(ours, texts), per_kind(mvs, texts)
        for k in ko:
            print(f"  {k:<34}{ko[k]:>12} | {km[k]}")
        ko, km = per_kind(ours_p, pairs), per_kind(mv_p, pairs)
        for k in ko:
            print(f"  {k:<34}{ko[k]:>12} | {km[k]}")
    if args.show_disagreements:
        bad = [(it, p) for it, p in zip(texts + pairs, ours + ours_p) if p != it["label"]]
        print(f"\nour disagreements with the labels: {len(bad)}")
        for it, p in bad[: args.show_disagreements]:
            tail = it.get("text", it.get("pred", ""))[-120:].replace("\n", " ")
            print(f"  [{it['kind']}] label={it['label']} gold={it['gold']!r} ...{tail!r}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
