"""Dataset -> JSONL of samples: resumable, sharded across processes, mergeable.

One output line per question::

    {"id", "question", "answer", "prompt", "samples": [{"text", "num_tokens", "finish_reason"}, ...], ...extras}

Each line is appended, flushed and fsynced as soon as the question's last
sample is done, so a killed run loses at most the questions in flight. (An
output on an object store, ``gs://...``, is appended in batches every
``mathjax.io.appends.REMOTE_APPEND_SECONDS``, each one atomic: a killed run
loses at most that much, never half a line.) A
restarted run reads its output, cuts a torn last line, and skips the
questions already there: none is duplicated or lost. The sampling settings
are kept in ``<output>.meta.json``; resuming with different settings is an
error rather than a silently mixed file. Batch size and mesh are not settings:
results do not depend on them.

Multi-process: process ``i`` of ``n`` owns questions ``i, i+n, i+2n, ...`` and
writes ``<stem>.shard-0000i-of-0000n<ext>``; :func:`merge` joins the shards.
When the model's mesh spans the processes (one model over a pod slice), they
all decode every question together in lockstep, and each writes the lines of
the questions it owns; on resume the processes first agree on which questions
are done anywhere. Otherwise (a mesh of this process's devices) each process
samples only its own questions, independently.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
import time
from collections.abc import Callable, Sequence

from mathjax.data.templates import get_template
from mathjax.io import appends, paths
from mathjax.sample.host_arrays import spans_processes
from mathjax.sample.sampler import Sampler, SamplerStats
from mathjax.sample.sampling import SamplingRules

_CORE_FIELDS = ("id", "question", "answer", "prompt", "samples")


# ----- records -----


def read_jsonl_records(path: str) -> list[dict]:
    """Questions from a JSONL file: ``question`` required, ``id`` (default: line number), ``answer`` optional."""
    records = []
    if not paths.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    with paths.open_file(path) as f:
        for line_no, line in enumerate(f):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{line_no + 1}: invalid JSON: {e}") from None
            if not isinstance(record, dict) or not isinstance(record.get("question"), str):
                raise ValueError(f"{path}:{line_no + 1}: expected an object with a string 'question'")
            record.setdefault("id", line_no)
            records.append(record)
    check_unique_ids(records, path)
    return records


def check_unique_ids(records: Sequence[dict], source: str = "records") -> None:
    seen: set[str] = set()
    for r in records:
        key = str(r["id"])
        if key in seen:
            raise ValueError(f"{source}: duplicate question id {key!r}")
        seen.add(key)


# ----- output files -----


def shard_path(output_path: str, index: int, count: int) -> str:
    """The file process ``index`` of ``count`` writes (the output itself for one process)."""
    if count == 1:
        return output_path
    stem, ext = paths.splitext(output_path)
    return f"{stem}.shard-{index:05d}-of-{count:05d}{ext}"


def read_output(path: str, repair: bool = True) -> list[dict]:
    """Complete lines of an output file; a torn last line is cut off (``repair``) or ignored.

    Only the last line can be torn (appends are whole lines, flushed in
    order); a bad line elsewhere is corruption and raises.
    """
    if not paths.exists(path):
        return []
    data = paths.read_bytes(path)
    rows, good_end, pos = [], 0, 0
    while pos < len(data):
        nl = data.find(b"\n", pos)
        end = len(data) if nl < 0 else nl + 1
        line = data[pos:end]
        try:
            if nl < 0:
                raise ValueError("no newline")
            if line.strip():
                row = json.loads(line)
                if not isinstance(row, dict) or "id" not in row:
                    raise ValueError("not a question record")
                rows.append(row)
        except ValueError:
            if end < len(data):
                raise ValueError(f"{path}: corrupt line at byte {pos} (not the last line)") from None
            logging.warning("%s: cutting a torn last line (%d bytes)", path, len(line))
            break
        good_end = end
        pos = end
    if repair and good_end < len(data):
        paths.truncate(path, good_end)
    return rows


def _meta_path(path: str) -> str:
    return path + ".meta.json"


def _check_meta(path: str, meta: dict) -> None:
    """Writes the run's settings beside the output, or checks them against an earlier run's."""
    mp = _meta_path(path)
    if paths.exists(mp):
        try:
            old = json.loads(paths.read_text(mp))
        except json.JSONDecodeError as e:
            raise ValueError(f"{mp}: invalid JSON ({e})") from None
        diff = {k: (old.get(k), v) for k, v in meta.items() if old.get(k) != v}
        if diff and paths.exists(path) and paths.getsize(path) > 0:
            raise ValueError(
                f"{path}: exists with different sampling settings {diff} (old, new); "
                "use another output path or delete it"
            )
    paths.write_text(mp, json.dumps(meta, indent=2, sort_keys=True))


# ----- running -----


@dataclasses.dataclass
class RunResult:
    output_path: str
    written: int  # questions written by this call
    skipped: int  # questions already in the output
    stats: SamplerStats


def run(
    model,
    tokenizer,
    records: Sequence[dict],
    output_path: str,
    *,
    num_samples: int = 256,
    rules: SamplingRules = SamplingRules(temperature=0.7),
    template: str = "xwin_math",
    max_new_tokens: int = 512,
    seed: int = 0,
    batch_size: int = 256,
    ignore_eos: bool = False,
    stop: Sequence[str] | None = None,
    process_index: int | None = None,
    process_count: int | None = None,
    progress: bool | Callable = True,
    sampler_options: dict | None = None,
) -> RunResult:
    """Samples every record and appends one line per question to this process's output shard.

    Args:
      model, tokenizer: a loaded model (``mathjax.load``) and its tokenizer.
      records: dicts with ``id``, ``question`` and optionally ``answer``; other
        fields are copied to the output.
      output_path: the JSONL to write (a shard of it with several processes).
      template: prompt template (``mathjax.data.templates``), as in training.
      stop: stop strings; None uses the template's.
      process_index, process_count: this process's share (default: JAX's).
      progress: show a tqdm bar, or a callable given (done, total, stats).
      sampler_options: extra ``Sampler`` arguments (rows_per_prompt, kv_dtype, ...).
    """
    import jax

    check_unique_ids(records)
    index = jax.process_index() if process_index is None else process_index
    count = jax.process_count() if process_count is None else process_count
    if not 0 <= index < count:
        raise ValueError(f"process_index {index} outside [0, {count})")
    path = shard_path(output_path, index, count)
    tmpl = get_template(template)
    stop = tuple(tmpl.stop if stop is None else stop)
    meta = {
        "model": getattr(model, "path", None), "num_samples": num_samples, "temperature": rules.temperature,
        "top_p": rules.top_p, "top_k": rules.top_k, "template": template, "max_new_tokens": max_new_tokens,
        "seed": seed, "ignore_eos": ignore_eos, "stop": list(stop), "process_count": count,
    }
    paths.makedirs(paths.dirname(paths.normalize(path)))
    _check_meta(path, meta)
    done = {str(r["id"]) for r in read_output(path, repair=True)}
    owner = {str(r["id"]): i % count for i, r in enumerate(records)}
    mine = [r for i, r in enumerate(records) if i % count == index]
    if spans_processes(model.mesh):
        # One model over all processes: every question is decoded by all of them.
        done = _done_anywhere(records, done)
        todo = [r for r in records if str(r["id"]) not in done]
    else:
        todo = [r for r in mine if str(r["id"]) not in done]
    sampler = Sampler(
        model, tokenizer, rules, batch_size=batch_size, max_new_tokens=max_new_tokens, stop=stop,
        ignore_eos=ignore_eos, **(sampler_options or {}),
    )
    prompts = [tmpl.format_prompt(r["question"]) for r in todo]
    my_todo = sum(owner[str(r["id"])] == index for r in todo)
    bar, report = _progress(progress, my_todo, len(mine) - my_todo)
    written = 0
    start = time.perf_counter()
    with appends.AppendFile(path) as out:
        try:
            for i, samples in sampler.generate(
                prompts, num_samples, seed, [str(r["id"]) for r in todo], progress=report,
            ):
                r = todo[i]
                if owner[str(r["id"])] != index:
                    continue  # another process's line (a mesh spanning processes decodes all)
                line = {
                    "id": r["id"], "question": r["question"], "answer": r.get("answer"), "prompt": prompts[i],
                    "samples": [s.to_json() for s in samples],
                    **{k: v for k, v in r.items() if k not in _CORE_FIELDS},
                }
                out.write(json.dumps(line, ensure_ascii=False) + "\n")
                out.commit()
                written += 1
                if bar is not None:
                    bar.update(1)
                elif callable(progress):
                    progress(written, len(todo), sampler.stats)
        finally:
            if bar is not None:
                bar.close()
    logging.info("%s: %d questions written, %d already there, %.1fs; %s", path, written,
                 len(mine) - my_todo, time.perf_counter() - start, sampler.stats.summary())
    return RunResult(output_path=path, written=written, skipped=len(mine) - my_todo, stats=sampler.stats)


def _done_anywhere(records: Sequence[dict], done_here: set[str]) -> set[str]:
    """Ids done in any process's shard; also checks that all processes read the same questions."""
    import numpy as np
    from jax.experimental import multihost_utils

    ids = [str(r["id"]) for r in records]
    if not ids:
        return set()
    digest = np.frombuffer(hashlib.sha256("\n".join(ids).encode("utf-8")).digest()[:8], np.int32)
    digests = np.asarray(multihost_utils.process_allgather(digest))
    if (digests != digests[0]).any():
        raise ValueError("the processes read different question lists (input files or --limit differ); a mesh "
                         "spanning processes needs the same questions in every process")
    flags = np.asarray([i in done_here for i in ids], np.int32)
    everywhere = np.asarray(multihost_utils.process_allgather(flags)).reshape(-1, len(ids))
    return {i for i, d in zip(ids, everywhere.max(axis=0)) if d}


def _progress(progress, total: int, skipped: int):
    """A tqdm bar (questions/s) whose postfix shows tokens/s and slot utilisation."""
    if progress is not True:
        return None, None
    from tqdm.auto import tqdm

    bar = tqdm(total=total, unit="q", desc="sampling", dynamic_ncols=True)
    if skipped:
        bar.write(f"resuming: {skipped} questions already done")

    last = [0.0]

    def report(stats: SamplerStats) -> None:
        now = time.monotonic()
        if now - last[0] < 2.0:  # decode calls are frequent; keep the bar (and logs) calm
            return
        last[0] = now
        bar.set_postfix(tok_s=f"{stats.tokens_per_second:.0f}", util=f"{stats.slot_utilisation:.0%}", refresh=False)
        bar.refresh()

    return bar, report


# ----- merging -----


def find_shards(output_path: str) -> list[str]:
    """Shard files of ``output_path`` in shard order; raises if some of ``n`` are missing."""
    stem, ext = paths.splitext(output_path)
    pattern = re.compile(re.escape(paths.basename(stem)) + r"\.shard-(\d{5})-of-(\d{5})" + re.escape(ext) + "$")
    directory = paths.dirname(output_path)
    found = {}
    names = paths.listdir(directory or ".") if paths.isdir(directory or ".") else []
    for name in names:
        m = pattern.match(name)
        if m:
            found[(int(m.group(2)), int(m.group(1)))] = paths.join(directory, name) if directory else name
    counts = {n for n, _ in found}
    if not counts:
        raise FileNotFoundError(f"no shards of {output_path} found")
    if len(counts) > 1:
        raise ValueError(f"shards of {output_path} from runs with different process counts: {sorted(counts)}")
    n = counts.pop()
    missing = [i for i in range(n) if (n, i) not in found]
    if missing:
        raise FileNotFoundError(f"{output_path}: shards {missing} of {n} are missing")
    return [found[(n, i)] for i in range(n)]


def merge(output_path: str, shards: Sequence[str] | None = None, order: Sequence | None = None) -> int:
    """Joins shard files into ``output_path`` (written atomically); returns the number of questions.

    Lines are ordered by ``order`` (question ids, e.g. the input's) when given,
    else by the round-robin order the shards were cut in. A duplicate id (two
    runs over the same question) keeps the first copy.
    """
    shards = list(shards) if shards is not None else find_shards(output_path)
    per_shard = [read_output(p, repair=False) for p in shards]
    rows, seen = [], set()
    longest = max((len(s) for s in per_shard), default=0)
    for i in range(longest):  # interleave: shard k holds questions k, k+n, ...
        for s in per_shard:
            if i < len(s) and str(s[i]["id"]) not in seen:
                seen.add(str(s[i]["id"]))
                rows.append(s[i])
    if order is not None:
        rank = {str(q): i for i, q in enumerate(order)}
        rows.sort(key=lambda r: rank.get(str(r["id"]), len(rank)))
        missing = len(set(rank) - seen)
        if missing:
            logging.warning("%s: %d of %d questions are in no shard (unfinished runs?)", output_path, missing, len(rank))
    with paths.atomic_writer(output_path) as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return len(rows)
