"""Seeds -> new questions -> verified questions -> k answers -> filtered, deduplicated SFT data.

Stages (each one resumable JSONL per process, keyed by seed id)::

    <output>/stages/1_questions.jsonl   (a) a new question written from each seed
    <output>/stages/2_verified.jsonl    (b) the question checked and maybe revised
    <output>/stages/3_answers.jsonl     (c) k step-by-step answers to it

then :func:`finalize` (cheap, rerun every time, no generator needed)::

    <output>/synthetic.jsonl   kept examples: the SFT trainer's input as is
    <output>/dropped.jsonl     every dropped seed with its reason and stage outputs
    <output>/stats.json        kept / dropped by reason, verdicts, agreement, leakage report

Every seed ends up in exactly one of ``synthetic.jsonl`` and ``dropped.jsonl``
(``stats["kept"] + sum(stats["dropped"].values()) == stats["seeds"]``).

A stage line is appended, flushed and fsynced as each seed finishes, so a
killed run loses only the seeds in flight; a rerun cuts a torn last line and
skips the seeds already done (nothing lost, nothing duplicated). Settings that
change the stage outputs (generator, prompts, sampling, k, seed) are kept in
``settings.json``; resuming with other settings is an error. Filter, dedup and
decontamination settings only affect :func:`finalize` and may change freely.

Several processes: process ``i`` of ``n`` takes seeds ``i, i+n, ...`` and
writes its own stage shards (``*.shard-0000i-of-0000n.jsonl``, as the
sampler); :func:`finalize` reads all shards once every process is done.

``<output>`` may be a URI (``gs://bucket/synth``): generators append to a
local copy of this process's stage files, uploaded after every stage and when
the run stops (a killed run redoes at most the stage it was in).
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import time
from collections.abc import Sequence

from mathjax.data.templates import FINAL_ANSWER_PREFIX
from mathjax.io import appends, paths
from mathjax.synth import filters
from mathjax.synth.decontam import build_index
from mathjax.synth.dedup import DedupOptions, near_duplicates
from mathjax.synth.filters import FilterOptions
from mathjax.synth.generators import Generator
from mathjax.synth.parse import parse_new_question, parse_verification
from mathjax.synth.prompts import PROMPT_SETS, PromptSet, get_prompt_set

def _runner():
    # The sampler runner's file helpers (shards, torn-line repair) are reused, but
    # importing it pulls in JAX: deferred so that HTTP-only runs start fast.
    from mathjax.sample import runner

    return runner


STAGES = ("1_questions", "2_verified", "3_answers")
OUTPUT_FILE = "synthetic.jsonl"
DROPPED_FILE = "dropped.jsonl"
STATS_FILE = "stats.json"
SETTINGS_FILE = "settings.json"
STYLES = ("gsm8k", "math", "auto")


@dataclasses.dataclass(frozen=True)
class SynthOptions:
    """What a synthesis run does.

    Attributes:
      style: prompt set for every seed (``gsm8k``, ``math``), or ``auto``: MATH
        prompts for seeds with a ``level``/``type`` or a ``\\boxed{}`` solution,
        GSM8K prompts otherwise.
      num_answers: k answers sampled per new question for the agreement vote.
      seed: run seed (sample randomness is a function of seed, seed id, stage).
      strict_verification: drop a question whose verification reply cannot be
        parsed (default: keep the draft; the agreement vote still applies).
      filters: per-example filter thresholds.
      dedup: near-duplicate settings (set ``dedup=None`` to skip).
      decontaminate: test sets to check against (files, or ``gsm8k``/``math``).
      ngram: n-gram size of the leakage check.
      decontaminate_answers: check the generated answers as well as the questions.
      enforce_decontamination: drop flagged examples (else flag and report).
      prompt_sets: style -> :class:`PromptSet` (default: ``prompts.PROMPT_SETS``).
    """

    style: str = "auto"
    num_answers: int = 4
    seed: int = 0
    strict_verification: bool = False
    filters: FilterOptions = FilterOptions()
    dedup: DedupOptions | None = DedupOptions()
    decontaminate: tuple[str, ...] = ()
    ngram: int = 13
    decontaminate_answers: bool = True
    enforce_decontamination: bool = False
    prompt_sets: dict[str, PromptSet] | None = None

    def __post_init__(self):
        if self.style not in STYLES:
            raise ValueError(f"style must be one of {STYLES}, got {self.style!r}")
        if self.num_answers < 1:
            raise ValueError(f"num_answers must be >= 1, got {self.num_answers}")

    def prompts(self, style: str) -> PromptSet:
        return get_prompt_set(style, self.prompt_sets if self.prompt_sets is not None else PROMPT_SETS)


# ----- seeds -----


def load_seeds(source: str, limit: int | None = None) -> list[dict]:
    """Seed questions: a JSONL file / directory (``train.jsonl``), or ``gsm8k`` / ``math`` (hub train split).

    Any layout :func:`mathjax.data.sources.load_eval_set` reads: GSM8K
    (``question``/``answer`` with ``#### N``), MATH (``problem``/``solution``),
    procedural data, or plain ``question``/``answer``. A bad line raises an
    error naming the file and line. Returns ``{"id", "question", "answer",
    "solution"?, ...}`` with unique string ids.
    """
    from mathjax.data.sources import load_eval_set

    seeds = load_eval_set(source, "train", limit=limit)
    for s in seeds:
        s["id"] = str(s["id"])
    _runner().check_unique_ids(seeds, source)
    return seeds


def seed_style(seed: dict, style: str = "auto") -> str:
    """The prompt set for a seed (see :attr:`SynthOptions.style`)."""
    if style != "auto":
        return style
    if "level" in seed or "type" in seed or "\\boxed" in str(seed.get("solution", "")):
        return "math"
    return "gsm8k"


def _seed_solution(seed: dict) -> str:
    return str(seed.get("solution") or seed.get("answer") or "")


# ----- files -----


def stage_path(output_dir: str, stage: str, index: int = 0, count: int = 1) -> str:
    """Process ``index``'s file of a stage (see the module docstring)."""
    return _runner().shard_path(paths.join(output_dir, "stages", f"{stage}.jsonl"), index, count)


def _write_atomic(path: str, write) -> None:
    with paths.atomic_writer(path) as f:
        write(f)


def _check_settings(output_dir: str, settings: dict) -> None:
    """Records the stage-shaping settings, or refuses to mix them with an earlier run's."""
    path = paths.join(output_dir, SETTINGS_FILE)
    if paths.exists(path):
        old = json.loads(paths.read_text(path))
        diff = {k: (old.get(k), v) for k, v in settings.items() if old.get(k) != v}
        stages = paths.join(output_dir, "stages")
        started = paths.isdir(stages) and any(
            paths.getsize(paths.join(stages, p)) for p in paths.listdir(stages) if p.endswith(".jsonl"))
        if diff and started:
            raise ValueError(f"{output_dir}: has stage outputs made with other settings {diff} (old, new); "
                             "use another --output or delete it")
    _write_atomic(path, lambda f: json.dump(settings, f, indent=2, sort_keys=True))


def _slim(row: dict) -> dict:
    # Only the replies are read back; dropping the prompts halves the memory of a large run.
    row.pop("prompt", None)
    row.pop("question", None)
    return row


def _rows_by_id(path: str) -> dict[str, dict]:
    return {str(r["id"]): _slim(r) for r in _runner().read_output(path, repair=True)}


def _texts(row: dict | None) -> list[str]:
    return [s.get("text") or "" for s in (row or {}).get("samples") or []]


# ----- running the stages -----


@dataclasses.dataclass
class RunSummary:
    """What one process did."""

    seeds: int  # this process's seeds
    generated: dict[str, int]  # records generated per stage by this call
    seconds: dict[str, float]  # wall time per stage
    stats: dict | None = None  # finalize's stats when this call finalized


def run(
    seeds: Sequence[dict],
    generator: Generator,
    output_dir: str,
    options: SynthOptions = SynthOptions(),
    *,
    process_index: int = 0,
    process_count: int = 1,
    progress: bool = True,
    finalize_output: bool | None = None,
) -> RunSummary:
    """Runs the three stages for this process's seeds, then (one process) :func:`finalize`.

    Args:
      seeds: from :func:`load_seeds` (``id``, ``question``, ``answer``/``solution``).
      generator: a :class:`mathjax.synth.generators.Generator`.
      output_dir: run directory (see the module docstring).
      options: see :class:`SynthOptions`.
      process_index, process_count: this process's share of the seeds.
      progress: progress bars.
      finalize_output: write the final files after the stages (default: when
        ``process_count == 1``; with several processes call :func:`finalize`
        once all are done).
    """
    _runner().check_unique_ids(seeds, "seeds")
    if not 0 <= process_index < process_count:
        raise ValueError(f"process_index {process_index} outside [0, {process_count})")
    paths.makedirs(paths.join(output_dir, "stages"))
    sets = options.prompt_sets if options.prompt_sets is not None else PROMPT_SETS
    settings = {
        **generator.settings(), "style": options.style, "num_answers": options.num_answers, "seed": options.seed,
        "prompts": {name: ps.fingerprint() for name, ps in sorted(sets.items())}, "process_count": process_count,
        "bare_answer_prompts": generator.bare_answer_prompts,
    }
    _check_settings(output_dir, settings)
    shards = [stage_path(output_dir, st, process_index, process_count) for st in STAGES]
    with appends.local_mirror(shards) as files:  # what the generator appends to (a local copy when remote)
        for file in files:
            appends.AppendFile(file).close()  # every shard exists, even when a stage has nothing to do
        return _run_stages(seeds, generator, output_dir, options, process_index, process_count, progress,
                           finalize_output, files, shards)


def _run_stages(seeds, generator, output_dir, options, process_index, process_count, progress, finalize_output,
                files: list[str], shards: list[str]) -> RunSummary:
    """The three stages over this process's seeds, appending to ``files`` (copied to ``shards`` when remote)."""
    mine = [s for i, s in enumerate(seeds) if i % process_count == process_index]
    summary = RunSummary(len(mine), {}, {})

    def stage(n: int, records: list[dict], num_samples: int) -> dict[str, dict]:
        name = STAGES[n]
        done = _rows_by_id(files[n])
        todo = [r for r in records if r["id"] not in done]
        logging.info("stage %s: %d to generate, %d already done", name, len(todo), len(records) - len(todo))
        start = time.perf_counter()
        generator.run_stage(todo, files[n], num_samples=num_samples, seed=options.seed * len(STAGES) + n,
                            progress=progress, desc=name)
        if files[n] != shards[n]:
            paths.copy_file(files[n], shards[n])  # upload: finalize reads the bucket's copy
        summary.generated[name] = len(todo)
        summary.seconds[name] = round(time.perf_counter() - start, 3)
        return _rows_by_id(files[n])

    # (a) a new question from each seed.
    records = []
    for s in mine:
        ps = options.prompts(seed_style(s, options.style))
        records.append({"id": s["id"], "question": ps.format_question(s["question"], _seed_solution(s))})
    drafts = stage(0, records, 1)

    # (b) check and revise it.
    records, draft_of = [], {}
    for s in mine:
        row = drafts.get(s["id"])
        texts = _texts(row)
        draft = parse_new_question(texts[0]) if texts and not row.get("error") else ""
        if draft:
            draft_of[s["id"]] = draft
            ps = options.prompts(seed_style(s, options.style))
            records.append({"id": s["id"], "question": ps.format_verify(draft)})
    verified = stage(1, records, 1)

    # (c) k step-by-step answers.
    records = []
    for s in mine:
        question = _verified_question(verified.get(s["id"]), draft_of.get(s["id"]), options)[1]
        if question:
            ps = options.prompts(seed_style(s, options.style))
            prompt = question if generator.bare_answer_prompts else ps.format_answer(question)
            records.append({"id": s["id"], "question": prompt})
    stage(2, records, options.num_answers)

    if finalize_output if finalize_output is not None else process_count == 1:
        summary.stats = finalize(seeds, output_dir, options, process_count=process_count, generator=generator.name)
    else:
        logging.info("process %d of %d done; run finalize once all are done", process_index, process_count)
    return summary


def _verified_question(row: dict | None, draft: str | None, options: SynthOptions) -> tuple[str, str]:
    """(verdict, final question) of a stage (b) line; question "" when the seed stops here."""
    if not draft or row is None:
        return "", ""
    texts = _texts(row)
    if row.get("error") or not texts:
        return "error", ""
    v = parse_verification(texts[0], draft)
    if v.verdict == "reject" or (v.verdict == "unparsed" and options.strict_verification):
        return v.verdict, ""
    return v.verdict, v.question


# ----- finalize -----


def _read_stage(output_dir: str, stage: str, process_count: int) -> dict[str, dict]:
    if process_count == 1:
        shards = [stage_path(output_dir, stage)]
    else:
        shards = _runner().find_shards(paths.join(output_dir, "stages", f"{stage}.jsonl"))
        if len(shards) != process_count:
            raise ValueError(f"{output_dir}: {stage} has {len(shards)} shards, expected {process_count}")
    rows: dict[str, dict] = {}
    for p in shards:
        for r in _runner().read_output(p, repair=False):
            rows.setdefault(str(r["id"]), _slim(r))
    return rows


def finalize(
    seeds: Sequence[dict],
    output_dir: str,
    options: SynthOptions = SynthOptions(),
    *,
    process_count: int = 1,
    generator: str | None = None,
) -> dict:
    """Filters, deduplicates and checks the stage outputs; writes the output files and returns the stats.

    Raises ValueError when some seed has not been through every stage it
    needs (a process still running or killed: rerun it first).
    """
    start = time.perf_counter()
    drafts, verified, answers = (_read_stage(output_dir, st, process_count) for st in STAGES)
    if generator is None:
        generator = json.loads(paths.read_text(paths.join(output_dir, SETTINGS_FILE))).get("generator")
    results: list[dict] = []
    unfinished = []
    verdicts: collections.Counter = collections.Counter()
    for s in seeds:
        sid = str(s["id"])
        style = seed_style(s, options.style)
        prov: dict = {"seed_id": sid, "seed_question": s["question"], "style": style, "generator": generator,
                      "stages": {}}
        result = {"seed": s, "provenance": prov, "question": "", "reason": None}
        results.append(result)
        row_a = drafts.get(sid)
        if row_a is None:
            unfinished.append(sid)
            continue
        prov["stages"]["question"] = (_texts(row_a) or [""])[0]
        draft = parse_new_question(prov["stages"]["question"]) if not row_a.get("error") else ""
        if row_a.get("error"):
            result["reason"] = filters.GENERATOR_ERROR
            prov["error"] = row_a["error"]
            continue
        if not draft:
            result["reason"] = filters.MALFORMED_QUESTION
            continue
        prov["stages"]["draft_question"] = draft
        row_b = verified.get(sid)
        if row_b is None:
            unfinished.append(sid)
            continue
        prov["stages"]["verify"] = (_texts(row_b) or [""])[0]
        verdict, question = _verified_question(row_b, draft, options)
        verdicts[verdict] += 1
        prov["verdict"] = verdict
        if verdict == "error":
            result["reason"] = filters.GENERATOR_ERROR
            prov["error"] = row_b.get("error")
            continue
        if not question:
            # "unparsed" ends here only under strict_verification: not approved, so rejected.
            result["reason"] = filters.VERIFIER_REJECTED
            continue
        result["question"] = question
        row_c = answers.get(sid)
        if row_c is None:
            unfinished.append(sid)
            continue
        texts = _texts(row_c)
        prov["stages"]["answers"] = texts
        if row_c.get("error") or not texts:
            result["reason"] = filters.GENERATOR_ERROR
            prov["error"] = row_c.get("error")
            continue
        checked = filters.check_answers(question, s["question"], texts, options.filters)
        if checked.vote is not None:
            prov.update(num_answers=len(texts), extracted_answers=checked.vote.answers,
                        majority_answer=checked.vote.majority, votes=checked.vote.count,
                        agreement=round(checked.vote.agreement, 4))
        result["reason"] = checked.reason
        if checked.reason is None:
            result["answer"] = checked.target
            prov["chosen_answer"] = checked.chosen
    if unfinished:
        raise ValueError(
            f"{output_dir}: {len(unfinished)} of {len(seeds)} seeds have not finished every stage "
            f"(first: {unfinished[:5]}); run the synthesis (every process) to completion first")

    # Near-duplicates among the survivors, first (in seed order) kept.
    alive = [r for r in results if r["reason"] is None]
    if options.dedup is not None:
        for i, (j, sim) in near_duplicates([r["question"] for r in alive], options.dedup).items():
            alive[i]["reason"] = filters.NEAR_DUPLICATE
            alive[i]["provenance"]["duplicate_of"] = alive[j]["seed"]["id"]
            alive[i]["provenance"]["similarity"] = round(sim, 4)
        alive = [r for r in alive if r["reason"] is None]

    # Leakage against the test sets: reported always, enforced on request.
    leak: dict = {"test_sets": {}, "n": options.ngram, "enforced": options.enforce_decontamination,
                  "checked": 0, "flagged": 0, "by_test_set": {}, "hits": []}
    if options.decontaminate:
        index = build_index(options.decontaminate, options.ngram)
        leak["test_sets"] = dict(index.items)
        for r in alive:
            leak["checked"] += 1
            text = r["question"] + ("\n" + r["answer"] if options.decontaminate_answers else "")
            hit = index.check(text)
            if hit is None:
                continue
            leak["flagged"] += 1
            leak["by_test_set"][hit.test_set] = leak["by_test_set"].get(hit.test_set, 0) + 1
            if len(leak["hits"]) < 100:
                leak["hits"].append({"seed_id": r["seed"]["id"], **hit.to_json()})
            r["provenance"]["contamination"] = hit.to_json()
            if options.enforce_decontamination:
                r["reason"] = filters.CONTAMINATED

    kept = [r for r in results if r["reason"] is None]
    dropped = collections.Counter(r["reason"] for r in results if r["reason"] is not None)
    out_path = paths.join(output_dir, OUTPUT_FILE)

    def write_kept(f):
        for r in kept:
            line = {"id": f"synth-{r['seed']['id']}", "question": r["question"], "answer": r["answer"],
                    "provenance": r["provenance"]}
            f.write(json.dumps(line, ensure_ascii=False) + "\n")

    def write_dropped(f):
        for r in results:
            if r["reason"] is not None:
                line = {"id": f"synth-{r['seed']['id']}", "reason": r["reason"], "question": r["question"],
                        "provenance": r["provenance"]}
                f.write(json.dumps(line, ensure_ascii=False) + "\n")

    _write_atomic(out_path, write_kept)
    _write_atomic(paths.join(output_dir, DROPPED_FILE), write_dropped)
    agreements = [r["provenance"]["agreement"] for r in kept]
    stats = {
        "seeds": len(seeds),
        "kept": len(kept),
        "dropped": {reason: dropped.get(reason, 0) for reason in filters.DROP_REASONS},
        "styles": dict(collections.Counter(r["provenance"]["style"] for r in results)),
        "verdicts": dict(verdicts),
        "agreement": {
            "threshold": options.filters.agreement, "num_answers": options.num_answers,
            "mean_kept": round(sum(agreements) / len(agreements), 4) if agreements else None,
            "histogram_kept": _histogram(agreements),
        },
        "decontamination": leak,
        "generator": generator,
        "output": out_path,
        "final_answer_line": FINAL_ANSWER_PREFIX + "<ANSWER>.",
        "finalize_seconds": round(time.perf_counter() - start, 3),
    }
    assert stats["kept"] + sum(stats["dropped"].values()) == stats["seeds"]
    _write_atomic(paths.join(output_dir, STATS_FILE), lambda f: json.dump(stats, f, indent=2))
    logging.info("%s: kept %d of %d seeds; dropped %s", out_path, len(kept), len(seeds),
                 {k: v for k, v in stats["dropped"].items() if v})
    return stats


def _histogram(values: Sequence[float]) -> dict[str, int]:
    """Counts per agreement value (k answers give at most k + 1 distinct values)."""
    counts = collections.Counter(f"{v:.2f}" for v in values)
    return dict(sorted(counts.items()))
