"""Optimizer and learning-rate schedule from ``config.optimizer``.

The paper's recipe: Adam(W), cosine decay, linear warmup over 4% of the steps,
peak LR 2e-5 (2e-6 for Mistral-7B). Weight decay applies to matrices
(embeddings, projections) only, never to norm scales or biases.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import optax

from mathjax.model import llama
from mathjax.model.config import ModelConfig


def warmup_steps(opt_config: Any, total_steps: int) -> int:
    """Warmup length: ``warmup_steps`` if set (> 0), else ``warmup_ratio`` of the run, rounded up."""
    explicit = int(opt_config.get("warmup_steps", 0) or 0)
    if explicit > 0:
        return min(explicit, total_steps)
    return min(total_steps, int(math.ceil(float(opt_config.warmup_ratio) * total_steps)))


def make_schedule(opt_config: Any, total_steps: int) -> optax.Schedule:
    """``cosine`` (to ``final_lr_ratio`` x peak), ``linear`` (to 0) or ``constant``, after linear warmup."""
    peak = float(opt_config.lr)
    warm = warmup_steps(opt_config, total_steps)
    end = peak * float(opt_config.get("final_lr_ratio", 0.0))
    kind = opt_config.schedule
    if kind == "cosine":
        return optax.warmup_cosine_decay_schedule(0.0, peak, warm, max(total_steps, warm + 1), end)
    if kind == "linear":
        return optax.join_schedules(
            [optax.linear_schedule(0.0, peak, warm), optax.linear_schedule(peak, end, max(1, total_steps - warm))],
            [warm])
    if kind == "constant":
        return optax.join_schedules([optax.linear_schedule(0.0, peak, warm), optax.constant_schedule(peak)], [warm])
    raise ValueError(f"unknown schedule {kind!r}; expected cosine, linear or constant")


def decay_mask(config: ModelConfig) -> Any:
    """True for parameters that get weight decay: those with an ``embed`` axis (matrices)."""
    return jax.tree_util.tree_map(
        lambda names: "embed" in names, llama.logical_axes(config), is_leaf=lambda v: isinstance(v, tuple))


def make_optimizer(opt_config: Any, model_config: ModelConfig, total_steps: int) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """``(optimizer, schedule)``: global-norm clipping, then AdamW / Adam / SGD with the schedule."""
    schedule = make_schedule(opt_config, total_steps)
    name = opt_config.name
    wd = float(opt_config.weight_decay)
    if name in ("adamw", "adam"):
        core = optax.adamw(schedule, b1=float(opt_config.b1), b2=float(opt_config.b2), eps=float(opt_config.eps),
                           weight_decay=wd, mask=decay_mask(model_config))
    elif name == "sgd":
        core = optax.chain(optax.add_decayed_weights(wd, decay_mask(model_config)) if wd else optax.identity(),
                           optax.sgd(schedule, momentum=float(opt_config.get("momentum", 0.0)) or None))
    else:
        raise ValueError(f"unknown optimizer {name!r}; expected adamw, adam or sgd")
    clip = float(opt_config.clip_norm)
    parts = ([optax.clip_by_global_norm(clip)] if clip > 0 else []) + [core]
    return optax.chain(*parts), schedule
