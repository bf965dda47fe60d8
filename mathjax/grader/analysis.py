"""The paper's analyses: accuracy vs reasoning steps; arithmetic vs other errors.

Both work on :class:`mathjax.grader.bulk.QuestionResult` lists.

* Steps: a question's number of reasoning steps is its ``steps`` field, else
  counted in its reference solution; when neither exists, each sample's own
  step count is used (so the table then reads "accuracy of samples that took
  s steps").
* Errors: a wrong sample "has an arithmetic slip" when at least one
  ``a op b = c`` in it is false (:mod:`arithmetic`, exact); every other wrong
  sample counts as another (reasoning, reading, extraction) error.
"""

from __future__ import annotations

import re
from collections import defaultdict

_FINAL_LINE_RE = re.compile(r"(?i)^\s*(?:the\s+)?(?:final\s+)?answer\s*(?:is|:)|^\s*####")
_SENTENCE_RE = re.compile(r"(?<=[.!?])\s+(?=[A-Z$\\(])")
_MATHY_RE = re.compile(r"[\d=$\\]")
# Step counts above this are pooled into one "N+" bucket.
MAX_STEP_BUCKET = 12


def count_steps(text: str | None) -> int:
    """Reasoning steps in a worked solution: sentences/lines that do maths.

    The final-answer line is not a step. A line with several sentences counts
    each sentence that holds a number, an ``=`` or LaTeX.
    """
    if not text:
        return 0
    steps = 0
    for line in text.split("\n"):
        if not line.strip() or _FINAL_LINE_RE.match(line):
            continue
        for sent in _SENTENCE_RE.split(line):
            if _MATHY_RE.search(sent):
                steps += 1
    return steps


def _bucket(s: int) -> str:
    return f"{MAX_STEP_BUCKET}+" if s >= MAX_STEP_BUCKET else str(s)


def _bucket_order(b: str) -> int:
    return int(b.rstrip("+"))


def accuracy_by_steps(results) -> dict:
    """Accuracy grouped by number of reasoning steps.

    Returns:
      ``{"source": "question" | "sample", "buckets": [{"steps", "questions"
      or "samples", "accuracy", "pass_ratio"?, "first_sample"?}, ...]}``
    """
    have_q = [r for r in results if r.steps is not None]
    if have_q and len(have_q) >= len(results) / 2:
        groups = defaultdict(list)
        for r in have_q:
            groups[_bucket(r.steps)].append(r)
        buckets = []
        for b in sorted(groups, key=_bucket_order):
            rs = groups[b]
            pr = sum(sum(r.correct) / len(r.correct) for r in rs if r.correct) / len(rs)
            first = sum(bool(r.correct and r.correct[0]) for r in rs) / len(rs)
            buckets.append(
                {"steps": b, "questions": len(rs), "pass_ratio": pr, "first_sample": first, "accuracy": pr}
            )
        return {"source": "question", "buckets": buckets}
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in results:
        for ok, s in zip(r.correct, r.sample_steps or []):
            c = counts[_bucket(s)]
            c[0] += int(ok)
            c[1] += 1
    buckets = [
        {"steps": b, "samples": n, "accuracy": k / n}
        for b, (k, n) in sorted(counts.items(), key=lambda kv: _bucket_order(kv[0]))
        if n
    ]
    return {"source": "sample", "buckets": buckets}


def error_breakdown(results) -> dict:
    """Share of wrong samples with an arithmetic slip vs other errors.

    Returns counts and shares; ``*_rounding`` variants accept decimals rounded
    to their written places (``10/3 = 3.33``) as correct arithmetic.
    """
    wrong = slip = slip_r = no_answer = correct_slip = correct_n = 0
    for r in results:
        if r.slips is None:
            continue
        for i, ok in enumerate(r.correct):
            if ok:
                correct_n += 1
                correct_slip += int(r.slips[i])
                continue
            wrong += 1
            slip += int(r.slips[i])
            slip_r += int(r.slips_rounding[i]) if r.slips_rounding else 0
            no_answer += int(r.answers[i] is None)
    share = (lambda x: x / wrong) if wrong else (lambda x: 0.0)
    return {
        "wrong_samples": wrong,
        "wrong_with_arithmetic_slip": slip,
        "arithmetic_share": share(slip),
        "other_share": share(wrong - slip),
        "arithmetic_share_rounding": share(slip_r),
        "wrong_without_answer": no_answer,
        "correct_samples": correct_n,
        "correct_with_arithmetic_slip": correct_slip,
    }


def correct_reasons(results) -> dict:
    """Correct samples split by their arithmetic: right for the right reasons, or right by luck.

    ``all_equations_right``: the arithmetic checker found equations and every
    one is right; ``wrong_equation``: the final answer is right although some
    equation is wrong (a slip that cancelled out, or an answer not derived from
    the work: right by luck); ``no_equation``: nothing to check.
    """
    right = luck = none = 0
    for r in results:
        if r.slips is None or r.equations is None:
            continue
        for ok, slip, n in zip(r.correct, r.slips, r.equations):
            if not ok:
                continue
            if n == 0:
                none += 1
            elif slip:
                luck += 1
            else:
                right += 1
    total = right + luck + none
    share = (lambda x: x / total) if total else (lambda x: 0.0)
    return {"correct_samples": total, "all_equations_right": right, "wrong_equation": luck, "no_equation": none,
            "all_equations_right_share": share(right), "wrong_equation_share": share(luck)}


FIRST_WRONG_BINS = 5


def first_wrong_positions(results) -> dict:
    """Where the first wrong equation sits, as a share of the way through the checked equations.

    Position ``i / n`` for the first wrong equation ``i`` (0-based) of ``n``: 0 is
    the first equation; a solution's last equation sits at ``(n - 1) / n``.
    Counts in ``FIRST_WRONG_BINS`` equal bins of [0, 1), over all samples
    (right or wrong) with a wrong equation. The paper's reading: errors that
    start late are slips in long chains, early ones misreadings of the question.
    """
    bins = [0] * FIRST_WRONG_BINS
    for r in results:
        if r.first_wrong is None or r.equations is None:
            continue
        for first, n in zip(r.first_wrong, r.equations):
            if first is None or not n:
                continue
            bins[min(FIRST_WRONG_BINS - 1, int(FIRST_WRONG_BINS * first / n))] += 1
    total = sum(bins)
    return {"samples": total, "bins": [
        {"from": i / FIRST_WRONG_BINS, "to": (i + 1) / FIRST_WRONG_BINS, "samples": c,
         "share": c / total if total else 0.0} for i, c in enumerate(bins)]}
