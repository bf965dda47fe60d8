"""Grading a whole samples file in parallel.

Two stages, both in worker processes (:mod:`pool`):

1. Per chunk of questions: read the lines, extract every sample's answer,
   de-duplicate answers within the question (256 samples typically hold a
   handful of distinct answers), compare each distinct answer with the gold on
   the bounded fast path, group answers by equivalence key (for maj@k), and
   check the arithmetic in every sample.
2. The few (answer, gold) pairs the fast path could not settle, de-duplicated
   across the run, each as its own task with a hard timeout (sympy).

The parent only reads line offsets and assembles results; workers read their
own lines, so big files are never pickled through pipes.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import sys
from collections.abc import Iterable

from mathjax.grader import angles as _angles
from mathjax.grader import pool as pool_lib
from mathjax.grader.analysis import count_steps
from mathjax.grader.api import DEFAULT_TIMEOUT, slow_compare_job
from mathjax.grader.arithmetic import arithmetic_profile
from mathjax.grader.equiv import Verdict, compare
from mathjax.grader.keys import answer_key
from mathjax.grader.extract import extract_answer
from mathjax.grader.samples_io import (
    gold_answer,
    level_of,
    line_offsets,
    read_lines,
    sample_texts,
    subject_of,
    worked_solution,
)

# A chunk that takes longer than this is retried question by question.
CHUNK_TIMEOUT = 300.0


@dataclasses.dataclass
class QuestionResult:
    """Grading of one question's samples.

    Attributes:
      index: line number in the samples file (0-based, blank lines skipped).
      id: the record's ``id``.
      gold: the reference answer used.
      level, subject: MATH metadata when present.
      steps: reasoning steps of the question (``steps`` field or counted in a
        reference solution), else None.
      answers: extracted answer per sample (None: nothing extracted).
      correct: per sample, equal to the gold.
      clusters: per sample, its answer's equivalence group; 0 is the gold's
        group, -1 no answer.
      sample_steps: reasoning steps counted in each sample.
      slips, slips_rounding: per sample, an arithmetic slip (exact / allowing
        rounded decimals); None when the analysis was off.
      equations, first_wrong: per sample, the equations the arithmetic checker
        checked and the index of the first wrong one (None: all right); None
        when the analysis was off.
      finish_reasons: the sampler's finish reason per sample.
      status: "ok", or why the question could not be graded (all False then).
      outcomes: counts of unusual comparison outcomes (oversize, timeout, ...).
    """

    index: int
    id: str | None
    gold: str | None
    level: str | None = None
    subject: str | None = None
    steps: int | None = None
    answers: list = dataclasses.field(default_factory=list)
    correct: list = dataclasses.field(default_factory=list)
    clusters: list = dataclasses.field(default_factory=list)
    sample_steps: list | None = None
    slips: list | None = None
    slips_rounding: list | None = None
    equations: list | None = None
    first_wrong: list | None = None
    finish_reasons: list | None = None
    status: str = "ok"
    outcomes: dict = dataclasses.field(default_factory=dict)

    @property
    def num_samples(self) -> int:
        return len(self.correct)

    @property
    def num_correct(self) -> int:
        return sum(self.correct)


@dataclasses.dataclass(frozen=True)
class _Options:
    fallback: str | None
    analyses: bool
    angles: str = _angles.DEFAULT


def _prepare_question(index: int, record: dict, opts: _Options) -> dict:
    gold = gold_answer(record)
    texts = sample_texts(record)
    answers = []
    for t in texts:
        try:
            answers.append(extract_answer(t, fallback=opts.fallback))
        except Exception:
            answers.append(None)
    uniq: dict[str, int] = {}
    sample_u = []
    for a in answers:
        if a is None:
            sample_u.append(-1)
        else:
            sample_u.append(uniq.setdefault(a, len(uniq)))
    ulist = list(uniq)
    verdicts = [
        int(compare(a, gold, angles=opts.angles)) if gold else int(Verdict.NOT_EQUAL) for a in ulist
    ]
    groups: dict = {}
    group_of = [groups.setdefault(answer_key(a), len(groups)) for a in ulist]
    steps = record.get("steps")
    if not isinstance(steps, int) or isinstance(steps, bool):
        sol = worked_solution(record)
        steps = count_steps(sol) if sol else None
    out = {
        "index": index,
        "id": record.get("id"),
        "gold": gold,
        "level": level_of(record),
        "subject": subject_of(record),
        "steps": steps,
        "answers": answers,
        "uniq": ulist,
        "sample_u": sample_u,
        "verdicts": verdicts,
        "group_of": group_of,
        "finish_reasons": [s.get("finish_reason") if isinstance(s, dict) else None for s in record.get("samples") or []],
        "sample_steps": [count_steps(t) for t in texts],
    }
    if opts.analyses:
        profiles = [arithmetic_profile(t) for t in texts]
        out["slips"] = [p.slip for p in profiles]
        out["slips_rounding"] = [p.slip_rounding for p in profiles]
        out["equations"] = [p.equations for p in profiles]
        out["first_wrong"] = [p.first_wrong for p in profiles]
    return out


def _prepare_chunk(path: str | None, items: list, opts: _Options) -> list[dict]:
    """Worker task: items are (index, (offset, length)) with a path, else (index, record)."""
    if path is not None:
        records = read_lines(path, [span for _, span in items])
        return [_prepare_question(i, rec, opts) for (i, _), rec in zip(items, records)]
    return [_prepare_question(i, rec, opts) for i, rec in items]


def _failed(index: int, why: str) -> dict:
    return {"index": index, "failed": why}


def _chunks(items: list, sizes: list[int], workers: int) -> list[list]:
    """Split into chunks of roughly equal bytes, at least 4 per worker."""
    total = sum(sizes) or 1
    target = max(total / max(4 * max(workers, 1), 1), 1)
    target = min(target, 8 << 20)
    out, cur, acc = [], [], 0
    for it, sz in zip(items, sizes):
        cur.append(it)
        acc += sz
        if acc >= target:
            out.append(cur)
            cur, acc = [], 0
    if cur:
        out.append(cur)
    return out


def _progress(total: int, enabled: bool, desc: str, unit: str = "q"):
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        enabled = False
    if not enabled:
        return _NoBar()
    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True)


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, s: str) -> None:
        pass

    def close(self) -> None:
        pass


def grade_run(
    samples: str | os.PathLike | Iterable[dict],
    *,
    workers: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    fallback: str | None = "last_number",
    analyses: bool = True,
    progress: bool = True,
    context: str = "spawn",
    angles: str | None = None,
) -> list[QuestionResult]:
    """Grade every sample of every question.

    Args:
      samples: a JSONL path (the sampler's format) or an iterable of records.
      workers: worker processes (default: all cores); 0 grades in this process.
      timeout: hard limit (seconds) per symbolic comparison.
      fallback: extraction fallback, ``"last_number"`` or None.
      analyses: also count steps and check arithmetic in every sample.
      progress: show a tqdm bar on stderr.
      context: ``"spawn"`` or ``"forkserver"``.
      angles: angle-unit policy, ``"degrees"`` or ``"convert"`` (see
        :mod:`mathjax.grader.angles`); None is this process's default.

    Returns:
      One :class:`QuestionResult` per question, in file order.

    Workers are started with ``spawn``: a calling script needs the usual
    ``if __name__ == "__main__":`` guard.
    """
    if workers is None:
        workers = pool_lib.default_workers()
    angles = _angles.check(angles)  # resolved here: workers get it explicitly
    opts = _Options(fallback=fallback, analyses=analyses, angles=angles)
    if isinstance(samples, (str, os.PathLike)):
        path = os.fspath(samples)
        spans = line_offsets(path)
        items = list(enumerate(spans))
        sizes = [length for _, length in spans]
    else:
        path = None
        items = list(enumerate(samples))
        sizes = [sum(len(t) for t in sample_texts(r)) + 100 for _, r in items]
    chunks = _chunks(items, sizes, workers)
    partial: dict[int, dict] = {}
    bar = _progress(len(items), progress, "grading")
    with pool_lib.WorkerPool(workers, context=context) as pool:
        retry: list = []
        args = [(path, chunk, opts) for chunk in chunks]
        for res in pool.imap_unordered(_prepare_chunk, args, timeout=CHUNK_TIMEOUT):
            if res.status == pool_lib.OK:
                for q in res.value:
                    partial[q["index"]] = q
                bar.update(len(res.value))
            else:
                retry.extend(chunks[res.index])
        if retry:
            # One question per task, so one hostile line cannot sink its neighbours.
            args = [(path, [it], opts) for it in retry]
            for res in pool.imap_unordered(_prepare_chunk, args, timeout=CHUNK_TIMEOUT):
                idx = retry[res.index][0]
                if res.status == pool_lib.OK:
                    partial[idx] = res.value[0]
                else:
                    partial[idx] = _failed(idx, f"{res.status}: {res.error}")
                bar.update(1)
        bar.close()
        slow = _slow_pass(pool, partial, timeout, progress, angles)
    return [_assemble(partial[i], slow) for i in sorted(partial)]


def _slow_pass(pool, partial: dict[int, dict], timeout: float, progress: bool, angles: str) -> dict:
    """Settle UNDECIDED (answer, gold) pairs with sympy, each under a hard timeout."""
    pairs: dict[tuple[str, str], int] = {}
    for q in partial.values():
        if "failed" in q:
            continue
        for a, v in zip(q["uniq"], q["verdicts"]):
            if v == Verdict.UNDECIDED:
                pairs.setdefault((a, q["gold"]), int(Verdict.UNDECIDED))
    if not pairs:
        return {}
    keys = list(pairs)
    bar = _progress(len(keys), progress, "symbolic", unit="cmp")
    args = [(a, g, angles) for a, g in keys]
    for res in pool.imap_unordered(slow_compare_job, args, timeout=timeout):
        if res.status == pool_lib.OK:
            pairs[keys[res.index]] = int(res.value)
        elif res.status == pool_lib.TIMEOUT:
            pairs[keys[res.index]] = int(Verdict.TIMEOUT)
        else:
            pairs[keys[res.index]] = int(Verdict.ERROR)
        bar.update(1)
    bar.close()
    return pairs


def _assemble(q: dict, slow: dict) -> QuestionResult:
    if "failed" in q:
        return QuestionResult(index=q["index"], id=None, gold=None, status=q["failed"], outcomes={"failed": 1})
    outcomes: collections.Counter = collections.Counter()
    final = []
    for a, v in zip(q["uniq"], q["verdicts"]):
        if v == Verdict.UNDECIDED:
            outcomes["slow"] += 1
            v = slow.get((a, q["gold"]), int(Verdict.UNDECIDED))
        if v not in (Verdict.EQUAL, Verdict.NOT_EQUAL):
            outcomes[Verdict(v).name.lower()] += 1
        final.append(v == Verdict.EQUAL)
    cluster_of = [0 if ok else 1 + g for ok, g in zip(final, q["group_of"])]
    correct = [u >= 0 and final[u] for u in q["sample_u"]]
    clusters = [cluster_of[u] if u >= 0 else -1 for u in q["sample_u"]]
    return QuestionResult(
        index=q["index"],
        id=q["id"],
        gold=q["gold"],
        level=q["level"],
        subject=q["subject"],
        steps=q["steps"],
        answers=q["answers"],
        correct=correct,
        clusters=clusters,
        sample_steps=q["sample_steps"],
        slips=q.get("slips"),
        slips_rounding=q.get("slips_rounding"),
        equations=q.get("equations"),
        first_wrong=q.get("first_wrong"),
        finish_reasons=q["finish_reasons"],
        outcomes=dict(outcomes),
    )


def grade_samples(
    samples: str | os.PathLike | Iterable[dict], workers: int | None = None, **kwargs
) -> list[list[bool]]:
    """Per-question lists of per-sample correctness (for the synthesis filter).

    ``grade_samples("samples.jsonl", workers=8)[q][s]`` is True when sample
    ``s`` of question ``q`` (file order) is correct. Keyword arguments are those
    of :func:`grade_run` (``timeout``, ``fallback``, ``angles``, ``progress``, ...);
    arithmetic analyses are off unless ``analyses=True``.
    """
    kwargs.setdefault("analyses", False)
    kwargs.setdefault("progress", False)
    return [r.correct for r in grade_run(samples, workers=workers, **kwargs)]


__all__ = ["QuestionResult", "grade_run", "grade_samples"]
