"""Leave rows that carry no gradient out of an RL update, without changing the update.

Under the clipped surrogate a sample whose advantage is 0 on every response
token contributes ``-min(ratio * 0, clip(ratio) * 0) = 0`` to the loss and
nothing to its gradient, whatever the ratio. With GRPO's group-normalised
advantages every sample of a group whose rewards are all equal is such a row;
on a sharp model that is half the batch or more (the demo's SFT model: 51% of
its groups). The update's forward and backward passes over those rows are pure
cost, so :func:`compact` drops them and pads the rest to a small grid of row
counts (bounded recompiles), handing the loss the denominators of the full
minibatch: the loss, its gradient and so the optimizer step are the full
batch's, up to float summation order.

Exact only without a KL term (every row's KL has a gradient), which the
trainer checks. Diagnostics the step averages over rows (entropy, clip
fraction, the sampler-vs-trainer log-prob gap) then cover the rows trained on.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mathjax.rl.rollout import padded_width
from mathjax.rl.step import BATCH_KEYS

DENOMINATORS = ("num_samples", "num_tokens")


def applies(rl: Any) -> bool:
    """Whether the update skips zero-advantage rows under ``rl`` (the config's ``rl`` block): asked for, and
    exact (no KL term). The trainer and the dry run's compile of the update both read it."""
    return bool(rl.get("skip_zero_advantage_rows", True)) and not float(rl.kl_coef)


def informative_rows(advantages: np.ndarray, mask: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """[N] bool: rows whose policy-gradient term can be non-zero (weighted, with a non-zero advantage on a
    response token). ``advantages``: [N] or [N, T] (per token)."""
    adv = np.asarray(advantages)
    on = (np.asarray(mask) > 0) & (np.asarray(weight) > 0)[:, None]
    nonzero = (adv != 0)[:, None] if adv.ndim == 1 else adv != 0
    return np.any(on & nonzero, axis=1)


def bucket_rows(kept: int, rows: int, multiple: int, buckets: int = 4) -> int:
    """Rows a compacted minibatch of ``kept`` informative rows (out of ``rows``) is trained at: ``kept``
    rounded up to a grid of at most ``buckets`` counts, each a multiple of ``multiple`` (the mesh's row
    shards), at least one grid step, at most ``rows``."""
    if multiple < 1 or buckets < 1:
        raise ValueError(f"multiple and buckets must be positive, got {multiple} and {buckets}")
    step = -(-max(1, -(-rows // buckets)) // multiple) * multiple
    return min(rows, max(step, -(-kept // step) * step))


def compact(batch: dict[str, np.ndarray], keep: np.ndarray, *, seq_len: int, row_multiple: int = 1,
            buckets: int = 4, min_width: int = 64) -> dict[str, np.ndarray]:
    """The rows ``keep`` of a minibatch, padded with weight-0 rows to :func:`bucket_rows` and cut to the
    narrowest width bucket (``rollout.padded_width`` over ``seq_len``) that holds them, plus the full
    minibatch's loss denominators ``num_samples`` and ``num_tokens`` (0-d float32).

    Every process computes the same result from the same host batch (multi-host meshes).
    """
    missing = [k for k in BATCH_KEYS if k not in batch]
    if missing:
        raise KeyError(f"batch lacks {missing}")
    weight = np.asarray(batch["weight"], np.float32)
    mask = np.asarray(batch["mask"], np.float32)
    rows, width = mask.shape
    keep = np.asarray(keep, bool)
    if keep.shape != (rows,):
        raise ValueError(f"keep has shape {keep.shape}, the batch {rows} rows")
    totals = dict(zip(DENOMINATORS, (np.float32(weight.sum()), np.float32((mask * weight[:, None]).sum()))))
    index = np.flatnonzero(keep)
    out_rows = bucket_rows(len(index), rows, row_multiple, buckets)
    # A row's used width is its last response target's column + 2 (tokens run one past the targets).
    cols = np.flatnonzero(mask[index].any(axis=0))
    used = int(cols[-1]) + 2 if cols.size else 1
    out_width = min(width, padded_width(used, max(seq_len, width), min_width))
    out = {}
    for key in BATCH_KEYS:
        value = np.asarray(batch[key])
        picked = value[index][:, :out_width] if value.ndim == 2 else value[index]
        padded = np.zeros((out_rows,) + picked.shape[1:], value.dtype)
        padded[: len(index)] = picked
        out[key] = padded
    return {**out, **totals}
