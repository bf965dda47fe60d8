"""The sampler's default batch: as many rows as the mesh's memory holds, split over its data axis.

Decode is memory-bound until the batch is large, so the default fills the
devices: after the weights really resident on a device (measured from the
loaded arrays' shards, not computed from the config), each row costs its tail
of ``max_new_tokens`` KV entries plus its share of the prompt buffers, and a
few per-row activations (the float32 logits dominate). Rows are then a
multiple of the data-parallel ways, so every device decodes its own rows.
Where the backend reports no memory (CPU), ``rows_per_shard`` rows per data
shard are used. ``scripts/sample.py --dry_run`` checks a batch against the
compiled program's real memory.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import numpy as np

from mathjax.model.config import ModelConfig
from mathjax.sample.prefill import bucket_length

GiB = 1024**3
# Left free for the compiler's temporaries, fragmentation and the runtime.
HEADROOM_FRACTION = 0.10
HEADROOM_BYTES = 1 * GiB


@dataclasses.dataclass(frozen=True)
class BatchChoice:
    batch_size: int
    reason: str


def resident_bytes(params) -> int:
    """Bytes of ``params`` held by the first local device (its shards, replicas counted)."""
    device = jax.local_devices()[0]
    total = 0
    for leaf in jax.tree_util.tree_leaves(params):
        for shard in leaf.addressable_shards:
            if shard.device == device:
                total += shard.data.nbytes
    return total


def device_memory_bytes() -> int | None:
    """The first local device's memory limit, or None where the backend reports none (CPU)."""
    from mathjax.train.fit_check import device_memory_limit

    return device_memory_limit(jax.local_devices()[0])


def auto_batch_size(
    config: ModelConfig, mesh_shape: dict[str, int], weight_bytes: int, memory: int | None,
    max_new_tokens: int, prompt_len: int, num_samples: int, kv_dtype: str, rows_per_shard: int = 256,
    max_rows_per_shard: int = 1024,
) -> BatchChoice:
    """Rows for a batch that fits ``memory`` per device (see the module docstring).

    Args:
      mesh_shape: the mesh's axis sizes (``data``/``fsdp`` split rows, ``tensor`` splits KV heads).
      weight_bytes: weights resident on one device (``resident_bytes``).
      memory: bytes per device, or None (CPU): ``rows_per_shard`` rows per data shard.
      prompt_len: longest prompt (tokens); prompts share buffers, two per slot.
    """
    ways = int(mesh_shape.get("data", 1) * mesh_shape.get("fsdp", 1))
    if memory is None:
        return BatchChoice(rows_per_shard * ways, f"{rows_per_shard} rows per data shard x {ways} (no memory "
                                                  "limit reported by the backend)")
    tensor = int(mesh_shape.get("tensor", 1))
    heads = config.num_kv_heads
    heads_local = heads // tensor if heads % tensor == 0 else heads
    itemsize = np.dtype(kv_dtype).itemsize
    per_token = 2 * config.num_layers * heads_local * config.resolved_head_dim * itemsize
    # A row's tail, its share of the slot's two prompt buffers (rows per slot is at
    # least min(num_samples, 4)), and float32 logits + sampling temporaries (x3).
    rows_per_slot = max(1, min(num_samples, 4))
    prompt_share = 2 * bucket_length(max(prompt_len - 1, 1)) / rows_per_slot
    per_row = per_token * (max_new_tokens + prompt_share) + 3 * 4 * config.vocab_size
    budget = memory * (1 - HEADROOM_FRACTION) - HEADROOM_BYTES - weight_bytes
    if budget <= per_row:
        raise ValueError(
            f"the weights take {weight_bytes / GiB:.1f} GiB of {memory / GiB:.1f} GiB per device: no room for "
            f"even one row of {max_new_tokens} new tokens; shard the model over more devices (--mesh with a "
            "larger tensor or fsdp axis)")
    rows = min(max_rows_per_shard, int(budget // per_row))
    rows = 2 ** int(math.log2(rows)) if rows >= 8 else rows  # powers of two divide sample counts best
    return BatchChoice(rows * ways, f"{rows} rows per data shard x {ways}: {weight_bytes / GiB:.1f} GiB weights, "
                                    f"{per_row / 2**20:.1f} MiB per row, {memory / GiB:.1f} GiB per device")
