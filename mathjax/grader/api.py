"""Single-answer API: ``is_equiv``, ``grade``, ``majority_answer``.

Comparisons take the bounded in-process fast path first (exact rationals,
50-digit numerics, strings: microseconds, cached); only what it cannot settle
goes to sympy in a worker process with a hard timeout (:mod:`pool`).
"""

from __future__ import annotations

import collections
import threading

from mathjax.grader import angles as _angles
from mathjax.grader import pool
from mathjax.grader.equiv import Verdict, compare
from mathjax.grader.keys import answer_key
from mathjax.grader.extract import extract_answer

DEFAULT_TIMEOUT = 5.0

# Counts of unusual outcomes in this process (oversize, timeout, ...), for reports.
STATS: collections.Counter = collections.Counter()
_lock = threading.Lock()
_pool_lock = threading.Lock()


def slow_compare_job(pred: str, gold: str, angles: str = _angles.DEFAULT) -> int:
    """Worker task: the full comparison, sympy included. Returns a Verdict value.

    ``angles`` is passed explicitly (a worker does not see its parent's
    :func:`set_angle_policy`).
    """
    return int(compare(pred, gold, symbolic=True, angles=angles))


def compare_full(
    pred: str, gold: str, *, timeout: float = DEFAULT_TIMEOUT, angles: str | None = None
) -> Verdict:
    """Fast path, then (if needed) the sympy path under a hard ``timeout``.

    ``angles``: ``"degrees"`` or ``"convert"`` (:mod:`angles`); None is the
    process default (:func:`set_angle_policy`). An unknown name raises ValueError.
    """
    angles = _angles.check(angles)
    v = compare(pred, gold, angles=angles)
    if v == Verdict.UNDECIDED:
        STATS["slow"] += 1
        if pool.IN_WORKER:
            # Already inside a worker whose parent enforces the timeout.
            v = compare(pred, gold, symbolic=True, angles=angles)
        else:
            with _pool_lock:  # one pool, one caller at a time
                res = pool.shared_pool().call(slow_compare_job, pred, gold, angles, timeout=timeout)
            if res.status == pool.OK:
                v = Verdict(res.value)
            elif res.status == pool.TIMEOUT:
                v = Verdict.TIMEOUT
            else:
                v = Verdict.ERROR
    if v not in (Verdict.EQUAL, Verdict.NOT_EQUAL):
        with _lock:
            STATS[v.name.lower()] += 1
    return v


def is_equiv(
    pred_answer: str | None, gold_answer: str | None, *, timeout: float = DEFAULT_TIMEOUT, angles: str | None = None
) -> bool:
    """Whether two (extracted) answers are mathematically equal.

    See :mod:`mathjax.grader.equiv` for the policy. Never raises: malformed,
    oversized or timed-out comparisons are ``False`` (and counted in
    :data:`STATS`).

    Args:
      pred_answer: the model's final answer, e.g. ``"\\\\frac{1}{2}"``.
      gold_answer: the reference answer, e.g. ``"0.5"``.
      timeout: hard limit in seconds for the symbolic slow path.
      angles: angle-unit policy, ``"degrees"`` (default: ``30^\\circ == 30``,
        ``30^\\circ != \\frac{\\pi}{6}``) or ``"convert"`` (also
        ``30^\\circ == \\frac{\\pi}{6}``); None is the process default.

    Raises:
      ValueError: only for an unknown ``angles`` name (a caller's bug).
    """
    angles = _angles.check(angles)
    if not isinstance(pred_answer, str) or not isinstance(gold_answer, str):
        return False
    try:
        return compare_full(pred_answer, gold_answer, timeout=timeout, angles=angles) == Verdict.EQUAL
    except Exception:
        STATS["error"] += 1
        return False


def grade(
    text: str | None, gold_answer: str | None, *, timeout: float = DEFAULT_TIMEOUT, angles: str | None = None
) -> bool:
    """Extract the final answer from a model output and compare it with the gold.

    Never raises (but for an unknown ``angles``); a missing answer is ``False``.
    """
    angles = _angles.check(angles)
    try:
        pred = extract_answer(text) if isinstance(text, str) else None
    except Exception:
        STATS["error"] += 1
        return False
    if pred is None:
        return False
    return is_equiv(pred, gold_answer, timeout=timeout, angles=angles)


def vote_key(answer: str):
    """The key majority voting groups an extracted answer by: ``answer_key`` (equivalent spellings
    share it), or the raw string, voting alone, where no key can be built."""
    try:
        return answer_key(answer)
    except Exception:
        return ("raw", answer)


def majority_answer(answers: list[str | None]) -> tuple[str | None, int]:
    """The most common answer, answers grouped by equivalence (not by string).

    ``["1/2", "0.5", "\\\\frac12", "3"]`` gives ``("1/2", 3)``. ``None`` entries
    (no answer extracted) do not vote. Ties go to the group seen first.

    Returns:
      (a representative answer of the largest group, its size), or
      ``(None, 0)`` when no answer votes.
    """
    counts: dict = {}
    first: dict = {}
    for a in answers:
        if not isinstance(a, str) or not a.strip():
            continue
        k = vote_key(a)
        if k not in counts:
            counts[k] = 0
            first[k] = a
        counts[k] += 1
    if not counts:
        return None, 0
    best = max(counts, key=lambda k: counts[k])  # max keeps the first of equal counts
    return first[best], counts[best]


def set_angle_policy(policy: str) -> str:
    """Set this process's default angle policy (``angles=None``); returns the previous one.

    For callers that cannot pass ``angles=`` (e.g. :func:`evaluate`): the
    grading entry points read it in the calling process and hand it to their
    workers explicitly.
    """
    return _angles.set_default(policy)


def stats() -> dict[str, int]:
    """Unusual-outcome counts (oversize, timeout, undecided, error, slow) so far."""
    return dict(STATS)
