"""A question-blind control: what guessing from the answer distribution scores.

The guesser ignores the question and draws each final answer i.i.d. from a
fixed distribution (typically the training set's final answers). For a
question with gold ``g`` let ``p`` be the total probability of the answers the
grader judges equal to ``g`` (so ``1/2`` and ``0.5`` pool). Then, exactly:

* Pass@k = ``1 - (1 - p)^k``; PassRatio@k = first-sample accuracy = ``p``.
* maj@k = P(the gold's group is the plurality of k draws), answers grouped as
  the model's samples are (the gold's equivalents, then :func:`answer_key`)
  and a tie of t groups with the gold's scoring 1/t, as in
  :func:`mathjax.grader.metrics.maj_at_k`. A dynamic program, no sampling;
  exact, or within a reported bound under ``tol`` (see :func:`_maj_at_k`).
"""

from __future__ import annotations

import collections
import json
import math
import os
from collections.abc import Mapping, Sequence

import numpy as np

from mathjax.grader import angles as _angles
from mathjax.grader import pool as pool_lib
from mathjax.grader.api import DEFAULT_TIMEOUT, slow_compare_job
from mathjax.grader.equiv import Verdict, compare
from mathjax.grader.keys import answer_key
from mathjax.grader.metrics import _bootstrap
from mathjax.grader.samples_io import gold_answer, open_path

DEFAULT_TOL = 1e-9
CONTROL_LABEL = "question-blind control"


class AnswerDistributionError(ValueError):
    """A control answer file that cannot be read; the message names file:line."""


def _line_of(text: str, key: str) -> int:
    """Line of a table entry (JSON parsing keeps no positions); 1 if not found."""
    at = max(text.find(json.dumps(key)), text.find(json.dumps(key, ensure_ascii=False)))
    return text.count("\n", 0, at) + 1 if at >= 0 else 1


def _is_table(path: str, text: str) -> bool:
    """``.json``: a table; ``.jsonl``: records; else a single object of numbers is a table."""
    if path.endswith((".json", ".jsonl", ".ndjson")):
        return path.endswith(".json")
    try:
        obj = json.loads(text)
    except ValueError:
        return False
    return isinstance(obj, dict) and all(type(v) in (int, float) for v in obj.values())


class _Pairs(list):
    """A JSON object as its (key, value) pairs: a repeated answer is an error, not silently the last count."""


def _read_table(path: str, text: str) -> dict[str, float]:
    try:
        pairs = json.loads(text, object_pairs_hook=_Pairs)
    except json.JSONDecodeError as e:
        raise AnswerDistributionError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
    if not isinstance(pairs, _Pairs):
        raise AnswerDistributionError(f"{path}:1: an answer-frequency table is a JSON object {{answer: count}}")
    counts: dict[str, float] = {}
    seen: set[str] = set()
    for key, v in pairs:
        where = f"{path}:{_line_of(text, key)}"
        if key in seen or seen.add(key):
            raise AnswerDistributionError(f"{where}: answer {key!r} appears twice")
        if type(v) not in (int, float) or not math.isfinite(v) or v < 0:
            raise AnswerDistributionError(f"{where}: count of {key!r} must be a number >= 0, got {v!r}")
        if not key.strip():
            raise AnswerDistributionError(f"{where}: empty answer")
        counts[key.strip()] = counts.get(key.strip(), 0) + v  # " 4" and "4" are one answer
    return counts


def _read_records(path: str, text: str) -> dict[str, float]:
    counts: dict[str, float] = {}
    # split("\n"), not splitlines(): JSON strings may hold U+2028 and other line breaks.
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise AnswerDistributionError(f"{where}: not valid JSON ({e.msg})") from None
        if not isinstance(rec, dict):
            raise AnswerDistributionError(f"{where}: expected a JSON object with an answer, got {type(rec).__name__}")
        try:
            ans = gold_answer(rec)
        except Exception as e:  # the extractor on hostile text: say where, not a bare traceback
            why = f"{type(e).__name__}: {e}"
            raise AnswerDistributionError(f"{where}: cannot extract the final answer ({why})") from None
        if ans is None or not str(ans).strip():
            raise AnswerDistributionError(f"{where}: no final answer (looked at final_answer, answer, solution)")
        counts[ans.strip()] = counts.get(ans.strip(), 0) + 1
    return counts


def load_answer_distribution(path: str | os.PathLike) -> dict[str, float]:
    """Answer -> count from a JSONL training set or a JSON table ``{answer: count}``.

    A record's answer is the grader's own gold-answer extraction
    (:func:`samples_io.gold_answer`: ``final_answer``; else ``answer``, bare or
    a worked solution; else the last box of ``solution``). Local paths or URIs.

    Raises:
      AnswerDistributionError: naming ``file:line`` of the first bad entry.
    """
    path = os.fspath(path)
    try:
        with open_path(path) as f:
            text = f.read()
    except UnicodeDecodeError as e:
        raise AnswerDistributionError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    counts = _read_table(path, text) if _is_table(path, text) else _read_records(path, text)
    if not sum(counts.values()) > 0:
        raise AnswerDistributionError(f"{path}: no answers (empty, or every count is 0)")
    return counts


def _maj_at_k(p: float, others: np.ndarray, k: int, tol: float = DEFAULT_TOL) -> tuple[float, float]:
    """maj@k of the guesser for a gold group of mass ``p``; returns (value, error bound).

    ``others`` are the masses of the other groups. Condition on the gold's
    count c ~ Bin(k, p); the other N = k - c draws are multinomial over the
    others (renormalised to r_i), drawn group by group: given n draws left,
    group i takes Bin(n, r_i / (r_i + r_{i+1} + ...)). The state D[n, t] is the
    probability that n draws are left, every group so far got at most c and
    exactly t of them got c; the gold then scores 1/(1 + t) once n = 0.

    Groups run largest first. Stopping after a prefix and letting the rest take
    the remaining draws freely gives an upper estimate T_c (the rest assumed
    never to reach c); it exceeds the truth by at most min(T_c, C(N, c) *
    sum_rest r_i^c), a union bound on some left-out group reaching c. Values
    of c whose Bin(k, p) mass sums to at most tol / 2 are skipped. The
    returned bound adds both; it is 0 when nothing was left out.
    """
    if p <= 0.0 or k < 1:
        return 0.0, 0.0
    q = np.sort(np.asarray(others, dtype=np.float64))[::-1]
    q = q[q > 0]
    if q.size == 0:
        return 1.0, 0.0
    r = q / q.sum()
    rest = np.cumsum(r[::-1])[::-1]  # r_i + r_{i+1} + ...
    lf = np.array([math.lgamma(i + 1) for i in range(k + 1)])  # log i!
    cs = np.arange(k + 1)
    if p >= 1.0:  # the others' mass rounded away
        w = (cs == k).astype(np.float64)
    else:
        w = np.exp(lf[k] - lf[cs] - lf[k - cs] + cs * math.log(p) + (k - cs) * math.log1p(-p))
    order = np.argsort(w[1:], kind="stable") + 1
    skip = np.cumsum(w[order]) <= tol / 2  # the least likely gold counts, together under tol / 2
    err = float(w[order][skip].sum())
    todo = sorted(int(c) for c in order[~skip])
    budget = tol / 2 / max(len(todo), 1)
    total = 0.0
    for c in todo:
        n_left = k - c
        if n_left == 0:
            total += w[c]
            continue
        t_max = n_left // c
        inv_ties = 1.0 / (1.0 + np.arange(t_max + 1))
        # min(1, C(N, c) * sum_{j >= i} r_j^c), i = 0..len(r): the union bound above, in logs
        # (C(N, c) alone overflows for k past ~1000).
        log_comb = lf[n_left] - lf[c] - lf[n_left - c] if n_left >= c else -math.inf
        with np.errstate(divide="ignore"):
            tails = np.exp(np.minimum(np.log(np.append(np.cumsum((r**c)[::-1])[::-1], 0.0)) + log_comb, 0.0))
        d = np.zeros((n_left + 1, t_max + 1))
        d[n_left, 0] = 1.0
        n = np.arange(n_left + 1)[:, None]
        for i in range(r.size + 1):
            est = float((d @ inv_ties).sum())
            bound = min(est, float(tails[i]))
            if w[c] * bound <= budget or i == r.size:
                total += w[c] * est
                err += w[c] * bound
                break
            rho = 1.0 if i == r.size - 1 else min(r[i] / rest[i], 1.0)
            jmax = min(c, n_left)
            j = np.arange(jmax + 1)[None, :]
            if rho >= 1.0:
                pmf = (j == n).astype(np.float64)
            else:
                nj = np.maximum(n - j, 0)
                logp = lf[n] - lf[np.minimum(j, n)] - lf[nj] + j * math.log(rho) + nj * math.log1p(-rho)
                pmf = np.where(j <= n, np.exp(logp), 0.0)
            new = np.zeros_like(d)
            for jj in range(jmax + 1):  # this group takes jj of the n draws left
                if jj < c:
                    new[: n_left + 1 - jj] += pmf[jj:, jj : jj + 1] * d[jj:]
                elif t_max >= 1:  # ties the gold: one more tied group
                    new[: n_left + 1 - c, 1:] += pmf[c:, c : c + 1] * d[c:, :-1]
            d = new
    return min(max(float(total), 0.0), 1.0), float(err)


def _pass_at_k(p: float, k: int) -> float:
    return -math.expm1(k * math.log1p(-p)) if p < 1 else 1.0


def _key(answer: str):
    try:
        return answer_key(answer)
    except Exception:  # as majority_answer: an answer without a key votes as its own string
        return ("raw", answer)


class AnswerGuesser:
    """The question-blind guesser over an answer -> count distribution.

    Args:
      counts: answer -> count (or probability); from :func:`load_answer_distribution`.
      timeout: hard limit (s) of each symbolic comparison with a gold answer.
      workers: processes for the comparisons the fast path cannot settle
        (default all cores; 0 in-process).
      tol: maj@k error allowance per question (see :func:`_maj_at_k`).
      angles: angle-unit policy of the comparisons (``"degrees"``/``"convert"``;
        None: this process's default), as for the model's samples.
    """

    def __init__(self, counts: Mapping[str, float], *, timeout: float = DEFAULT_TIMEOUT,
                 workers: int | None = None, tol: float = DEFAULT_TOL, angles: str | None = None):
        self.angles = _angles.check(angles)
        items = sorted(((str(a), float(c)) for a, c in counts.items() if c > 0), key=lambda x: -x[1])
        total = sum(c for _, c in items)
        if not items or total <= 0:
            raise ValueError("the answer distribution is empty")
        self.answers = [a for a, _ in items]
        self.mass = {a: c / total for a, c in items}
        self.total = int(total) if total.is_integer() else total  # a count, when counts were given
        self.groups: dict = {}  # answer_key -> answers, as the model's samples are grouped for maj@k
        for a in self.answers:
            self.groups.setdefault(_key(a), []).append(a)
        self.timeout, self.workers, self.tol = timeout, workers, tol
        self.outcomes: collections.Counter = collections.Counter()  # unusual comparison outcomes
        self._equal: dict[str, frozenset] = {}  # gold -> the answers equal to it
        self._split: dict = {}  # equal answers -> (p, other groups' masses, their identity)
        self._maj: dict = {}  # (masses identity, k) -> (maj@k, bound)

    def resolve(self, golds: Sequence[str | None]) -> None:
        """Compare every answer with every new gold: fast path, then sympy in workers."""
        todo = sorted({g for g in golds if g and g not in self._equal})
        equal: dict[str, set] = {g: set() for g in todo}
        slow = []
        for g in todo:
            for a in self.answers:
                try:
                    v = compare(a, g, angles=self.angles)
                except Exception:
                    v = Verdict.ERROR
                if v == Verdict.EQUAL:
                    equal[g].add(a)
                elif v == Verdict.UNDECIDED:
                    slow.append((a, g))
                elif v != Verdict.NOT_EQUAL:
                    self.outcomes[v.name.lower()] += 1
        if slow:
            workers = pool_lib.default_workers() if self.workers is None else self.workers
            with pool_lib.WorkerPool(workers) as pool:
                for res in pool.imap_unordered(
                        slow_compare_job, [(a, g, self.angles) for a, g in slow], timeout=self.timeout):
                    self.outcomes["slow"] += 1
                    if res.status == pool_lib.OK and res.value == int(Verdict.EQUAL):
                        a, g = slow[res.index]
                        equal[g].add(a)
                    elif res.status != pool_lib.OK:
                        self.outcomes[res.status] += 1
        self._equal.update({g: frozenset(s) for g, s in equal.items()})

    def equal_answers(self, gold: str | None) -> frozenset:
        """The distribution's answers the grader judges equal to ``gold``."""
        if not gold:
            return frozenset()
        self.resolve([gold])
        return self._equal[gold]

    def probability(self, gold: str | None) -> float:
        """p: the chance that one guess is right."""
        return min(sum(self.mass[a] for a in self.equal_answers(gold)), 1.0)

    def maj_at_k(self, gold: str | None, k: int) -> tuple[float, float]:
        """(maj@k, its error bound) for one gold answer."""
        eq = self.equal_answers(gold)
        if not eq:
            return 0.0, 0.0
        if eq not in self._split:
            others = [m for m in (sum(self.mass[a] for a in members if a not in eq) for members in self.groups.values())
                      if m > 0]
            p = min(sum(self.mass[a] for a in eq), 1.0)
            # maj@k depends only on the masses: golds with the same masses share one computation.
            self._split[eq] = (p, np.array(others), (round(p, 15), tuple(sorted(round(m, 15) for m in others))))
        p, others, ident = self._split[eq]
        if (ident, k) not in self._maj:
            self._maj[(ident, k)] = _maj_at_k(p, others, k, self.tol)
        return self._maj[(ident, k)]


def control_metrics(
    golds: Sequence[str | None], answer_counts: Mapping[str, float] | AnswerGuesser, ks: Sequence[int], *,
    levels: Sequence[str | None] | None = None, subjects: Sequence[str | None] | None = None,
    group_k: int | None = None, timeout: float = DEFAULT_TIMEOUT, workers: int | None = None,
    tol: float = DEFAULT_TOL, bootstrap: int = 0, confidence: float = 0.95, seed: int = 0, source: str | None = None,
    angles: str | None = None,
) -> dict:
    """The guesser's metrics on these questions, under the model's keys.

    Args:
      golds: one gold answer per question (None: no gold, never right).
      answer_counts: answer -> count, or a ready :class:`AnswerGuesser`.
      ks: the k values of ``pass_at_k`` / ``maj_at_k`` / ``pass_ratio_at_k``.
      levels, subjects: per question, for ``by_level`` / ``by_subject``.
      group_k: the n of the breakdown rows' ``pass_at_{n}`` / ``maj_at_{n}``
        (the model's samples per question); default ``max(ks)``.
      bootstrap, confidence, seed: intervals over questions as in
        :func:`compute_metrics` (same seed, same questions: the same resamples).
      source: recorded under ``source`` (e.g. the file name).
      angles: angle-unit policy (see :class:`AnswerGuesser`); ignored when a
        ready guesser is given.

    Returns:
      The model's keys (``pass_at_k``, ``pass_ratio``, ``pass_ratio_at_k``,
      ``maj_at_k``, ``first_sample_accuracy``, ``*_ci``, ``by_level``, ...):
      means over questions of exact per-question values, plus
      ``maj_at_k_error_bound`` (the largest per question) and ``distribution``.
    """
    g = answer_counts if isinstance(answer_counts, AnswerGuesser) else AnswerGuesser(
        answer_counts, timeout=timeout, workers=workers, tol=tol, angles=angles)
    ks = sorted({int(k) for k in ks if int(k) >= 1})
    group_k = int(group_k or (max(ks) if ks else 1))
    g.resolve(list(golds))
    ps = [g.probability(x) for x in golds]
    cols: dict[str, list[float]] = {"p": ps}
    bounds: dict[int, float] = {}
    for k in sorted(set(ks) | {group_k}):
        cols[f"pass@{k}"] = [_pass_at_k(p, k) for p in ps]
        maj = [g.maj_at_k(x, k) for x in golds]
        cols[f"maj@{k}"] = [v for v, _ in maj]
        bounds[k] = max((b for _, b in maj), default=0.0)
    mean = {name: (sum(v) / len(v) if v else 0.0) for name, v in cols.items()}
    out: dict = {
        "label": CONTROL_LABEL, "source": source, "num_questions": len(golds), "ks": ks,
        "pass_at_k": {str(k): mean[f"pass@{k}"] for k in ks},
        "pass_ratio": mean["p"],
        "maj_at_k": {str(k): mean[f"maj@{k}"] for k in ks},
        "pass_ratio_at_k": {str(k): mean["p"] for k in ks},
        "first_sample_accuracy": mean["p"],
        "maj_at_k_error_bound": {str(k): bounds[k] for k in ks},
        "questions_with_gold_in_distribution": sum(p > 0 for p in ps),
        "distribution": {"answers": g.total, "distinct_answers": len(g.answers), "answer_groups": len(g.groups)},
        "comparison_outcomes": dict(g.outcomes),
    }
    boot = {"p": ps, **{f"{m}@{k}": cols[f"{m}@{k}"] for k in ks for m in ("pass", "maj")}}
    ci = _bootstrap(boot, bootstrap, seed, confidence) if golds else {}
    if ci:
        out["confidence"], out["bootstrap_resamples"] = confidence, bootstrap
        out["pass_at_k_ci"] = {str(k): ci[f"pass@{k}"] for k in ks}
        out["maj_at_k_ci"] = {str(k): ci[f"maj@{k}"] for k in ks}
        out["pass_ratio_ci"] = out["first_sample_accuracy_ci"] = ci["p"]
    m = lambda name, idx: sum(cols[name][i] for i in idx) / len(idx)  # noqa: E731
    for key, labels in (("by_level", levels), ("by_subject", subjects)):
        rows: dict[str, list[int]] = {}
        for i, lab in enumerate(labels or []):
            if lab is not None:
                rows.setdefault(str(lab), []).append(i)
        if rows:  # the keys of the model's breakdown rows (metrics._summary), group_k as their n
            out[key] = {lab: {"questions": len(ix), "pass_at_1": m("p", ix), f"pass_at_{group_k}": m(
                f"pass@{group_k}", ix), "pass_ratio": m("p", ix), f"maj_at_{group_k}": m(f"maj@{group_k}", ix),
                "first_sample_accuracy": m("p", ix)} for lab, ix in sorted(rows.items())}
    return out


__all__ = ["AnswerDistributionError", "AnswerGuesser", "CONTROL_LABEL", "control_metrics",
           "load_answer_distribution"]
