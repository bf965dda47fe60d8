"""The sampler's KV cache: one prompt KV per prefix slot, a private tail per row.

Layout (per layer, heads-major, see ``attention.segmented_prefix_attention``)::

    prefix_k, prefix_v : [G * NB, K, P, D]      NB prompt buffers per slot (group)
    tail_k, tail_v     : tuple of [G, R, K, S_i, D]  the rows' own tokens, in segments

``G`` prefix slots x ``R`` rows per slot = the batch. A question's prompt KV
is computed and stored once per slot buffer, not once per sample: for 256
samples of a 7B model with a 512-token prompt that is 256 MiB instead of 64 GiB.

Each slot has ``NB`` (default 2) prompt buffers and every row says which one
it reads. A row that finishes takes the next pending sample of either of its
slot's questions at once, so no row waits for its neighbours' slowest sample;
when a buffer's question has no samples left and no row reads it, the next
question is prefilled into it. Rows move between questions without their
prompt being repeated per row (the alternative, a per-row gather of the
prompt, would read the prompt once per row per step: for 7B at 256 rows that
is more bytes than the weights).

The tail is split into segments of growing size (64, 64, 128, 256, ...) so a
decode loop only reads the segments its rows can reach. Each segment is its own
buffer: a decode loop passes a prefix of the segment list, never a slice (XLA
would copy a slice every step).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from mathjax.model.config import ModelConfig
from mathjax.parallel.rules import logical_to_spec


def tail_segments(max_new_tokens: int, first: int = 64) -> tuple[int, ...]:
    """Segment sizes covering ``max_new_tokens`` tail slots: first, first, 2*first, 4*first, ...

    Each size doubles the reachable window, so a run compiles at most
    ``log2(max_new_tokens / first) + 1`` decode loops and reads at most twice
    the tail it needs.
    """
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    sizes, total = [], 0
    while total < max_new_tokens:
        size = min(first if total < 2 * first else total, max_new_tokens - total)
        sizes.append(size)
        total += size
    return tuple(sizes)


@dataclasses.dataclass(frozen=True)
class CacheLayout:
    """Static shape of the sampler's cache."""

    groups: int  # G: prefix slots
    rows_per_group: int  # R: samples decoded together per slot
    prefix_len: int  # P: prompt capacity per slot (tokens before the last prompt token)
    segments: tuple[int, ...]  # tail segment sizes; sum = max new tokens
    kv_heads: int
    head_dim: int
    num_layers: int
    dtype: str
    buffers: int = 2  # NB: prompt buffers per slot

    @property
    def batch(self) -> int:
        return self.groups * self.rows_per_group

    @property
    def tail_len(self) -> int:
        return sum(self.segments)

    def bytes_per_token(self) -> int:
        return 2 * self.num_layers * self.kv_heads * self.head_dim * np.dtype(jnp.dtype(self.dtype)).itemsize

    def shared_bytes(self) -> int:
        """Bytes this cache holds: prompts once per slot plus every row's tail."""
        return (self.groups * self.buffers * self.prefix_len + self.batch * self.tail_len) * self.bytes_per_token()

    def unshared_bytes(self) -> int:
        """Bytes a cache that repeats the prompt in every row would need (same batch)."""
        return self.batch * (self.prefix_len + self.tail_len) * self.bytes_per_token()


def make_layout(config: ModelConfig, groups: int, rows_per_group: int, prefix_len: int,
                max_new_tokens: int, dtype: str | None = None, first_segment: int = 64,
                buffers: int = 2) -> CacheLayout:
    return CacheLayout(
        groups=groups, rows_per_group=rows_per_group, prefix_len=prefix_len,
        segments=tail_segments(max_new_tokens, first_segment), kv_heads=config.num_kv_heads,
        head_dim=config.resolved_head_dim, num_layers=config.num_layers,
        dtype=str(jnp.dtype(dtype or config.dtype)), buffers=buffers,
    )


def group_axes(mesh: Mesh, groups: int):
    """Mesh axes that split the group axis (rows over ``data``/``fsdp``), or None if none divides it.

    Rows of a group stay on one device: a group's prompt KV is never split
    from the rows that read it.
    """
    return logical_to_spec(("cache_batch",), (groups,), mesh)[0]


def _sharding(mesh: Mesh, layout: CacheLayout, shape: tuple[int, ...], heads_axis: int) -> NamedSharding:
    """Groups over data, KV heads over ``tensor`` (when they divide), the rest replicated."""
    axes: list = [None] * len(shape)
    axes[0] = group_axes(mesh, layout.groups)
    axes[heads_axis] = logical_to_spec(("kv_heads",), (shape[heads_axis],), mesh)[0]
    return NamedSharding(mesh, PartitionSpec(*axes))


def cache_shardings(mesh: Mesh, layout: CacheLayout) -> tuple:
    """Shardings matching ``init_cache``."""
    k, d = layout.kv_heads, layout.head_dim
    prefix = _sharding(mesh, layout, (layout.groups * layout.buffers, k, layout.prefix_len, d), 1)
    tails = tuple(
        _sharding(mesh, layout, (layout.groups, layout.rows_per_group, k, s, d), 2) for s in layout.segments
    )
    return tuple((prefix, prefix, tails, tails) for _ in range(layout.num_layers))


def row_sharding(mesh: Mesh, layout: CacheLayout, ndim: int = 1) -> NamedSharding:
    """Sharding of per-row arrays [B, ...] (and per-group [G]) consistent with the cache's group split."""
    return NamedSharding(mesh, PartitionSpec(group_axes(mesh, layout.groups), *([None] * (ndim - 1))))


def init_cache(mesh: Mesh, layout: CacheLayout) -> tuple:
    """Zeroed cache, created directly in its shards."""
    return make_init_cache_fn(mesh, layout)()


def make_init_cache_fn(mesh: Mesh, layout: CacheLayout):
    """Jitted ``() -> zeroed cache`` (compile once per layout; see ``sample.compiled``)."""
    k, d = layout.kv_heads, layout.head_dim
    dtype = jnp.dtype(layout.dtype)

    def make():
        prefix = (layout.groups * layout.buffers, k, layout.prefix_len, d)
        tails = tuple((layout.groups, layout.rows_per_group, k, s, d) for s in layout.segments)
        return tuple(
            (jnp.zeros(prefix, dtype), jnp.zeros(prefix, dtype),
             tuple(jnp.zeros(t, dtype) for t in tails), tuple(jnp.zeros(t, dtype) for t in tails))
            for _ in range(layout.num_layers)
        )

    return jax.jit(make, out_shardings=cache_shardings(mesh, layout))


def active_segments(layout: CacheLayout, max_length: int) -> int:
    """Number of leading segments needed to write tail slot ``max_length`` (0-based)."""
    total = 0
    for i, size in enumerate(layout.segments):
        total += size
        if max_length < total:
            return i + 1
    return len(layout.segments)


def window(layout: CacheLayout, num_segments: int) -> int:
    """Tail slots covered by the first ``num_segments`` segments."""
    return sum(layout.segments[:num_segments])
