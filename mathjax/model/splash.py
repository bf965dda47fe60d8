"""Splash attention (Pallas, TPU) for packed training rows, and the checks that decide when it runs.

Same contract as the XLA reference (:func:`mathjax.model.attention.masked_attention`
with :func:`~mathjax.model.attention.segment_mask`): causal by token order
within each segment, padding (segment 0) a segment of its own, optional
sliding window, grouped-query heads. The kernel tiles queries and keys in
blocks and never materialises the ``[T, T]`` scores, which is where XLA's path
spends its activation memory.

When it cannot run, :func:`try_segment_attention` logs why (once per reason)
and returns None so the caller uses XLA instead. Reasons: not a TPU (and not
interpret mode), ``head_dim`` not a multiple of 128 (TPU lane width), sequence
length not a multiple of 128 (the smallest block), or query and KV heads split
differently over the ``tensor`` mesh axis.

Interpret mode (``MATHJAX_SPLASH_INTERPRET=1``) runs the same kernel through
Pallas' interpreter on any backend: slow, but it is how CPU tests check the
kernel against the XLA path (tests/test_attention_kernels.py).
"""

from __future__ import annotations

import logging
import os
from typing import Any

import jax
import jax.numpy as jnp
from jax.sharding import Mesh, PartitionSpec

INTERPRET_ENV = "MATHJAX_SPLASH_INTERPRET"
LANES = 128  # TPU vector lane width: head_dim and every block must be a multiple of it
BLOCK_CHOICES = (512, 256, 128)  # largest first: bigger tiles amortise the per-block overhead on TPU

_logged: set[str] = set()


def interpret_mode() -> bool:
    """True when ``MATHJAX_SPLASH_INTERPRET`` asks for Pallas' interpreter (any backend, slow)."""
    return os.environ.get(INTERPRET_ENV, "").strip().lower() in ("1", "true", "yes")


def _log_once(message: str) -> None:
    # A scanned layer stack traces attention once per compile, but every
    # compile (train step, eval step, each shape) would repeat the same line.
    if message not in _logged:
        _logged.add(message)
        logging.warning(message)


def block_size(seq_len: int) -> int | None:
    """The largest block in ``BLOCK_CHOICES`` that divides ``seq_len`` (None if none does)."""
    for block in BLOCK_CHOICES:
        if seq_len % block == 0:
            return block
    return None


def _mesh_specs(mesh: Mesh | None, q_shape: tuple[int, ...], k_shape: tuple[int, ...]) -> tuple[Any, Any, Any]:
    """``(batch axes, q heads axes, kv heads axes)`` on ``mesh``, by the logical-axis rules table."""
    from mathjax.parallel.rules import logical_to_spec

    if mesh is None or mesh.size == 1:
        return None, None, None
    batch, heads = logical_to_spec(("batch", "act_heads"), (q_shape[0], q_shape[2]), mesh)
    kv_heads = logical_to_spec(("kv_heads",), (k_shape[2],), mesh)[0]
    return batch, heads, kv_heads


def unsupported_reason(
    q_shape: tuple[int, ...], k_shape: tuple[int, ...], backend: str | None = None,
    mesh: Mesh | None = None, interpret: bool | None = None,
) -> str | None:
    """Why splash cannot run on these shapes (None if it can).

    Args:
      q_shape: ``[B, T, H, D]``; k_shape: ``[B, S, K, D]`` (self-attention: S == T).
      backend: ``jax.default_backend()`` when None.
      mesh: the active mesh (None or one device: no sharding constraints).
      interpret: Pallas interpret mode; default from ``MATHJAX_SPLASH_INTERPRET``.
    """
    from mathjax.parallel.rules import target_platform

    backend = backend or target_platform()
    interpret = interpret_mode() if interpret is None else interpret
    _, t, h, d = q_shape
    s, k = k_shape[1], k_shape[2]
    if backend != "tpu" and not interpret:
        return f"splash needs a TPU (backend is {backend}; {INTERPRET_ENV}=1 runs it interpreted)"
    if d % LANES:
        return f"head_dim={d} is not a multiple of {LANES}"
    if t != s:
        return f"query length {t} != key length {s} (splash here is self-attention over packed rows)"
    if block_size(t) is None:
        return f"sequence length {t} is not a multiple of {LANES}"
    if h % k:
        return f"num_heads={h} is not a multiple of num_kv_heads={k}"
    _, heads, kv_heads = _mesh_specs(mesh, q_shape, k_shape)
    if heads != kv_heads:
        # Each shard's kernel maps query head i to KV head i // (H / K); that
        # needs query and KV heads split by the same factor.
        return (f"query heads ({h}) and KV heads ({k}) split differently over the mesh "
                f"({heads} vs {kv_heads}, mesh {dict(mesh.shape)})")
    return None


def make_mask(num_heads: int, seq_len: int, window: int | None):
    """The static part of the mask, per head: causal, or causal within ``window`` tokens.

    The window counts tokens (``k > q - window``); the XLA path counts
    positions. They agree because packed rows number each segment's positions
    consecutively, and tokens of other segments are masked by segment ids anyway.
    """
    from jax.experimental.pallas.ops.tpu import splash_attention as sa

    shape = (seq_len, seq_len)
    head = sa.CausalMask(shape) if window is None else sa.LocalMask(shape, window_size=(window - 1, 0), offset=0)
    return sa.MultiHeadMask([head] * num_heads)


def _kernel(num_heads: int, seq_len: int, window: int | None, interpret: bool):
    # Made inside the trace on purpose: the kernel's mask tables then become
    # constants of this program. A kernel cached across traces would carry
    # arrays committed to one local device into every later (possibly
    # multi-host) program. The costly numpy part, the mask's block structure,
    # is cached by Pallas itself (`splash_attention_mask_info._process_mask`).
    from jax.experimental.pallas.ops.tpu import splash_attention as sa

    block = block_size(seq_len)
    sizes = sa.BlockSizes(
        block_q=block, block_kv=block, block_kv_compute=block,
        block_q_dkv=block, block_kv_dkv=block, block_kv_dkv_compute=block,
        block_q_dq=block, block_kv_dq=block,
    )
    return sa.make_splash_mha(
        make_mask(num_heads, seq_len, window), block_sizes=sizes, head_shards=1, q_seq_shards=1,
        interpret=interpret,
    )


def splash_attention(
    q: jax.Array, k: jax.Array, v: jax.Array, segment_ids: jax.Array, window: int | None,
    mesh: Mesh | None = None, interpret: bool | None = None,
) -> jax.Array:
    """Splash attention over packed rows; call :func:`unsupported_reason` first.

    q [B, T, H, D], k/v [B, T, K, D], segment_ids [B, T] (0 = padding). Returns
    [B, T, H, D] in q's dtype. On a multi-device ``mesh`` the kernel runs per
    shard under ``shard_map`` (Pallas calls are not partitioned by GSPMD):
    rows over ``data``/``fsdp``, heads over ``tensor``, as the rules table says.
    """
    from jax.experimental.pallas.ops.tpu import splash_attention as sa

    interpret = interpret_mode() if interpret is None else interpret
    d = q.shape[-1]
    # The kernel does not scale; scale q in its own dtype, as the XLA path does.
    q = q * jnp.asarray(d**-0.5, q.dtype)

    def local(q, k, v, seg):
        kernel = _kernel(q.shape[2], q.shape[1], window, interpret)
        heads_major = lambda x: jnp.swapaxes(x, 1, 2)  # noqa: E731 - [B, T, H, D] -> [B, H, T, D]
        out = jax.vmap(lambda q, k, v, s: kernel(q, k, v, segment_ids=sa.SegmentIds(s, s)))(
            heads_major(q), heads_major(k), heads_major(v), seg)
        return heads_major(out)

    if mesh is None or mesh.size == 1:
        return local(q, k, v, segment_ids)
    batch, heads, kv_heads = _mesh_specs(mesh, q.shape, k.shape)
    q_spec = PartitionSpec(batch, None, heads, None)
    kv_spec = PartitionSpec(batch, None, kv_heads, None)
    return jax.shard_map(
        local, mesh=mesh, in_specs=(q_spec, kv_spec, kv_spec, PartitionSpec(batch, None)), out_specs=q_spec,
        check_vma=False,
    )(q, k, v, segment_ids)


def try_segment_attention(
    q: jax.Array, k: jax.Array, v: jax.Array, segment_ids: jax.Array, window: int | None,
) -> jax.Array | None:
    """Splash attention on the active mesh, or None (reason logged once) when it cannot run."""
    from mathjax.parallel.rules import active_mesh

    mesh = active_mesh()
    reason = unsupported_reason(q.shape, k.shape, mesh=mesh)
    if reason is not None:
        _log_once(f"attention_impl=splash: {reason}; using xla")
        return None
    return splash_attention(q, k, v, segment_ids, window, mesh=mesh)
