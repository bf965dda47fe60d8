"""The SFT loop: config -> data, model, sharded state -> jitted steps, checkpoints, metrics.

Callable from Python (``train(config, workdir)``) and from
``scripts/train_sft.py``. One code path for one CPU, a GPU node and a TPU pod:
the mesh comes from ``config.mesh``; every process runs this same function
(multi-host runs initialise ``jax.distributed`` first, see
:func:`mathjax.parallel.mesh.initialize_distributed`).

Resume: if ``workdir/checkpoints`` holds a complete checkpoint, the run
continues from its step with the saved params, optimizer state, RNG and data
position, and reproduces the uninterrupted run exactly on CPU.
Preemption: SIGTERM (TPU maintenance, a scheduler's notice) makes the loop
save a checkpoint at the next step boundary and return ``preempted=True``;
with several processes a SIGTERM to any one makes all of them save the same
step (see :class:`_Preemption`).
Storage: the workdir, ``init_from``, the tokenizer, data files and the export
dir may be local paths or URIs such as ``gs://bucket/run``
(:mod:`mathjax.io.paths`); nothing of a remote run is written locally except
short-lived temporary copies of remote tokenizer files (remote HF weights are
range-read in place).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax

from mathjax.data import sft
from mathjax.io import paths
from mathjax.model.config import ModelConfig, get_preset
from mathjax.parallel.mesh import make_mesh
from mathjax.train import checkpoint as ckpt
from mathjax.train import metrics as metrics_lib
from mathjax.train.optimizer import make_optimizer
from mathjax.train.state import abstract_state, create_state
from mathjax.train.step import make_eval_step, make_train_step

Callback = Callable[[int, dict[str, Any]], None]


@dataclasses.dataclass
class TrainResult:
    """What a run did."""

    workdir: str
    step: int  # last completed step
    total_steps: int
    last_metrics: dict[str, Any]
    preempted: bool
    model_config: ModelConfig
    data_stats: dict[str, int]


# ---------------------------------------------------------------------------
# Logs.


class _DropChatter(logging.Filter):
    """Drops INFO records from orbax (dozens per checkpoint) and JAX's backend probing."""

    _NOISY = (f"{os.sep}orbax{os.sep}", "xla_bridge.py")

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.INFO or not any(n in record.pathname for n in self._NOISY)


def quiet_dependency_logs() -> None:
    """Keeps absl INFO logs readable: our lines stay, orbax's per-file chatter goes."""
    root = logging.getLogger()
    for target in [logging.getLogger("absl"), *root.handlers]:
        if not any(isinstance(f, _DropChatter) for f in target.filters):
            target.addFilter(_DropChatter())


# ---------------------------------------------------------------------------
# Config resolution.


def compute_dtype(name: str) -> str:
    """``auto`` -> bfloat16 on accelerators, float32 on CPU."""
    if name != "auto":
        return name
    return "float32" if jax.default_backend() == "cpu" else "bfloat16"


def model_overrides(config) -> dict[str, Any]:
    """The ``model_overrides`` entries that were set (placeholders left at None are skipped)."""
    overrides = config.get("model_overrides") or {}
    return {k: v for k, v in dict(overrides).items() if v is not None}


def numerics(config, dtype: str | None = None) -> dict[str, Any]:
    """The ModelConfig numerics a train config sets; ``dtype`` replaces the compute dtype this host resolves."""
    out = {"dtype": dtype or compute_dtype(config.compute_dtype), "param_dtype": config.param_dtype,
           "remat_policy": config.remat_policy}
    if config.get("attention_impl"):
        out["attention_impl"] = config.attention_impl
    return out


def resolve_model_config(config, tokenizer, base: ModelConfig | None = None) -> ModelConfig:
    """The ModelConfig to train: ``base`` (a loaded model's) or the preset; then overrides and numerics.

    From scratch the vocabulary (and BOS/EOS/pad ids) come from the tokenizer
    unless ``model_overrides.vocab_size`` is set.
    """
    overrides = model_overrides(config)
    if base is None:
        base = get_preset(config.model)
        vocab = overrides.pop("vocab_size", None) or tokenizer.vocab_size
        if vocab < tokenizer.vocab_size:
            raise ValueError(f"model_overrides.vocab_size={vocab} is smaller than the tokenizer's {tokenizer.vocab_size}")
        base = base.replace(vocab_size=vocab, bos_token_id=tokenizer.bos_id, eos_token_id=tokenizer.eos_id,
                            pad_token_id=tokenizer.pad_id)
    elif tokenizer.vocab_size > base.vocab_size:
        raise ValueError(f"tokenizer has {tokenizer.vocab_size} ids but the model's vocabulary is {base.vocab_size}")
    model = base.replace(**overrides, **numerics(config))
    if model.max_position_embeddings < config.seq_len:
        logging.warning("seq_len=%d exceeds the model's max_position_embeddings=%d",
                        config.seq_len, model.max_position_embeddings)
    return model


def _data_options(config) -> sft.SFTDataOptions:
    d = config.data
    return sft.SFTDataOptions(
        seq_len=config.seq_len, template=d.template, pack=d.pack, truncate=d.truncate,
        skip_bad_lines=d.skip_bad_lines, add_bos=d.get("add_bos", True), dataset=d.dataset,
        question_field=d.question_field, answer_field=d.answer_field)


def total_steps(config, batches: sft.SFTBatches) -> tuple[int, float]:
    """``(steps, steps_per_epoch)``: ``config.steps`` if set, else ``epochs`` passes over the data."""
    per_epoch = batches.rows_in_epoch(0) / config.batch_size
    if config.steps and config.steps > 0:
        return int(config.steps), per_epoch
    if not config.epochs or config.epochs <= 0:
        raise ValueError("set config.steps or config.epochs")
    return max(1, int(math.ceil(config.epochs * per_epoch))), per_epoch


# ---------------------------------------------------------------------------
# Preemption.


class _Preemption:
    """When to stop for a preemption notice; asked at every step boundary.

    One process: a Python SIGTERM handler sets a flag. Several processes:
    ``jax.distributed`` starts a preemption sync manager whose notifier
    catches SIGTERM in C++ (checked on CPU with JAX 0.10.2: a SIGTERM to one
    of two processes is caught and both reach the same sync step) and tells
    the coordinator; ``CheckpointManager.reached_preemption`` (JAX's
    ``reached_preemption_sync_point``) is then True on every process at the
    same step, one past the furthest any process had reached, so all save
    that step. This needs every process to call it at every step, and no
    Python SIGTERM handler: one installed later replaces JAX's at the OS
    level, so SIGTERM would never reach the notifier (warned about here).
    """

    def __init__(self):
        self.requested = False
        self._previous = None
        if jax.process_count() > 1:
            handler = signal.getsignal(signal.SIGTERM)
            if callable(handler):
                logging.warning("a Python SIGTERM handler (%r) replaces JAX's preemption notifier: SIGTERM "
                                "will not make the processes save and stop together", handler)
        elif threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum, frame):
        del signum, frame
        logging.warning("SIGTERM: saving a checkpoint at the end of this step, then exiting")
        self.requested = True

    def reached(self, manager: ckpt.CheckpointManager, step: int) -> bool:
        if jax.process_count() > 1:
            return manager.reached_preemption(step)
        return self.requested

    def restore(self):
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)


Preemption = _Preemption  # shared with the RL trainer (mathjax.rl.trainer)


# ---------------------------------------------------------------------------
# Progress.


class _Progress:
    def __init__(self, total: int, start: int, enabled: bool, bar: bool):
        self.enabled = enabled
        self._bar = None
        if enabled and bar:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, initial=start, desc="sft", unit="step", dynamic_ncols=True)

    def update(self, step: int, loss: float | None) -> None:
        if self._bar is not None:
            self._bar.n = step
            if loss is not None:
                self._bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
            self._bar.refresh()

    def line(self, text: str) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.write(text)
        else:
            print(text, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _format_line(step: int, total: int, m: dict[str, Any]) -> str:
    parts = [f"step {step}/{total}", f"loss {m['loss']:.4f}"]
    if "eval_loss" in m:
        parts.append(f"eval_loss {m['eval_loss']:.4f}")
    parts += [f"gnorm {m['grad_norm']:.3f}", f"lr {m['lr']:.2e}"]
    if "tokens_per_sec" in m:
        parts.append(f"{m['tokens_per_sec']:,.0f} tok/s")
    if m.get("mfu") is not None:
        parts.append(f"mfu {100 * m['mfu']:.1f}%")
    parts.append(f"epoch {m.get('epoch', 0):.2f}")
    if "eta_seconds" in m:
        parts.append(f"eta {metrics_lib.format_duration(m['eta_seconds'])}")
    return " | ".join(parts)


# ---------------------------------------------------------------------------
# The run.


def use_compilation_cache(path: str) -> None:
    """Points JAX's persistent compilation cache at ``path`` (takes effect even after earlier compiles)."""
    from jax.experimental.compilation_cache import compilation_cache

    if jax.config.jax_compilation_cache_dir != path:
        compilation_cache.set_cache_dir(path)
        compilation_cache.reset_cache()


def _config_dict(config) -> dict:
    return json.loads(config.to_json_best_effort()) if hasattr(config, "to_json_best_effort") else dict(config)


def _warn_config_drift(old: dict | None, new: dict) -> None:
    if not old:
        return
    changed = sorted(k for k in set(old) | set(new) if k != "resolved" and old.get(k) != new.get(k))
    if changed:
        logging.warning("resuming with a config that differs from the saved one in %s", changed)


def train(
    config,
    workdir: str,
    callbacks: Sequence[Callback] = (),
    progress: bool | None = None,
) -> TrainResult:
    """Runs (or resumes) supervised fine-tuning as described by ``config``.

    Args:
      config: an ``ml_collections.ConfigDict`` shaped like ``configs/base_sft.py``.
      workdir: where checkpoints, metrics, the resolved config, the model config
        and a copy of the tokenizer go: a local dir or a URI (``gs://bucket/run``).
        An existing workdir with checkpoints is resumed.
      callbacks: ``fn(step, metrics)`` called on every process after each logged step.
      progress: show a tqdm bar (process 0). Default: only when stderr is a terminal.
        A text line with loss, tokens/s, MFU and ETA is printed every ``log_every`` steps regardless.

    Returns:
      A :class:`TrainResult`. ``preempted`` is True when SIGTERM stopped the run
      after saving a checkpoint.
    """
    workdir = paths.normalize(workdir)
    if jax.process_count() > 1 and not jax.distributed.is_initialized():
        # A TPU pod reports all its hosts without it; orbax and the preemption sync need it.
        raise RuntimeError(f"{jax.process_count()} processes but jax.distributed is not running: call "
                           "mathjax.parallel.mesh.initialize_distributed() first (scripts/train_sft.py does)")
    is_main = jax.process_index() == 0
    paths.makedirs(workdir)
    if config.get("compilation_cache_dir"):
        use_compilation_cache(config.compilation_cache_dir)
    mesh = make_mesh(config.mesh)
    model_numerics = numerics(config)
    manager = ckpt.CheckpointManager(workdir, keep=config.keep_checkpoints, async_save=config.get("async_checkpoint", True))
    latest = manager.latest_step()

    # ---- model config, tokenizer, initial params ----
    init_params = None
    if latest is not None:
        base = ckpt.read_model_config(workdir)
        tokenizer_path = config.tokenizer or ckpt.workdir_tokenizer_path(workdir)
    elif config.init_from:
        base, init_params, tokenizer_path = ckpt.load_initial_model(config.init_from, mesh, config.param_dtype,
                                                                    model_numerics)
        tokenizer_path = config.tokenizer or tokenizer_path
    else:
        base, tokenizer_path = None, config.tokenizer
    if not tokenizer_path:
        raise ValueError("no tokenizer: set config.tokenizer (an HF tokenizer dir or a SentencePiece .model file)")
    tokenizer = ckpt.load_tokenizer_from(tokenizer_path)
    model_config = resolve_model_config(config, tokenizer, base)

    # ---- data ----
    layout = sft.BatchLayout(mesh, config.batch_size, config.micro_batches, config.seq_len)
    options = _data_options(config)
    # Tokenized rows cached by content (data, tokenizer, template, seq_len, this
    # process's records): a restart or a preempted pod does not re-tokenize.
    cache_dir = paths.join(workdir, "data_cache") if config.data.get("cache", True) else None
    t0 = time.perf_counter()
    train_data = sft.build_batches(config.data.train_files, tokenizer, layout, options, config.seed,
                                   shuffle=True, hf_dataset=config.data.hf_dataset,
                                   hf_config=config.data.hf_config, split=config.data.hf_split,
                                   cache_dir=cache_dir)
    steps, steps_per_epoch = total_steps(config, train_data)
    logging.info("train data: %s (%.1fs); %.1f steps per epoch, %d steps", train_data.stats.summary(),
                 time.perf_counter() - t0, steps_per_epoch, steps)
    eval_data = None
    if config.data.eval_files:
        eval_data = sft.build_batches(config.data.eval_files, tokenizer, layout, options, config.seed,
                                      shuffle=False, repeat=False, cache_dir=cache_dir)
        eval_batches = eval_data.max_rows(0)
        if config.get("eval_batches", 0):
            eval_batches = min(eval_batches, int(config.eval_batches))
        logging.info("eval data: %s; %d batches", eval_data.stats.summary(), eval_batches)

    # ---- state ----
    optimizer, schedule = make_optimizer(config.optimizer, model_config, steps)
    if latest is not None:
        state, data_state = manager.restore(latest, abstract_state(model_config, mesh, optimizer))
        start = train_data.check_state(data_state)
        if start != latest:
            raise ValueError(f"checkpoint {latest} holds data position {start}")
        logging.info("resumed from %s step %d (epoch %.2f)", manager.directory, latest, train_data.epoch(latest))
    else:
        state = create_state(model_config, mesh, optimizer, config.seed, init_params)
        init_params = None
        start = 0
    resolved = _config_dict(config)
    resolved["resolved"] = {"steps": steps, "steps_per_epoch": steps_per_epoch, "tokenizer": tokenizer_path,
                            "num_devices": jax.device_count(), "num_processes": jax.process_count(),
                            "mesh": dict(mesh.shape), "model": json.loads(model_config.to_json()),
                            "data": train_data.stats.as_dict()}
    if latest is not None:
        _warn_config_drift(ckpt.read_train_config(workdir), resolved)
    ckpt.write_workdir_metadata(workdir, model_config, tokenizer_path, resolved)

    # ---- steps ----
    loss_chunk = int(config.get("loss_chunk", 0) or 0)
    train_step = make_train_step(model_config, optimizer, schedule, mesh, layout.sharding, loss_chunk)
    eval_step = None
    if eval_data is not None:
        from mathjax.model.partition import param_shardings

        eval_step = make_eval_step(model_config, mesh, param_shardings(model_config, mesh), layout.sharding, loss_chunk)

    def evaluate(params) -> dict[str, float]:
        total = count = 0.0
        for i in range(eval_batches):
            nll, n = eval_step(params, eval_data.global_batch(i))
            total, count = total + float(nll), count + float(n)
        return {"eval_loss": total / max(count, 1.0), "eval_tokens": int(count)}

    writer = metrics_lib.MetricsWriter(workdir, resume_step=start, tensorboard=config.get("tensorboard", True))
    flops_per_token = model_config.flops_per_token(config.seq_len)
    peak = metrics_lib.peak_flops_per_device(jax.devices()[0], model_config.dtype, config.get("peak_flops_cpu", 0.0))
    if peak is None and jax.default_backend() == "cpu":
        # No figure given: MFU against this host's measured float32 matmul rate.
        peak = metrics_lib.measured_cpu_peak() / jax.local_device_count()
    tokens_per_step = config.batch_size * config.seq_len
    show_bar = progress if progress is not None else sys.stderr.isatty()
    bar = _Progress(steps, start, is_main, show_bar)
    throughput = metrics_lib.Throughput(steps, start)
    preemption = _Preemption()
    log_every = max(1, int(config.log_every))
    ckpt_every = int(config.checkpoint_every)
    eval_every = int(config.get("eval_every", 0) or 0)
    last_saved = latest
    last_metrics: dict[str, Any] = {}
    preempted = False
    pending: tuple[int, Any, dict] | None = None  # metrics of the last dispatched step, fetched one step later

    def save(step: int) -> None:
        nonlocal last_saved
        if last_saved != step:
            jax.block_until_ready(state.step)  # time the step itself apart from the copy-out
            t = time.perf_counter()
            manager.save(step, state, train_data.state(step))
            throughput.exclude(time.perf_counter() - t)
            last_saved = step

    def flush(item) -> None:
        nonlocal last_metrics
        step, device_metrics, extra = item
        m = {k: v.item() for k, v in jax.device_get(device_metrics).items()}
        m["fill"] = m["tokens"] / tokens_per_step
        m["epoch"] = step / max(steps_per_epoch, 1e-9)
        if step == start + 1:
            throughput.reset(step)  # the first step includes compilation
        else:
            m.update(throughput.update(step, tokens_per_step))
            m["mfu"] = metrics_lib.mfu(flops_per_token, m["tokens_per_sec"], peak, jax.device_count())
        m.update(extra)
        last_metrics = m
        bar.update(step, m["loss"])
        if step % log_every == 0 or step == steps or extra:
            writer.write(step, m)
            bar.line(_format_line(step, steps, m))
            for callback in callbacks:
                callback(step, m)

    try:
        for step in range(start, steps):
            state, device_metrics = train_step(state, train_data.global_batch(step))
            done = step + 1
            if pending is not None:
                flush(pending)
            extra: dict[str, Any] = {}
            if eval_step is not None and (done == steps or (eval_every and done % eval_every == 0)):
                jax.block_until_ready(device_metrics)
                t = time.perf_counter()
                extra = evaluate(state.params)
                throughput.exclude(time.perf_counter() - t)
            pending = (done, device_metrics, extra)
            preempted = preemption.reached(manager, done)
            if preempted or done == steps or (ckpt_every > 0 and done % ckpt_every == 0):
                # Metrics up to this step are durable before its checkpoint can exist,
                # so a resumed run never misses a line (remote files upload in batches).
                flush(pending)
                pending = None
                writer.flush()
                save(done)
            if preempted:
                break
        if pending is not None:
            flush(pending)
            pending = None
        manager.wait_until_finished()
        final_step = int(jax.device_get(state.step))
        if not preempted and config.get("export_hf_dir"):
            from mathjax.convert.hf import save_hf

            save_hf(config.export_hf_dir, model_config, state.params, config.export_dtype, tokenizer_path)
            logging.info("exported a Hugging Face model to %s", config.export_hf_dir)
    finally:
        preemption.restore()
        bar.close()
        writer.close()
        manager.close()
    if preempted:
        logging.warning("preempted: checkpoint saved at step %d", final_step)
    return TrainResult(workdir=workdir, step=final_step, total_steps=steps, last_metrics=last_metrics,
                       preempted=preempted, model_config=model_config, data_stats=train_data.stats.as_dict())
