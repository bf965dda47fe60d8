"""RFT sample files -> graded, filtered ``rft.jsonl`` and ``stats.json`` (cheap; rewritten on every run).

A round's samples are the sampler runner's resumable JSONL files, one per
pass and pass size, per process (the runner's shard names)::

    <round>/samples/pass0_n4.jsonl                          one process
    <round>/samples/pass1_n8.shard-00001-of-00002.jsonl     process 1 of 2, second pass, 8 samples each
    <round>/samples/done-00001-of-00002.json                process 1 finished every pass

A question's samples are its lines in every pass, in pass order. Grading uses
the grader's bulk API (worker pool, no JAX); :func:`finalize_round` writes the
round's output atomically, so a rerun with other filter settings just
rewrites it.
"""

from __future__ import annotations

import collections
import json
import logging
import re
import time
from collections.abc import Sequence

from mathjax import grader
from mathjax.io import paths
from mathjax.rl import rft_select

OUTPUT_FILE = "rft.jsonl"
STATS_FILE = "stats.json"
_SAMPLE_FILE_RE = re.compile(r"pass(\d+)_n(\d+)(?:\.shard-(\d{5})-of-(\d{5}))?\.jsonl$")


def samples_dir(round_dir: str) -> str:
    return paths.join(round_dir, "samples")


def pass_path(round_dir: str, pass_index: int, num_samples: int) -> str:
    """The runner output of one pass size of one pass (``runner.shard_path`` adds the shard)."""
    return paths.join(samples_dir(round_dir), f"pass{pass_index}_n{num_samples}.jsonl")


def done_marker(round_dir: str, index: int, count: int) -> str:
    """Written by process ``index`` when all its passes of the round are sampled."""
    return paths.join(samples_dir(round_dir), f"done-{index:05d}-of-{count:05d}.json")


def sample_files(round_dir: str, index: int | None = None, count: int = 1) -> list[str]:
    """Sample files of a round in pass order: all processes' (``index=None``) or one process's."""
    directory = samples_dir(round_dir)
    if not paths.isdir(directory):
        return []
    found = []
    for name in paths.listdir(directory):
        m = _SAMPLE_FILE_RE.match(name)
        if not m:
            continue
        shard = (int(m.group(3)), int(m.group(4))) if m.group(3) else (0, 1)
        if shard[1] != count:
            raise ValueError(f"{directory}/{name}: from a run with {shard[1]} processes, this one has {count}")
        if index is None or shard[0] == index:
            found.append(((int(m.group(1)), int(m.group(2)), shard[0]), paths.join(directory, name)))
    return [p for _, p in sorted(found)]


def read_samples(files: Sequence[str]) -> dict[str, list[dict]]:
    """Question id -> its samples over all files, in file order."""
    from mathjax.sample import runner  # file helpers only (torn-line handling); JAX is already loaded by callers

    out: dict[str, list[dict]] = collections.defaultdict(list)
    for path in files:
        for row in runner.read_output(path, repair=False):
            out[str(row["id"])].extend(row.get("samples") or [])
    return dict(out)


def select_all(
    records: Sequence[dict],
    samples: dict[str, list[dict]],
    *,
    require_correct_arithmetic: bool,
    include_gold: bool,
    workers: int | None,
    timeout: float = grader.DEFAULT_TIMEOUT,
    progress: bool = False,
) -> dict[str, rft_select.Selection]:
    """Grades every question's samples in bulk and selects its RFT paths (question id -> Selection)."""
    golds = {str(r["id"]): rft_select.gold_answer(r) for r in records}
    to_grade = []
    for r in records:
        qid = str(r["id"])
        if golds[qid] is None or not samples.get(qid):
            continue
        # Grade exactly the text that would be kept: the sample cut after its final line.
        texts = [rft_select.final_response(t) or "" for t in rft_select.sample_texts(samples[qid])]
        to_grade.append({"id": qid, "final_answer": golds[qid], "samples": [{"text": t} for t in texts]})
    correct: dict[str, list[bool]] = {}
    if to_grade:
        # fallback=None: only an explicit final answer counts, never "the last number".
        results = grader.grade_run(to_grade, workers=workers, timeout=timeout, fallback=None, analyses=False,
                                   progress=progress)
        correct = {str(res.id): list(res.correct) for res in results}
    out = {}
    for r in records:
        qid = str(r["id"])
        qs = samples.get(qid, [])
        out[qid] = rft_select.classify_paths(
            r, qs, golds[qid], correct=correct.get(qid, [False] * len(qs)),
            require_correct_arithmetic=require_correct_arithmetic, dedup_with_reference=include_gold)
    return out


def check_complete(records: Sequence[dict], round_dir: str, count: int, samples: dict[str, list[dict]]) -> None:
    """Raises unless every process finished the round and every question has samples."""
    missing = [i for i in range(count) if not paths.exists(done_marker(round_dir, i, count))]
    if missing:
        raise ValueError(f"{round_dir}: processes {missing} of {count} have not finished sampling; run them "
                         "(the same command resumes) before merging")
    absent = [str(r["id"]) for r in records
              if str(r["id"]) not in samples and rft_select.gold_answer(r) is not None]
    if absent:
        raise ValueError(f"{round_dir}: {len(absent)} questions have no samples (first: {absent[:5]})")


def _write_atomic(path: str, text_lines: Sequence[str]) -> None:
    with paths.atomic_writer(path) as f:
        for line in text_lines:
            f.write(line)


def finalize_round(
    records: Sequence[dict],
    round_dir: str,
    *,
    round_index: int,
    process_count: int,
    require_correct_arithmetic: bool,
    include_gold: bool,
    workers: int | None,
    timeout: float = grader.DEFAULT_TIMEOUT,
    progress: bool = False,
    extra_stats: dict | None = None,
    copies: Sequence[str] = (),
) -> dict:
    """Merges every process's samples, grades, filters; writes ``rft.jsonl`` and ``stats.json``.

    ``rft.jsonl`` is the SFT trainer's input as is (``question``, ``answer``):
    per question, in input order, its gold solution (``include_gold``, as a
    ``The answer is: X.`` target) then each kept path. ``copies`` are other
    directories that get the same two files (the run's top level). Returns the
    stats.
    """
    start = time.perf_counter()
    samples = read_samples(sample_files(round_dir, None, process_count))
    check_complete(records, round_dir, process_count, samples)
    selections = select_all(records, samples, require_correct_arithmetic=require_correct_arithmetic,
                            include_gold=include_gold, workers=workers, timeout=timeout, progress=progress)
    lines, per_question = [], []
    totals: collections.Counter = collections.Counter()
    no_gold = gold_examples = 0
    for r in records:
        qid = str(r["id"])
        sel = selections[qid]
        gold = rft_select.gold_answer(r)
        no_gold += gold is None
        reference = rft_select.reference_target(r) if include_gold and gold is not None else None
        if reference is not None:
            gold_examples += 1
            lines.append(json.dumps({"id": f"{qid}/gold", "question": r["question"], "answer": reference,
                                     "source": "gold", "source_id": r["id"]}, ensure_ascii=False) + "\n")
        for j, text in enumerate(sel.kept):
            lines.append(json.dumps({"id": f"{qid}/r{round_index}-{j}", "question": r["question"], "answer": text,
                                     "source": "sample", "source_id": r["id"], "round": round_index},
                                    ensure_ascii=False) + "\n")
        counts = sel.counts()
        totals.update(counts)
        n = len(sel.outcomes)
        per_question.append({"id": r["id"], "gold": gold, "samples": n, "correct": sel.num_correct,
                             "pass_rate": round(sel.num_correct / n, 4) if n else None, "kept": len(sel.kept),
                             "outcomes": {k: v for k, v in counts.items() if v}})
    num_samples = sum(q["samples"] for q in per_question)
    num_correct = sum(q["correct"] for q in per_question)
    stats = {
        "round": round_index,
        "questions": len(records),
        "questions_without_gold": no_gold,
        "questions_with_kept_paths": sum(q["kept"] > 0 for q in per_question),
        "samples": num_samples,
        "correct_samples": num_correct,
        "pass_rate": round(num_correct / num_samples, 4) if num_samples else None,
        "kept_paths": totals[rft_select.KEPT],
        "gold_examples": gold_examples,
        "examples": len(lines),
        "outcomes": {k: totals[k] for k in rft_select.OUTCOMES},
        "require_correct_arithmetic": require_correct_arithmetic,
        "include_gold": include_gold,
        **(extra_stats or {}),
        "finalize_seconds": round(time.perf_counter() - start, 3),
        "per_question": per_question,
    }
    assert sum(stats["outcomes"].values()) == num_samples
    for directory in (round_dir, *copies):
        _write_atomic(paths.join(directory, OUTPUT_FILE), lines)
        _write_atomic(paths.join(directory, STATS_FILE), [json.dumps(stats, indent=1) + "\n"])
    logging.info("%s: round %d: %d questions, %d samples (pass rate %s), %d distinct correct paths kept, "
                 "%d examples; outcomes %s", round_dir, round_index, len(records), num_samples, stats["pass_rate"],
                 stats["kept_paths"], len(lines), {k: v for k, v in stats["outcomes"].items() if v})
    return stats
