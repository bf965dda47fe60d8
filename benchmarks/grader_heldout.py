"""Held-out grader agreement: mathjax.grader vs labels from public projects other than Math-Verify.

``grader_agreement.py`` uses Math-Verify's cases, seen during development; this script uses labelled
answer-equivalence cases of other projects, read from a checkout or a bare git dir (``git show
HEAD:path``). Test files are parsed with ``ast``, never executed; data files are read as JSON; nothing
is copied into this project. One flag per source:

  --lighteval_dir    huggingface/lighteval tests/unit/metrics/test_extractive_match.py (gold, model
                     output, hand label). Math-Verify grew out of it: --exclude_peer_tests=<Math-Verify
                     tests/> drops every (gold, output) pair Math-Verify also ships.
  --nemo_skills_dir  NVIDIA/NeMo-Skills tests/test_math_equal.py (pairs asserted equal/unequal, both
                     orders) and tests/data/openmathinstruct2.test (100 Llama-3.1-405B solutions kept
                     because they matched the expected answer: all correct).
  --tora_dir         microsoft/ToRA src/outputs/llm-agents/*/gsm8k/*.jsonl (ToRA-70B, ToRA-Code-34B);
                     label = ToRA's extracted ``pred`` equals the gold (rel. 1e-4), which gives the
                     published .metrics accuracy (84.3% exactly; 80.5% vs 80.7%).
  --mathcoder_dir    mathllm/MathCoder outs/*/GSM8K/*-{correct,wrong}.jsonl (label = the file; first
                     complete run per model) and outs/MathCoder-L-7b/MATH/*-correct.jsonl (all correct;
                     its -wrong file is too large for some snapshots). MathCoder's MATH labels accept
                     answers within about 0.01 (27/50 for 6/11): see 'policy' below.
  --hendrycks_dir    hendrycks/math modeling/math_equivalence_test.py (hand-written is_equiv asserts).
  --mario_dir        MARIO-Math-Reasoning/MARIO_EVAL math_evaluation/tests/test_is_equiv.py (likewise,
                     with a tolerant policy: 1.732 = sqrt(3)).

    JAX_PLATFORMS=cpu python benchmarks/grader_heldout.py --lighteval_dir=DIR \\
        --exclude_peer_tests=MV/tests --nemo_skills_dir=DIR --tora_dir=DIR ... [--json out.json]

Model outputs are graded with ``grader.grade(output, gold)``; the hand-written pairs are answers already,
compared with ``grader.is_equiv`` (``grade`` would extract from them, e.g. the last number). Golds go
through ``gold_from_solution`` when they have boxes/markers, else are stripped of ``$``. Math-Verify,
if installed, grades the same cases (peer column; a bare gold/answer is wrapped in ``$...$``).

Column 'policy': disagreements where this project follows a documented policy (README, "Answer
equivalence") that differs from the source's, classified mechanically from the case itself (never from a
list of ids; only cases where our verdict and the label disagree are looked at); 'agree-ex' is the
agreement without them. Two kinds, counted on the line after the table and tagged in the listing:

  tolerance  labelled equal, we say unequal, and the gold and our extracted answer evaluate (the
             grader's own parser and ``numeric`` evaluator; a ``cases`` environment read as the list of
             its rows, thousands commas as in ``5,525`` dropped when needed) to finite reals that differ
             but lie within 0.01 absolute or 1% relative of each other. Lists, tuples, matrices,
             relations and expressions with variables compare structurally: same shape, the same
             variables, each symbol-free part within the tolerance, at least one part different. A
             label in front (``AB \approx 3.464``, ``\sin G = 0.47``) is dropped: the right side of the
             last ``=``/``\approx`` is compared when the other answer is no relation. MathCoder's MATH
             rule (27/50 for 6/11, 0.0588 for 11/221) and MARIO's tolerant one (1.732 for sqrt(3),
             ``x + 1.414I`` for ``x + \sqrt2I``); our numbers are exact, so 0.33 never equals 1/3.
  order      labelled unequal, we say equal, and both answers are the same comma-separated items (split
             at top-level commas, matched as a multiset with ``grader.is_equiv``) in another order:
             hendrycks' string test is ordered (``10, 4, -2`` vs ``4, 10, -2``); our bare comma lists are
             unordered sets (MATH's "enter all solutions" answers).
"""

from __future__ import annotations

import argparse
import ast
import collections
import json
import operator
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from mathjax import grader  # noqa: E402
from grader_agreement import add_total, gold_answer, load_cases as load_mv_cases, make_math_verify, strip_math  # noqa: E402
from heldout_policy import TOL_ABS, TOL_REL, policy_kind  # noqa: E402


def _is_git_dir(root: str) -> bool:
    return not os.path.isdir(os.path.join(root, ".git")) and os.path.exists(os.path.join(root, "HEAD"))


def read_text(root: str, path: str) -> str:
    if not _is_git_dir(root):
        with open(os.path.join(root, path), encoding="utf-8") as f:
            return f.read()
    return subprocess.run(["git", "--git-dir", root, "show", f"HEAD:{path}"], check=True,
                          capture_output=True).stdout.decode("utf-8")


def list_files(root: str, under: str) -> list[str]:
    if not _is_git_dir(root):
        return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(os.path.join(root, under))
                      for f in fs)
    out = subprocess.run(["git", "--git-dir", root, "ls-tree", "-r", "--name-only", "HEAD", under],
                         check=True, capture_output=True, text=True).stdout
    return sorted(out.split())


def head_commit(root: str) -> str:
    git = ["git", "--git-dir", root] if _is_git_dir(root) else ["git", "-C", root]
    r = subprocess.run(git + ["rev-parse", "HEAD"], capture_output=True, text=True)
    return r.stdout.strip() or "?"


_BINOPS = {ast.Div: operator.truediv, ast.Mult: operator.mul, ast.Add: operator.add, ast.Sub: operator.sub}


def lit(node):
    """ast.literal_eval plus ``a.b`` names (-> "a.b") and numeric arithmetic (``5 / 2``)."""
    if isinstance(node, ast.Attribute):
        return f"{lit(node.value)}.{node.attr}"
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, (ast.Tuple, ast.List)):
        return [lit(e) for e in node.elts]
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        return _BINOPS[type(node.op)](lit(node.left), lit(node.right))
    return ast.literal_eval(node)


def case(source, test, gold, output, label, mv_gold=None, kind="text"):
    """kind "text": a model's output (grader.grade); "answer": an answer already (grader.is_equiv)."""
    return {"source": source, "test": test, "gold": str(gold), "output": str(output), "label": bool(label),
            "mv_gold": mv_gold, "kind": kind}


def load_lighteval(root: str, exclude: set) -> list[dict]:
    path = "tests/unit/metrics/test_extractive_match.py"
    tree = ast.parse(read_text(root, path))
    out = []
    for fn in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
        if "abc" in fn.name:  # multiple-choice letters, not math answers
            continue
        for dec in fn.decorator_list:
            if not (isinstance(dec, ast.Call) and getattr(dec.func, "attr", "") == "parametrize"):
                continue
            names = [n.strip() for n in lit(dec.args[0]).split(",")]
            if names[:2] != ["gold", "pred"]:
                continue
            for i, v in enumerate(lit(dec.args[1])):
                kw = dict(zip(names, v))
                if kw.get("precision") not in (None, 6) or kw.get("match_type") not in (None, ["latex", "expr"]):
                    continue
                if (strip_math(kw["gold"]), strip_math(kw["pred"])) in exclude:
                    continue
                out.append(case("lighteval", f"{fn.name}[{i}]", kw["gold"], kw["pred"], int(kw["expected"]),
                                mv_gold=kw["gold"]))
    return out


def load_nemo_skills(root: str) -> list[dict]:
    out = []
    tree = ast.parse(read_text(root, "tests/test_math_equal.py"))
    for fn in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
        label = {"test_correct_examples": True, "test_incorrect_examples": False}.get(fn.name)
        for dec in fn.decorator_list:
            if label is None or not isinstance(dec, ast.Call) or len(dec.args) < 2:
                continue
            for i, (a, b) in enumerate(lit(dec.args[1])):
                if a is None or b is None:
                    continue
                out.append(case("nemo-skills:math_equal", f"{fn.name}[{i}]", a, b, label, kind="answer"))
                out.append(case("nemo-skills:math_equal", f"{fn.name}[{i}]-swapped", b, a, label, kind="answer"))
    for i, line in enumerate(read_text(root, "tests/data/openmathinstruct2.test").splitlines()):
        if line.strip():
            r = json.loads(line)
            out.append(case("nemo-skills:omi2", f"line{i}", r["expected_answer"], r["generated_solution"], True))
    return out


def load_tora(root: str) -> list[dict]:
    out = []
    for path in list_files(root, "src/outputs/llm-agents"):
        if "/gsm8k/" not in path or not path.endswith(".jsonl"):
            continue
        model = path.split("/")[3]
        for line in read_text(root, path).splitlines():
            r = json.loads(line)
            try:
                p, g = (float(str(x).replace(",", "")) for x in (r["pred"][0], r["gt"]))
                label = abs(p - g) <= 1e-4 * max(abs(g), 1e-9)
            except ValueError:
                label = False
            out.append(case(f"tora:{model}:gsm8k", f"idx{r['idx']}", r["gt"], r["code"][0], label))
    return out


def _mathcoder_text(debug_result) -> str:
    """The assistant's turns (text, code, execution) as one text, code in ``` fences."""
    msgs = ast.literal_eval(debug_result) if isinstance(debug_result, str) else debug_result
    fmt = {"text": "{}", "code": "```python\n{}\n```", "execution": "```output\n{}\n```"}
    return "\n\n".join(fmt[m["role"]].format(m.get("content", "")) for m in msgs if m.get("role") in fmt)


def load_mathcoder(root: str) -> list[dict]:
    runs: dict[tuple, set] = collections.defaultdict(set)
    for p in list_files(root, "outs"):
        if p.endswith(("-correct.jsonl", "-wrong.jsonl")) and p.split("/")[1] != "debug":
            stem, kind = p.rsplit("-", 1)
            runs[(p.split("/")[1], p.split("/")[2], stem)].add(kind)
    chosen = {}
    for (model, task, stem), kinds in sorted(runs.items()):
        if task == "GSM8K" and kinds == {"correct.jsonl", "wrong.jsonl"}:
            chosen.setdefault((model, task), stem)  # first complete run per model
        elif task == "MATH" and model == "MathCoder-L-7b":
            chosen.setdefault((model, task), stem)
    out = []
    for (model, task), stem in sorted(chosen.items()):
        for kind in ("correct", "wrong"):
            try:
                text = read_text(root, f"{stem}-{kind}.jsonl")
            except (subprocess.CalledProcessError, FileNotFoundError):
                continue
            for line in text.splitlines():
                r = json.loads(line)
                gt = r["ground_truth"]
                gold = (ast.literal_eval(gt) if isinstance(gt, str) else gt)["answer"]
                out.append(case(f"mathcoder:{model}:{task}", f"{r['id']}", gold,
                                _mathcoder_text(r["debug_result"]), kind == "correct"))
    return out


def load_unittest_asserts(root: str, path: str, source: str, gold_first: bool) -> list[dict]:
    """``test_in = ...; test_out = ...; self.assertTrue/False(is_equiv(test_in, test_out))`` sequences."""
    tree = ast.parse(read_text(root, path))
    out = []
    for fn in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
        env, k = {}, 0
        for st in fn.body:
            if isinstance(st, ast.Assign) and isinstance(st.targets[0], ast.Name):
                try:
                    env[st.targets[0].id] = lit(st.value)
                except ValueError:
                    pass
            elif (isinstance(st, ast.Expr) and isinstance(st.value, ast.Call)
                  and getattr(st.value.func, "attr", "") in ("assertTrue", "assertFalse")
                  and isinstance(st.value.args[0], ast.Call)):
                inner = st.value.args[0]
                name = getattr(inner.func, "id", "")
                if name not in ("is_equiv", "_test_is_equiv", "_test_is_not_equiv"):
                    continue
                a, b = (env.get(x.id) if isinstance(x, ast.Name) else lit(x) for x in inner.args[:2])
                gold, output = (a, b) if gold_first else (b, a)
                out.append(case(source, f"{fn.name}[{k}]", gold, output, st.value.func.attr == "assertTrue",
                                kind="answer"))
                k += 1
    return out


# Documented policy differences (tolerance, order): heldout_policy.py.


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for name in ("lighteval", "nemo_skills", "tora", "mathcoder", "hendrycks", "mario"):
        ap.add_argument(f"--{name}_dir", default=None, help="a checkout or bare git dir of that project")
    ap.add_argument("--exclude_peer_tests", default=None,
                    help="Math-Verify tests/ dir: drop lighteval cases Math-Verify also ships")
    ap.add_argument("--angles", default="degrees")
    ap.add_argument("--no_math_verify", action="store_true")
    ap.add_argument("--json", default=None)
    ap.add_argument("--quiet", action="store_true", help="do not list the disagreements")
    args = ap.parse_args()

    exclude = set()
    if args.exclude_peer_tests:
        for f in sorted(os.listdir(args.exclude_peer_tests)):
            if f.startswith("test_") and f.endswith(".py"):
                exclude |= {(strip_math(c["gold"]), strip_math(c["output"]))
                            for c in load_mv_cases(os.path.join(args.exclude_peer_tests, f))}
    cases, commits = [], {}
    loaders = {
        "lighteval": lambda r: load_lighteval(r, exclude),
        "nemo_skills": load_nemo_skills,
        "tora": load_tora,
        "mathcoder": load_mathcoder,
        "hendrycks": lambda r: load_unittest_asserts(r, "modeling/math_equivalence_test.py", "hendrycks", False),
        "mario": lambda r: load_unittest_asserts(r, "math_evaluation/tests/test_is_equiv.py", "mario", True),
    }
    for name, load in loaders.items():
        root = getattr(args, f"{name}_dir")
        if root:
            commits[name] = head_commit(root)
            cases += load(root)
    if not cases:
        raise SystemExit("no source given (see --help)")
    mv = None if args.no_math_verify else make_math_verify()

    by_source: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    wrong = []
    t0 = time.perf_counter()
    for c in cases:
        if c["kind"] == "answer":
            c["ours"] = grader.is_equiv(c["output"], gold_answer(c["gold"]), angles=args.angles)
        else:
            c["ours"] = grader.grade(c["output"], gold_answer(c["gold"]), angles=args.angles)
        k = by_source[c["source"]]
        k.update(n=1, agree=int(c["ours"] == c["label"]), false_equal=int(c["ours"] and not c["label"]),
                 false_unequal=int(not c["ours"] and c["label"]), positives=int(c["label"]))
        if mv is not None:
            g = c["mv_gold"] or (c["gold"] if any(d in c["gold"] for d in ("$", "\\boxed", "\\(", "\\["))
                                 else f"${c['gold']}$")
            o = c["output"] if c["kind"] == "text" else f"${c['output']}$"
            try:
                c["math_verify"] = mv(g, o)
            except Exception:
                c["math_verify"] = False
            k["mv_agree"] += int(c["math_verify"] == c["label"])
        if c["ours"] != c["label"]:  # only disagreements are classified
            c["policy"] = policy_kind(c, args.angles)
            if c["policy"]:
                k["policy"] += 1
                k[f"policy_{c['policy']}"] += 1
            wrong.append(c)
    seconds = time.perf_counter() - t0

    add_total(by_source)
    print("commits: " + ", ".join(f"{n}={h}" for n, h in commits.items()))
    print(f"{'source':<36}{'cases':>7}{'pos':>6}{'agree':>9}{'false =':>9}{'false !=':>10}{'policy':>8}"
          f"{'agree-ex':>10}{'Math-Verify':>13}")
    for src, k in by_source.items():
        mv_txt = f"{100 * k['mv_agree'] / k['n']:.1f}%" if (mv is not None and k["n"]) else "-"
        ex = 100 * k["agree"] / max(k["n"] - k["policy"], 1)
        print(f"{src:<36}{k['n']:>7}{k['positives']:>6}{100 * k['agree'] / max(k['n'], 1):>8.1f}%"
              f"{k['false_equal']:>9}{k['false_unequal']:>10}{k['policy']:>8}{ex:>9.1f}%{mv_txt:>13}")
    print(f"({len(cases)} cases in {seconds:.1f} s, both graders; {len(exclude)} Math-Verify pairs excluded; 'policy' ="
          " disagreements where a documented policy of this project differs from the source's; 'agree-ex' leaves"
          " them out)")
    tot = by_source["all"]
    print(f"policy: {tot['policy_tolerance']} tolerance (labelled equal, within {TOL_ABS} absolute or"
          f" {100 * TOL_REL:g}% relative; our numbers are exact), {tot['policy_order']} order (labelled unequal,"
          " the same comma list in another order; our bare lists are unordered)")
    if not args.quiet:
        for c in wrong:
            verdict = ("FALSE EQUAL" if c["ours"] else "false unequal") + (
                f" ({c['policy']} label)" if c["policy"] else "")
            mvv = f"  math_verify: {c.get('math_verify')}" if mv is not None else ""
            print(f"\n[{verdict}] {c['source']}::{c['test']}{mvv}\n  gold:   {c['gold'][:200]!r}\n"
                  f"  output: {c['output'][-300:]!r}\n  extracted: "
                  f"{grader.extract_answer(c['output']) if c['kind'] == 'text' else '(is_equiv)'!r}")
    if args.json:
        with open(args.json, "w") as f:
            zero = {"policy": 0, "policy_tolerance": 0, "policy_order": 0}
            json.dump({"commits": commits, "by_source": {k: {**zero, **v} for k, v in by_source.items()},
                       "policy_kinds": {"tolerance": f"labelled equal, ours unequal, numbers within {TOL_ABS} absolute"
                                                     f" or {TOL_REL} relative", "order": "labelled unequal, ours"
                                                     " equal, the same comma-separated items in another order"},
                       "disagreements": wrong}, f, indent=1)


if __name__ == "__main__":
    main()
