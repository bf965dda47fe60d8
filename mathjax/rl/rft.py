"""Rejection-sampling fine-tuning data (RFT, Yuan et al. 2023), a difficulty-aware budget, ReST-EM rounds.

One round: sample ``num_samples`` answers per training question with the
project's sampler runner, grade them with the grader, keep the correct ones
with a new equation sequence (:mod:`mathjax.rl.rft_select`) and write
``rft.jsonl``, the SFT trainer's input as is (:mod:`mathjax.rl.rft_merge`).
With ``budget="difficulty"`` (DART-Math) more passes follow for the questions
that still have fewer than ``min_correct`` distinct correct paths, the fewer
found per sample the more samples asked for, up to ``max_samples``.

``rounds > 1`` is ReST-EM: between rounds the *base* model is fine-tuned on
the round's data (the project's SFT trainer, ``sft_config``), and the next
round samples from that workdir. Layout of ``output_dir``::

    settings.json             sampling and budget settings (a rerun with others is refused)
    round_1/samples/...       the runner's resumable JSONL, per pass and process
    round_1/rft.jsonl         round 1's SFT data; round_1/stats.json its per-question pass rates
    round_1/train/            SFT workdir of round 1's data (when there is a round 2)
    round_2/...
    rft.jsonl, stats.json     the last round's

Resume: rerunning the same command skips every finished sample line (the
runner's files), a finished training (``train/rft_trained.json``) and rewrites
the cheap filter output atomically. Processes: process ``i`` of ``n`` samples
questions ``i, i+n, ...`` (the runner's ownership and shard names) on its own
devices; in one ``jax.distributed`` job process 0 merges after a barrier, and
independent jobs are merged by a final ``merge_only`` call.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import importlib.util
import json
import logging
from collections.abc import Callable, Sequence

from mathjax.io import paths
from mathjax.rl import rft_merge, rft_select
from mathjax.rl.rft_merge import finalize_round, pass_path
from mathjax.rl.rft_select import equation_signature, extra_samples, select_paths

__all__ = ["RFTOptions", "RFTResult", "equation_signature", "select_paths", "run_rft", "extra_samples",
           "default_loader", "load_records"]

BUDGETS = ("uniform", "difficulty")
SETTINGS_FILE = "settings.json"
TRAINED_MARKER = "rft_trained.json"
Loader = Callable[[str], tuple]  # model path -> (model, tokenizer)


@dataclasses.dataclass(frozen=True)
class RFTOptions:
    """What an RFT run does (see the module docstring).

    Attributes:
      num_samples: samples per question in the first pass (and per-pass step).
      temperature, top_p: sampling rules.
      template: prompt template, as in training (``mathjax.data.templates``).
      max_new_tokens, seed, batch_size: as in the sampler runner.
      budget: ``uniform`` (one pass) or ``difficulty`` (extra passes).
      min_correct: with ``difficulty``, distinct correct paths wanted per question.
      max_samples: with ``difficulty``, samples per question at most (0: 4 x num_samples).
      require_correct_arithmetic: drop paths with a wrong ``a op b = c``.
      include_gold: put each question's own solution in the data (and dedup against it).
      rounds: ReST-EM rounds (fine-tuning between them).
      grade_workers: grader processes (None: all cores; 0: in this process).
      sampler_options: extra ``Sampler`` arguments.
    """

    num_samples: int = 4
    temperature: float = 0.7
    top_p: float = 1.0
    template: str = "xwin_math"
    max_new_tokens: int = 512
    seed: int = 0
    batch_size: int = 64
    budget: str = "uniform"
    min_correct: int = 4
    max_samples: int = 0
    require_correct_arithmetic: bool = True
    include_gold: bool = True
    rounds: int = 1
    grade_workers: int | None = None
    sampler_options: dict | None = None

    def __post_init__(self):
        if self.budget not in BUDGETS:
            raise ValueError(f"budget must be one of {BUDGETS}, got {self.budget!r}")
        if self.num_samples < 1 or self.rounds < 1 or self.min_correct < 1:
            raise ValueError("num_samples, rounds and min_correct must be >= 1")
        if self.budget == "difficulty" and self.cap < self.num_samples:
            raise ValueError(f"max_samples={self.max_samples} is below num_samples={self.num_samples}")

    @property
    def cap(self) -> int:
        return self.max_samples or 4 * self.num_samples

    def settings(self, base_model: str, process_count: int) -> dict:
        """What shapes the sample files: a resumed run must match it (new input questions are just sampled)."""
        out = {"base_model": paths.normalize(base_model), "num_samples": self.num_samples,
               "temperature": self.temperature, "top_p": self.top_p, "template": self.template,
               "max_new_tokens": self.max_new_tokens, "seed": self.seed, "budget": self.budget,
               "process_count": process_count}
        if self.budget == "difficulty":
            # Extra passes are decided from the kept paths, so the filter shapes the samples too.
            out.update(min_correct=self.min_correct, max_samples=self.cap,
                       require_correct_arithmetic=self.require_correct_arithmetic, include_gold=self.include_gold)
        return out


@dataclasses.dataclass
class RFTResult:
    """What one process did: per round, samples written/skipped and (process 0) the stats summary."""

    output_dir: str
    rounds: list[dict]
    preempted: bool = False


def load_records(path: str) -> list[dict]:
    """Training records (``question``, ``answer``; ``id`` defaults to the line number), as the runner reads them."""
    from mathjax.sample import runner

    return runner.read_jsonl_records(path)


def default_loader(mesh: str = "data:-1", dtype: str = "float32", tokenizer: str | None = None) -> Loader:
    """Loads a model for sampling on this process's devices (each process samples its own questions)."""

    def load(path: str):
        import jax

        import mathjax
        from mathjax.train.checkpoint import load_tokenizer_from as load_tokenizer  # local paths and gs:// alike
        from mathjax.parallel.mesh import make_mesh

        model = mathjax.load(path, dtype=dtype, mesh=make_mesh(mesh, devices=jax.local_devices()))
        if hasattr(model, "for_sampling"):
            model = model.for_sampling()  # per-layer weights, the layout the sampler decodes with
        return model, (load_tokenizer(tokenizer) if tokenizer else model.tokenizer())

    return load


def pass_seed(seed: int, pass_index: int) -> int:
    """The runner seed of a pass: ``seed`` first (equal to a plain ``sample.py`` run), then fresh streams.

    A sample's randomness is (seed, question id, sample index), so a later pass
    with the same seed would redraw the first pass's samples.
    """
    if pass_index == 0:
        return seed
    digest = hashlib.sha256(f"mathjax.rft/{seed}/{pass_index}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def _check_settings(output_dir: str, settings: dict, write: bool) -> None:
    """Records the sampling settings, or refuses to mix them with an earlier run's samples."""
    path = paths.join(output_dir, SETTINGS_FILE)
    exists = paths.exists(path)
    if exists:
        old = json.loads(paths.read_text(path))
        diff = {k: (old.get(k), v) for k, v in settings.items() if old.get(k) != v}
        started = any(rft_merge.sample_files(paths.join(output_dir, d), None, old.get("process_count", 1))
                      for d in paths.listdir(output_dir) if d.startswith("round_"))
        if diff and started:
            raise ValueError(f"{output_dir}: has samples made with other settings {diff} (old, new); use another "
                             "output dir or delete it")
    if write or not exists:  # one writer per job (processes of one job share the directory)
        with paths.atomic_writer(path) as f:
            json.dump(settings, f, indent=2, sort_keys=True)


class _Models:
    """Loads a round's model only when some pass still has work (a resumed round needs no weights)."""

    def __init__(self, loader: Loader):
        self.loader = loader
        self.path: str | None = None
        self.loaded: tuple | None = None

    def get(self, path: str) -> tuple:
        if self.path != path:
            self.release()
            self.loaded, self.path = self.loader(path), path
        return self.loaded

    def release(self) -> None:
        self.loaded = self.path = None
        gc.collect()  # free the weights before training or the next round's model


def _sample_round(records: Sequence[dict], model_path: str, models: _Models, round_dir: str, opts: RFTOptions,
                  index: int, count: int, progress: bool) -> dict:
    """All passes of this process's questions; returns counts. Each pass is one runner call per pass size."""
    from mathjax.sample import SamplingRules, runner

    rules = SamplingRules(temperature=opts.temperature, top_p=opts.top_p)
    # Questions without a gold answer cannot be graded: sampling them would be wasted.
    mine = [r for i, r in enumerate(records) if i % count == index and rft_select.gold_answer(r) is not None]
    inputs = {str(r["id"]): {k: r[k] for k in ("id", "question", "answer", "final_answer") if k in r} for r in mine}
    need = {qid: opts.num_samples for qid in inputs}
    counts = {"written": 0, "skipped": 0, "passes": 0, "samples_requested": 0}
    pass_index = 0
    while need:
        for size in sorted(set(need.values())):
            group = [inputs[qid] for qid in inputs if need.get(qid) == size]
            path = runner.shard_path(pass_path(round_dir, pass_index, size), index, count)
            counts["samples_requested"] += size * len(group)
            done = {str(r["id"]) for r in runner.read_output(path, repair=False)}
            if all(str(r["id"]) in done for r in group):
                counts["skipped"] += len(group)  # finished before: no need to load the model
                continue
            model, tokenizer = models.get(model_path)
            # This process's share was taken above, so to the runner it is the only process.
            result = runner.run(model, tokenizer, group, path, num_samples=size, rules=rules,
                                template=opts.template, max_new_tokens=opts.max_new_tokens,
                                seed=pass_seed(opts.seed, pass_index), batch_size=opts.batch_size,
                                process_index=0, process_count=1, progress=progress,
                                sampler_options=opts.sampler_options)
            counts["written"] += result.written
            counts["skipped"] += result.skipped
        counts["passes"] = pass_index + 1
        if opts.budget != "difficulty":
            break
        samples = rft_merge.read_samples(rft_merge.sample_files(round_dir, index, count))
        selections = rft_merge.select_all(
            mine, samples, require_correct_arithmetic=opts.require_correct_arithmetic,
            include_gold=opts.include_gold, workers=opts.grade_workers, progress=False)
        need = {}
        for qid in inputs:
            extra = extra_samples(len(samples.get(qid, [])), len(selections[qid].kept),
                                  min_correct=opts.min_correct, max_samples=opts.cap, step=opts.num_samples)
            if extra:
                need[qid] = extra
        pass_index += 1
        if need:
            logging.info("%s: pass %d: %d questions short of %d distinct correct paths get more samples",
                         round_dir, pass_index, len(need), opts.min_correct)
    with paths.atomic_writer(rft_merge.done_marker(round_dir, index, count)) as f:
        json.dump(counts, f)
    return counts


def _load_config(config_or_path):
    """An SFT config: a ConfigDict, or a config file's ``get_config()`` (``configs/tiny.py``)."""
    if not isinstance(config_or_path, str):
        return config_or_path
    spec = importlib.util.spec_from_file_location(f"_rft_sft_config_{abs(hash(config_or_path))}", config_or_path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"{config_or_path}: config file not found")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def _train_round(base_model: str, round_dir: str, sft_config, opts: RFTOptions, tokenizer: str | None,
                 is_main: bool, progress: bool) -> bool:
    """Fine-tunes the base model on a round's data (ReST-EM's M-step); returns False when preempted."""
    from mathjax.train import trainer

    workdir = paths.join(round_dir, "train")
    marker = paths.join(workdir, TRAINED_MARKER)
    if paths.exists(marker):
        return True
    config = _load_config(sft_config).copy_and_resolve_references()
    # Always from the base model (ReST-EM), on exactly the prompts the next round samples with.
    config.init_from = base_model
    if tokenizer:
        config.tokenizer = tokenizer
    config.data.train_files = paths.join(round_dir, rft_merge.OUTPUT_FILE)
    config.data.template = opts.template
    config.data.dataset = ""  # question/answer fields, answers as written (they end with the final line)
    config.data.question_field, config.data.answer_field = "question", "answer"
    config.data.hf_dataset = ""
    config.seed = opts.seed
    result = trainer.train(config, workdir, progress=progress)
    if result.preempted:
        return False
    if is_main:
        with paths.atomic_writer(marker) as f:
            json.dump({"step": result.step, "total_steps": result.total_steps, "data": result.data_stats}, f)
    return True


def _barrier(name: str, enabled: bool) -> None:
    if enabled:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def run_rft(
    model: str,
    input_path: str,
    output_dir: str,
    options: RFTOptions = RFTOptions(),
    *,
    sft_config=None,
    loader: Loader | None = None,
    tokenizer: str | None = None,
    process_index: int = 0,
    process_count: int = 1,
    synchronized: bool = False,
    merge_only: bool = False,
    progress: bool = True,
) -> RFTResult:
    """Runs (or resumes) RFT data generation; see the module docstring.

    Args:
      model: the base model (anything ``mathjax.load`` accepts).
      input_path: JSONL of training records (``question``, ``answer`` with a final answer line).
      output_dir: run directory (local or a URI).
      options: see :class:`RFTOptions`.
      sft_config: the SFT config (ConfigDict or file) fine-tuned between rounds; needed when ``rounds > 1``.
      loader: model path -> (model, tokenizer) for sampling (default: :func:`default_loader`).
      tokenizer: a tokenizer path overriding the model's (sampling and training).
      process_index, process_count: this process's share of the questions.
      synchronized: the processes are one ``jax.distributed`` job: barriers between
        stages, process 0 merges, all train together. Otherwise (independent jobs)
        each samples its share and a final ``merge_only`` call merges.
      merge_only: only merge, grade and filter the last round's finished samples.
      progress: progress bars.
    """
    if not 0 <= process_index < process_count:
        raise ValueError(f"process_index {process_index} outside [0, {process_count})")
    if options.rounds > 1 and process_count > 1 and not synchronized and not merge_only:
        raise ValueError("rounds > 1 fine-tunes between rounds, which needs every process: run one process or "
                         "one jax.distributed job (or run each round as its own one-round run)")
    if options.rounds > 1 and sft_config is None and not merge_only:
        raise ValueError("rounds > 1 needs sft_config (the SFT config fine-tuned between rounds)")
    records = load_records(input_path)
    paths.makedirs(output_dir)
    is_main = process_index == 0
    _check_settings(output_dir, options.settings(model, process_count), write=is_main or not synchronized)
    models = _Models(loader or default_loader(tokenizer=tokenizer))
    merges = is_main and (process_count == 1 or synchronized or merge_only)
    result = RFTResult(output_dir, [])
    first = options.rounds if merge_only else 1
    for r in range(first, options.rounds + 1):
        round_dir = paths.join(output_dir, f"round_{r}")
        model_path = model if r == 1 else paths.join(output_dir, f"round_{r - 1}", "train")
        summary: dict = {"round": r, "model": model_path}
        if not merge_only:
            paths.makedirs(rft_merge.samples_dir(round_dir))
            summary.update(_sample_round(records, model_path, models, round_dir, options, process_index,
                                         process_count, progress))
        _barrier(f"mathjax.rft round {r} sampled", synchronized)
        if merges:
            extra = {"budget": options.budget, "num_samples": options.num_samples, "model": model_path}
            if options.budget == "difficulty":
                extra.update(min_correct=options.min_correct, max_samples=options.cap)
            stats = finalize_round(
                records, round_dir, round_index=r, process_count=process_count,
                require_correct_arithmetic=options.require_correct_arithmetic, include_gold=options.include_gold,
                workers=options.grade_workers, progress=progress, extra_stats=extra,
                copies=[output_dir] if r == options.rounds else [])
            summary["stats"] = {k: v for k, v in stats.items() if k != "per_question"}
        elif not synchronized:
            logging.info("process %d of %d sampled round %d; when all have, run again with --merge_only",
                         process_index, process_count, r)
        result.rounds.append(summary)
        if r == options.rounds:
            break
        _barrier(f"mathjax.rft round {r} merged", synchronized)
        # Every process reads the merged stats, so all stop together rather than some waiting in the trainer.
        if json.loads(paths.read_text(paths.join(round_dir, rft_merge.STATS_FILE)))["examples"] == 0:
            raise ValueError(f"{round_dir}: round {r} kept no examples; nothing to fine-tune the next round on")
        models.release()
        if not _train_round(model, round_dir, sft_config, options, tokenizer, is_main, progress):
            result.preempted = True  # SIGTERM: the checkpoint is saved; rerun to resume
            return result
        _barrier(f"mathjax.rft round {r} trained", synchronized)
    models.release()
    return result
