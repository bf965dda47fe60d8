"""Pass@k, PassRatio, maj@k, first-sample accuracy, bootstrap intervals.

Definitions (n samples of a question, c of them correct):

* Pass@k: the unbiased estimator ``1 - C(n-c, k) / C(n, k)`` (Chen et al.,
  2021), averaged over questions; Pass@n is "at least one of n is right".
* PassRatio@n: mean over questions of ``c / n`` (the paper's low-variance
  stand-in for Pass@1); PassRatio@k on the curve uses each question's first k
  samples.
* maj@k: the answer most samples agree on (grouped by equivalence, not by
  string) is right. Computed on every disjoint block of k consecutive samples
  and averaged; a tie between t groups that includes the right one scores 1/t
  (the expected score of a random tie-break). Samples without an answer do not
  vote.
* First-sample accuracy: sample 0 is right.

Intervals: percentile bootstrap over questions (resampling questions with
replacement), default 1000 resamples, 95%.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict

DEFAULT_BOOTSTRAP = 1000


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased Pass@k for one question: ``1 - C(n-c, k) / C(n, k)``.

    >>> pass_at_k(4, 1, 2)
    0.5
    """
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n} c={c} k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def default_ks(n: int) -> list[int]:
    """1, 2, 4, ... up to n, plus n itself."""
    ks = []
    k = 1
    while k <= n:
        ks.append(k)
        k *= 2
    if ks and ks[-1] != n:
        ks.append(n)
    return ks


def maj_at_k(clusters: list[int], k: int) -> float:
    """maj@k of one question from per-sample clusters (0 = right, -1 = no answer)."""
    blocks = len(clusters) // k
    if blocks == 0:
        return 0.0
    total = 0.0
    for b in range(blocks):
        votes = Counter(c for c in clusters[b * k : (b + 1) * k] if c >= 0)
        if not votes:
            continue
        top = max(votes.values())
        tied = [c for c, v in votes.items() if v == top]
        if 0 in tied:
            total += 1.0 / len(tied)
    return total / blocks


def _mean(xs) -> float:
    xs = list(xs)
    return sum(xs) / len(xs) if xs else 0.0


def _bootstrap(columns: dict[str, list[float]], n_boot: int, seed: int, confidence: float) -> dict:
    """Percentile intervals of each column's mean, resampling rows together."""
    if n_boot <= 0 or not columns:
        return {}
    import numpy as np

    names = list(columns)
    vals = np.asarray([columns[n] for n in names], dtype=np.float64).T  # (Q, M)
    q = vals.shape[0]
    if q == 0:
        return {}
    rng = np.random.default_rng(seed)
    means = np.empty((n_boot, vals.shape[1]))
    step = max(1, min(n_boot, 20_000_000 // max(q, 1)))
    for start in range(0, n_boot, step):
        b = min(step, n_boot - start)
        weights = rng.multinomial(q, np.full(q, 1.0 / q), size=b)  # (b, Q)
        means[start : start + b] = weights @ vals / q
    lo = (1 - confidence) / 2 * 100
    los = np.percentile(means, lo, axis=0)
    his = np.percentile(means, 100 - lo, axis=0)
    return {n: [float(a), float(b)] for n, a, b in zip(names, los, his)}


def _summary(results, n_min: int) -> dict:
    """Headline numbers for a group of questions (breakdown tables)."""
    rs = [r for r in results if r.num_samples]
    if not rs:
        return {"questions": 0}
    return {
        "questions": len(rs),
        "pass_at_1": _mean(pass_at_k(r.num_samples, r.num_correct, 1) for r in rs),
        f"pass_at_{n_min}": _mean(pass_at_k(r.num_samples, r.num_correct, n_min) for r in rs),
        "pass_ratio": _mean(r.num_correct / r.num_samples for r in rs),
        f"maj_at_{n_min}": _mean(maj_at_k(r.clusters, n_min) for r in rs),
        "first_sample_accuracy": _mean(float(r.correct[0]) for r in rs),
    }


def compute_metrics(
    results,
    *,
    ks: list[int] | None = None,
    bootstrap: int = DEFAULT_BOOTSTRAP,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict:
    """All headline metrics of a graded run (a list of ``QuestionResult``).

    Returns a JSON-ready dict with at least ``num_questions``, ``num_samples``,
    ``pass_at_k`` ({"1": ..., "2": ..., ...}), ``pass_ratio``, ``maj_at_k``,
    ``first_sample_accuracy``, their ``*_ci`` bootstrap intervals,
    ``pass_ratio_at_k`` (first-k prefix curve), ``by_level``, ``by_subject``
    and grading outcome counts. Keys of k are strings (JSON).
    """
    rs = [r for r in results if r.num_samples]
    n_total = sum(r.num_samples for r in results)
    out: dict = {
        "num_questions": len(results),
        "num_samples": n_total,
        "questions_without_samples": len(results) - len(rs),
    }
    if not rs:
        out.update({"pass_at_k": {}, "pass_ratio": 0.0, "maj_at_k": {}, "first_sample_accuracy": 0.0})
        return out
    n_min = min(r.num_samples for r in rs)
    n_max = max(r.num_samples for r in rs)
    ks = [k for k in (ks or default_ks(n_min)) if 1 <= k <= n_min]
    cols: dict[str, list[float]] = {}
    for k in ks:
        cols[f"pass@{k}"] = [pass_at_k(r.num_samples, r.num_correct, k) for r in rs]
        cols[f"maj@{k}"] = [maj_at_k(r.clusters, k) for r in rs]
        cols[f"ratio@{k}"] = [sum(r.correct[:k]) / k for r in rs]
    cols["pass_ratio"] = [r.num_correct / r.num_samples for r in rs]
    cols["first"] = [float(r.correct[0]) for r in rs]
    means = {name: _mean(v) for name, v in cols.items()}
    ci = _bootstrap(cols, bootstrap, seed, confidence)
    out.update(
        {
            "samples_per_question": n_min if n_min == n_max else [n_min, n_max],
            "ks": ks,
            "pass_at_k": {str(k): means[f"pass@{k}"] for k in ks},
            "pass_ratio": means["pass_ratio"],
            "maj_at_k": {str(k): means[f"maj@{k}"] for k in ks},
            "pass_ratio_at_k": {str(k): means[f"ratio@{k}"] for k in ks},
            "first_sample_accuracy": means["first"],
            "extraction_rate": sum(a is not None for r in rs for a in r.answers) / max(n_total, 1),
        }
    )
    if ci:
        out["confidence"] = confidence
        out["bootstrap_resamples"] = bootstrap
        out["pass_at_k_ci"] = {str(k): ci[f"pass@{k}"] for k in ks}
        out["maj_at_k_ci"] = {str(k): ci[f"maj@{k}"] for k in ks}
        out["pass_ratio_ci"] = ci["pass_ratio"]
        out["first_sample_accuracy_ci"] = ci["first"]
    for field, key in (("level", "by_level"), ("subject", "by_subject")):
        groups = defaultdict(list)
        for r in rs:
            v = getattr(r, field)
            if v is not None:
                groups[v].append(r)
        if groups:
            out[key] = {g: _summary(groups[g], n_min) for g in sorted(groups)}
    outcomes: Counter = Counter()
    for r in results:
        outcomes.update(r.outcomes)
    out["grading_outcomes"] = dict(outcomes)
    out["failed_questions"] = sum(r.status != "ok" for r in results)
    return out
