"""Training metrics: MFU from a peak-FLOPs table, and the writers (stdout, metrics.jsonl, TensorBoard).

Only process 0 writes. On resume, ``metrics.jsonl`` lines past the restored
step are dropped first (they belong to steps that will be replayed), so the
file never holds a step twice.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from typing import Any

import jax

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
    """Keeps the lines of steps ``<= last_step``; drops later ones and a torn last line."""
    if not os.path.exists(path):
        return
    kept = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a kill
            if int(record.get("step", -1)) <= last_step:
                kept.append(json.dumps(record) + "\n")
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.writelines(kept)
    os.replace(tmp, path)


class MetricsWriter:
    """Appends metrics to ``metrics.jsonl`` and TensorBoard (process 0 only; a no-op elsewhere)."""

    def __init__(self, workdir: str, resume_step: int = 0, enabled: bool | None = None, tensorboard: bool = True):
        self.enabled = jax.process_index() == 0 if enabled is None else enabled
        self.path = os.path.join(workdir, METRICS_FILE)
        self._file = None
        self._tb = None
        if not self.enabled:
            return
        os.makedirs(workdir, exist_ok=True)
        truncate_metrics(self.path, resume_step)
        self._file = open(self.path, "a", encoding="utf-8")
        if tensorboard:
            try:
                from tensorboardX import SummaryWriter

                # purge_step hides events a killed run wrote past the checkpoint.
                self._tb = SummaryWriter(os.path.join(workdir, TENSORBOARD_DIR), purge_step=resume_step + 1 if resume_step else None)
            except ImportError:  # pragma: no cover - optional dependency
                logging.warning("tensorboardX is not installed; no TensorBoard events")

    def write(self, step: int, metrics: dict[str, Any]) -> None:
        if not self.enabled:
            return
        record = {"step": int(step), **{k: _plain(v) for k, v in metrics.items()}}
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        if self._tb is not None:
            for key, value in record.items():
                if key != "step" and isinstance(value, (int, float)) and value is not None:
                    self._tb.add_scalar(key, value, step)

    def flush(self) -> None:
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
