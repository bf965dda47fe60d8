"""Grader agreement on a peer's labelled cases: mathjax.grader vs the labels (and Math-Verify).

Math-Verify (Hugging Face) ships labelled (gold, model output, expected) cases,
many of them answers written by real models on Numina / OpenThoughts / MATH
problems. This script reads them straight from a Math-Verify checkout's
``tests/*.py`` (parsed with ``ast``, never executed, never copied into this
project), grades each output against its gold as a user would
(``grader.grade(output, gold)``: extraction from the output, then equivalence),
and prints the agreement with the labels per source file, the wrong "equal"
verdicts, and each disagreement.

Labels where this project follows a documented, different policy (README,
"Answer equivalence") are listed in ``POLICY`` with the reason; they are shown
apart, not counted as agreement or disagreement. Everything else counts.

    python benchmarks/grader_agreement.py --peer_tests=/path/to/Math-Verify/tests [--json out.json]

Use ``--files`` to restrict the sources (default: the real-output sets
``test_numina_cases.py``, ``test_open_thoughts.py`` and ``test_all.py``).
"""

from __future__ import annotations

import argparse
import ast
import collections
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from mathjax import grader  # noqa: E402

DEFAULT_FILES = ("test_numina_cases.py", "test_open_thoughts.py", "test_all.py")

# (gold, output) -> why this project's verdict differs from the peer's label on purpose.
POLICY: dict[tuple[str, str], str] = {
    ("1000.99", "1000,99"): "decimal comma: '1000,99' is read as a list (or 100099), never as 1000.99",
    ("1,22", "1.22"): "decimal comma: '1,22' is a list of two numbers",
    ("0,111", "0.111"): "decimal comma: '0,111' is a list (or 111)",
    ("1 - \\frac{1}{\\mathrm{e}}", "1 + \\frac{1}{\\mathrm{e}}"): "the peer's label says equal; they differ",
    ("ext{13}", "13"): "the peer's label says unequal; a stray 'ext{...}' is a broken \\text{13}",
    ("2.74", "Soucis : 2,74 $ a.."): "decimal comma: '2,74' is a list of two numbers",
    ("9", "Answer $ \n 9 \n $"): "the peer finds no answer in a math span broken by newlines; we read 9",
    ("9", "Answer \\( \n 9 \n \\)"): "the peer finds no answer in a math span broken by newlines; we read 9",
}


def load_cases(path: str) -> list[dict]:
    """(gold, output, label) triples of every ``@pytest.mark.parametrize("gold, pred, expected", ...)``."""
    with open(path) as f:
        tree = ast.parse(f.read(), filename=path)
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef):
            continue
        for dec in node.decorator_list:
            if not (isinstance(dec, ast.Call) and getattr(dec.func, "attr", "") == "parametrize" and len(dec.args) >= 2):
                continue
            try:
                names = ast.literal_eval(dec.args[0])
                values = ast.literal_eval(dec.args[1])
            except ValueError:
                continue
            names = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
            if names[:2] != ["gold", "pred"] or names[2] not in ("expected", "result"):
                continue
            for i, v in enumerate(values):
                kw = dict(zip(names[3:], v[3:]))
                if kw.get("allow_set_relation_comp") is False or kw.get("precision") not in (None, 6):
                    continue  # the peer's non-default switches: not a default-policy label
                out.append({"source": os.path.basename(path), "test": node.name, "index": i,
                            "gold": v[0], "output": v[1], "label": bool(int(v[2]))})
    return out


def strip_math(s: str) -> str:
    """A gold as the peer writes it (``$...$``, ``\\[...\\]``) -> the answer inside."""
    s = s.strip()
    for a, b in (("$$", "$$"), ("$", "$"), ("\\[", "\\]"), ("\\(", "\\)")):
        if s.startswith(a) and s.endswith(b) and len(s) >= len(a) + len(b):
            s = s[len(a): len(s) - len(b)].strip()
    return s


def gold_answer(gold: str) -> str:
    """The gold answer as the grader reads a reference (``gold_from_solution``: boxes, markers, a bare
    math span), else the string without math delimiters."""
    found = grader.gold_from_solution(gold)
    return found if found is not None else strip_math(gold)


def add_total(by_source: dict[str, collections.Counter]) -> None:
    """Adds an ``all`` row: every source's counts summed."""
    total = collections.Counter()
    for counts in list(by_source.values()):
        total.update(counts)
    by_source["all"] = total


def make_math_verify():
    try:
        from math_verify import parse, verify
    except ImportError:
        return None

    def mv(gold: str, output: str) -> bool:
        return bool(verify(parse(gold), parse(output)))

    return mv


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--peer_tests", required=True, help="a Math-Verify checkout's tests/ directory")
    ap.add_argument("--files", default=",".join(DEFAULT_FILES))
    ap.add_argument("--angles", default="degrees", help="the grader's angle policy")
    ap.add_argument("--no_math_verify", action="store_true", help="skip running Math-Verify on the same cases")
    ap.add_argument("--json", default=None)
    ap.add_argument("--quiet", action="store_true", help="do not list the disagreements")
    args = ap.parse_args()

    cases = []
    for name in args.files.split(","):
        path = os.path.join(args.peer_tests, name.strip())
        if not os.path.exists(path):
            raise SystemExit(f"{path}: no such file (--peer_tests should be Math-Verify's tests/ directory)")
        cases += load_cases(path)
    mv = None if args.no_math_verify else make_math_verify()

    by_source: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    wrong, policy = [], []
    t0 = time.perf_counter()
    for c in cases:
        ours = grader.grade(c["output"], gold_answer(c["gold"]), angles=args.angles)
        c["ours"] = ours
        if mv is not None:
            try:
                c["math_verify"] = mv(c["gold"], c["output"])
            except Exception:
                c["math_verify"] = False
        counts = by_source[c["source"]]
        reason = POLICY.get((strip_math(c["gold"]), strip_math(c["output"])))
        if reason is not None:
            counts["policy"] += 1
            policy.append({**c, "reason": reason})
            continue
        counts["n"] += 1
        counts["agree"] += int(ours == c["label"])
        counts["false_equal"] += int(ours and not c["label"])
        counts["false_unequal"] += int(not ours and c["label"])
        if mv is not None:
            counts["mv_agree"] += int(c["math_verify"] == c["label"])
        if ours != c["label"]:
            wrong.append(c)
    seconds = time.perf_counter() - t0

    add_total(by_source)
    print(f"{'source':<26}{'cases':>7}{'agree':>9}{'false =':>9}{'false !=':>10}{'policy':>8}{'Math-Verify':>13}")
    for src, k in by_source.items():
        mv_txt = f"{100 * k['mv_agree'] / k['n']:.1f}%" if (mv is not None and k["n"]) else "-"
        print(f"{src:<26}{k['n']:>7}{100 * k['agree'] / max(k['n'], 1):>8.1f}%{k['false_equal']:>9}"
              f"{k['false_unequal']:>10}{k['policy']:>8}{mv_txt:>13}")
    print(f"({len(cases)} cases in {seconds:.1f} s; 'policy' = documented differences, listed with --json)")
    if not args.quiet:
        for c in wrong:
            verdict = "FALSE EQUAL" if c["ours"] else "false unequal"
            print(f"\n[{verdict}] {c['source']}::{c['test']}[{c['index']}]\n  gold:   {c['gold'][:200]!r}\n"
                  f"  output: {c['output'][-300:]!r}\n  extracted: {grader.extract_answer(c['output'])!r}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"by_source": {k: dict(v) for k, v in by_source.items()}, "disagreements": wrong,
                       "policy": policy}, f, indent=1)


if __name__ == "__main__":
    main()
