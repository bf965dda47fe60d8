"""Training metrics: MFU from a peak-FLOPs table, and the writers (stdout, metrics.jsonl, TensorBoard).

Only process 0 writes. On resume, ``metrics.jsonl`` lines past the restored
step are dropped first (they belong to steps that will be replayed), so the
file never holds a step twice. The workdir may be remote (see
:mod:`mathjax.io.paths`).
"""

from __future__ import annotations

import io
import json
import logging
import math
import time
from typing import Any

import jax

from mathjax.io import appends, paths

METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tb"

# Dense peak FLOP/s per chip. TPUs run float32 matmuls as bf16 passes by
# default, and GPUs run them as TF32, so "float32" lists those figures.
PEAK_FLOPS: dict[str, dict[str, float]] = {
    "tpu v4": {"bfloat16": 275e12, "float32": 275e12},
    "tpu v5 lite": {"bfloat16": 197e12, "float32": 197e12},
    "tpu v5e": {"bfloat16": 197e12, "float32": 197e12},
    "tpu v5p": {"bfloat16": 459e12, "float32": 459e12},
    "tpu v5": {"bfloat16": 459e12, "float32": 459e12},  # "TPU v5" is how v5p reports itself
    "tpu v6 lite": {"bfloat16": 918e12, "float32": 918e12},
    "tpu v6e": {"bfloat16": 918e12, "float32": 918e12},
    "tpu v6": {"bfloat16": 918e12, "float32": 918e12},
    "a100": {"bfloat16": 312e12, "float32": 156e12},
    "h100": {"bfloat16": 989e12, "float32": 494e12},
    "h200": {"bfloat16": 989e12, "float32": 494e12},
}


def peak_flops_per_device(device: Any = None, dtype: str = "bfloat16", cpu_flops: float = 0.0) -> float | None:
    """Peak FLOP/s of one device, or None when unknown.

    CPU devices: ``cpu_flops`` is the whole host's figure (XLA's emulated CPU
    devices share the same cores), divided here over the host's devices.
    """
    device = device or jax.devices()[0]
    if device.platform == "cpu":
        if not cpu_flops:
            return None
        return cpu_flops / max(1, jax.local_device_count())
    kind = device.device_kind.lower()
    key = "float32" if str(dtype) == "float32" else "bfloat16"
    for name in sorted(PEAK_FLOPS, key=len, reverse=True):  # "tpu v5 lite" before "tpu v5"
        if name in kind:
            return PEAK_FLOPS[name][key]
    return None


def measured_cpu_peak(n: int = 1024, reps: int = 4) -> float:
    """Sustained float32 FLOP/s of a jitted square matmul on this host's first device.

    The CPU stand-in for a datasheet peak when ``peak_flops_cpu`` is not set
    (about a second on a laptop); MFU is then relative to what XLA's matmul
    reaches here.
    """
    import jax.numpy as jnp

    a = jnp.ones((n, n), jnp.float32)
    f = jax.jit(lambda x: x @ x)
    f(a).block_until_ready()
    t = time.perf_counter()
    for _ in range(reps):
        out = f(a)
    out.block_until_ready()
    return 2 * n**3 * reps / (time.perf_counter() - t)


def mfu(flops_per_token: float, tokens_per_sec: float, peak_per_device: float | None, num_devices: int) -> float | None:
    """Model FLOPs utilisation: achieved model FLOP/s over the devices' peak."""
    if not peak_per_device:
        return None
    return flops_per_token * tokens_per_sec / (peak_per_device * num_devices)


def format_duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def truncate_metrics(path: str, last_step: int) -> None:
    """Keeps the lines of steps ``<= last_step``; drops later ones and a torn last line (local or remote)."""
    if not paths.exists(path):
        return
    kept = []
    for line in paths.read_text(path).splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a kill
        if int(record.get("step", -1)) <= last_step:
            kept.append(json.dumps(record) + "\n")
    paths.write_text(path, "".join(kept))


class _EventFile:
    """One TensorBoard event file on an object store, written through :mod:`mathjax.io.paths`.

    Kept in memory and uploaded whole (one atomic object) on each flush and
    at close, as tensorboardX's own GCS writer does; unlike that one it does
    not upload again when garbage-collected after close (an extra upload at
    interpreter exit, retried for minutes if the store is gone by then).
    """

    def __init__(self, path: str):
        self.path = path
        self._buffer = io.BytesIO()
        self._uploaded = -1
        self._closed = False

    def write(self, data: bytes) -> None:
        self._buffer.write(data)

    def flush(self) -> None:
        if not self._closed and self._buffer.tell() != self._uploaded:
            paths.write_bytes(self.path, self._buffer.getvalue())
            self._uploaded = self._buffer.tell()

    def close(self) -> None:
        self.flush()
        self._closed = True


class _EventFiles:
    """A tensorboardX writer factory (``record_writer.register_writer_factory``) for ``gs://`` logdirs."""

    def open(self, path: str) -> _EventFile:
        return _EventFile(path)

    def directory_check(self, path: str) -> None:
        del path  # object stores have no directories to create


def _tensorboard_writer(logdir: str, purge_step: int | None):
    """A tensorboardX SummaryWriter for ``logdir``, or None (logged) when it cannot write there.

    Local dirs as before; ``gs://`` through the same path layer (gcsfs) as the
    rest of the workdir (registered with tensorboardX for ``gs``); other
    schemes only where tensorboardX has a writer of its own (``s3`` via boto3).
    """
    try:
        from tensorboardX import SummaryWriter, record_writer
    except ImportError:  # pragma: no cover - optional dependency
        logging.warning("tensorboardX is not installed; no TensorBoard events")
        return None
    if paths.is_remote(logdir):
        scheme = logdir.split("://", 1)[0]
        if scheme == "gs":
            record_writer.register_writer_factory("gs", _EventFiles())
        elif scheme not in record_writer.REGISTERED_FACTORIES:
            logging.warning("tensorboardX cannot write %s:// paths; no TensorBoard events for %s", scheme, logdir)
            return None
    try:
        return SummaryWriter(logdir, purge_step=purge_step)
    except Exception as e:  # noqa: BLE001 - missing cloud credentials must not stop training
        logging.warning("TensorBoard events off: cannot write %s (%s: %s)", logdir, type(e).__name__, e)
        return None


class MetricsWriter:
    """Appends metrics to ``metrics.jsonl`` and TensorBoard (process 0 only; a no-op elsewhere).

    Local lines are flushed and fsynced as they come. In a remote workdir
    they are uploaded every ``appends.REMOTE_APPEND_SECONDS`` (30 s) and on
    :meth:`flush`, which the trainer calls before each checkpoint, so every
    step up to a checkpoint is in the file once the checkpoint exists.
    """

    def __init__(self, workdir: str, resume_step: int = 0, enabled: bool | None = None, tensorboard: bool = True):
        self.enabled = jax.process_index() == 0 if enabled is None else enabled
        self.path = paths.join(workdir, METRICS_FILE)
        self._file: appends.AppendFile | None = None
        self._tb = None
        if not self.enabled:
            return
        paths.makedirs(workdir)
        truncate_metrics(self.path, resume_step)
        self._file = appends.AppendFile(self.path)
        if tensorboard:
            # purge_step hides events a killed run wrote past the checkpoint.
            self._tb = _tensorboard_writer(paths.join(workdir, TENSORBOARD_DIR), resume_step + 1 if resume_step else None)

    def write(self, step: int, metrics: dict[str, Any]) -> None:
        if not self.enabled:
            return
        record = {"step": int(step), **{k: _plain(v) for k, v in metrics.items()}}
        self._file.write(json.dumps(record) + "\n")
        self._file.commit()
        if self._tb is not None:
            for key, value in record.items():
                if key != "step" and isinstance(value, (int, float)) and value is not None:
                    self._tb.add_scalar(key, value, step)

    def flush(self) -> None:
        """Makes every line written so far durable (uploads it in a remote workdir) and flushes TensorBoard."""
        if self._file is not None:
            self._file.sync()
        if self._tb is not None:
            self._tb.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._tb is not None:
            self._tb.close()
            self._tb = None


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else value
    return value


class Throughput:
    """Tokens/s and ETA over the steps since the last report (compile time excluded by the caller)."""

    def __init__(self, total_steps: int, start_step: int):
        self.total_steps = total_steps
        self._t0 = time.perf_counter()
        self._last_t = self._t0
        self._last_step = start_step
        self._start_step = start_step

    def reset(self, step: int) -> None:
        self._t0 = self._last_t = time.perf_counter()
        self._last_step = self._start_step = step

    def exclude(self, seconds: float) -> None:
        """Leaves out time spent outside training steps (eval, checkpoint copies)."""
        self._t0 += seconds
        self._last_t += seconds

    def update(self, step: int, tokens_per_step: float) -> dict[str, float]:
        now = time.perf_counter()
        steps = max(1, step - self._last_step)
        dt = max(now - self._last_t, 1e-9)
        self._last_t, self._last_step = now, step
        done = step - self._start_step
        avg = (now - self._t0) / max(1, done)
        return {
            "step_time": dt / steps,
            "tokens_per_sec": tokens_per_step * steps / dt,
            "eta_seconds": avg * (self.total_steps - step),
        }
