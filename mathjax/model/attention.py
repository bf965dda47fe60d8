"""Attention masks, KV-cache layouts and the attention kernels.

Three ways to run a layer, chosen by the ``context`` object passed down the
model (each a pytree, so it crosses ``jit``):

* :class:`SegmentContext` - no cache; packed rows with ``segment_ids`` (0 =
  padding) attend causally within their own segment. Training and scoring.
* :class:`CacheContext` - a per-row KV cache ``[batch, max_len, kv_heads,
  head_dim]``; the new tokens are written at ``lengths`` and attend to
  everything before them. Prefill and plain decoding.
* :class:`SharedPrefixContext` - rows grouped ``[groups, rows_per_group]``;
  each group's prompt KV is stored once ``[groups, prefix_len, ...]`` and each
  row keeps only its own tail ``[groups, rows, tail_len, ...]``. Scores over
  the prefix and over the tail are joined in one softmax, so the result equals
  attention over the concatenated sequence exactly.
"""

from __future__ import annotations

import logging

import jax
import jax.numpy as jnp
from flax import struct

_NEG = -1e30  # finite: a fully masked (padding) row gives a uniform, not NaN, softmax


@struct.dataclass
class SegmentContext:
    segment_ids: jax.Array  # [batch, length] int32; 0 marks padding


@struct.dataclass
class CacheContext:
    lengths: jax.Array  # [batch] int32: tokens already in the cache before this call


@struct.dataclass
class SharedPrefixContext:
    prefix_lengths: jax.Array  # [groups] int32: valid prompt tokens per group
    tail_lengths: jax.Array  # [groups, rows] int32: tail tokens already cached per row
    # Static options for decode loops (compile-time, not traced):
    # heads_major: caches are prefix [G, K, P, D] and tail [G, R, K, S, D], so
    #   each head's keys are contiguous and the per-row products are plain
    #   batched matmuls. With the default [.., S, K, D] layout XLA:CPU transposes
    #   the whole tail every step (measured ~20x slower at 256 rows).
    # tail_window: attend over tail[:tail_window] only (the caller guarantees
    #   tail_lengths + T <= tail_window); writes still go to the full buffer.
    #   Early decode steps then do not read the empty end of the tail.
    heads_major: bool = struct.field(pytree_node=False, default=False)
    tail_window: int | None = struct.field(pytree_node=False, default=None)


def _window_ok(q_pos: jax.Array, k_pos: jax.Array, window: int | None) -> jax.Array | bool:
    if window is None:
        return True
    return k_pos > q_pos - window


def _grouped_scores(q: jax.Array, k: jax.Array) -> jax.Array:
    """q [..., T, K, G, D] x k [..., S, K, D] -> float32 scores [..., K, G, T, S]."""
    return jnp.einsum("...tkgd,...skd->...kgts", q, k, preferred_element_type=jnp.float32)


def _grouped_values(p: jax.Array, v: jax.Array) -> jax.Array:
    """probs [..., K, G, T, S] x v [..., S, K, D] -> [..., T, K, G, D]."""
    return jnp.einsum("...kgts,...skd->...tkgd", p.astype(v.dtype), v, preferred_element_type=jnp.float32)


def masked_attention(q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array) -> jax.Array:
    """Grouped-query attention with an explicit mask (the reference XLA path).

    q [B, T, H, D], k/v [B, S, K, D], mask broadcastable to [B, T, S] (True = attend).
    Returns [B, T, H, D] in q's dtype. Softmax in float32.
    """
    b, t, h, d = q.shape
    kv = k.shape[2]
    qg = q.reshape(b, t, kv, h // kv, d) * jnp.asarray(d**-0.5, q.dtype)
    scores = _grouped_scores(qg, k)
    scores = jnp.where(mask[:, None, None, :, :], scores, _NEG)
    probs = jax.nn.softmax(scores, axis=-1)
    out = _grouped_values(probs, v)
    return out.reshape(b, t, h, d).astype(q.dtype)


def segment_mask(segment_ids: jax.Array, positions: jax.Array, window: int | None) -> jax.Array:
    """[B, T, T] mask: causal (by token order) within the same segment.

    Padding (segment 0) is just another segment: real tokens never see it, and a
    padding token always sees itself, so no row is fully masked (no NaN from
    fused kernels that would leak into gradients through the masked loss).
    """
    t = segment_ids.shape[1]
    causal = jnp.arange(t)[:, None] >= jnp.arange(t)[None, :]
    mask = causal[None] & (segment_ids[:, :, None] == segment_ids[:, None, :])
    if window is not None:
        mask &= _window_ok(positions[:, :, None], positions[:, None, :], window)
    return mask


def select_impl(requested: str) -> str:
    """Resolves ``auto`` to the best kernel for the backend; falls back with a logged reason."""
    backend = jax.default_backend()
    if requested in ("auto", None):
        # cuDNN/splash are opt-in until validated on the hardware (issue 8).
        return "xla"
    if requested == "cudnn" and backend != "gpu":
        logging.warning("attention_impl=cudnn needs a GPU (backend is %s); using xla", backend)
        return "xla"
    if requested == "splash" and backend != "tpu":
        logging.warning("attention_impl=splash needs a TPU (backend is %s); using xla", backend)
        return "xla"
    if requested not in ("xla", "cudnn", "splash"):
        raise ValueError(f"unknown attention_impl {requested!r}; expected auto, xla, cudnn or splash")
    return requested


def segment_attention(
    q: jax.Array, k: jax.Array, v: jax.Array, ctx: SegmentContext, positions: jax.Array,
    window: int | None, impl: str = "xla",
) -> jax.Array:
    """Training/scoring attention over packed rows (no cache)."""
    impl = select_impl(impl)
    if impl == "cudnn" and q.dtype in (jnp.bfloat16, jnp.float16):
        # cuDNN flash attention: causal (and sliding window) by the kernel, packing by a segment mask.
        seg = ctx.segment_ids
        return jax.nn.dot_product_attention(
            q, k, v, mask=seg[:, None, :, None] == seg[:, None, None, :], is_causal=True,
            local_window_size=None if window is None else (window - 1, 0), implementation="cudnn",
        )
    return masked_attention(q, k, v, segment_mask(ctx.segment_ids, positions, window))


def _write_rows(cache: jax.Array, new: jax.Array, starts: jax.Array) -> jax.Array:
    """Writes new [B, T, ...] into cache [B, S, ...] at per-row offsets starts [B]."""
    def one(c, n, s):
        return jax.lax.dynamic_update_slice_in_dim(c, n.astype(c.dtype), s, axis=0)

    return jax.vmap(one)(cache, new, starts)


def cached_attention(
    q: jax.Array, k_new: jax.Array, v_new: jax.Array, kv: tuple[jax.Array, jax.Array],
    ctx: CacheContext, positions: jax.Array, window: int | None,
) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
    """Writes the new keys/values at ``ctx.lengths`` and attends over the cache."""
    k_cache, v_cache = kv
    k_cache = _write_rows(k_cache, k_new, ctx.lengths)
    v_cache = _write_rows(v_cache, v_new, ctx.lengths)
    t, s = q.shape[1], k_cache.shape[1]
    query_index = ctx.lengths[:, None] + jnp.arange(t)[None, :]  # [B, T]
    key_index = jnp.arange(s)
    mask = key_index[None, None, :] <= query_index[:, :, None]
    # Cache slots hold consecutive positions from 0, so slot index == position.
    mask &= _window_ok(positions[:, :, None], key_index[None, None, :], window)
    return masked_attention(q, k_cache, v_cache, mask), (k_cache, v_cache)


def _write_rows_heads_major(cache: jax.Array, new: jax.Array, starts: jax.Array) -> jax.Array:
    """Writes new [B, T, K, D] into cache [B, K, S, D] at per-row offsets starts [B]."""
    def one(c, n, s):
        return jax.lax.dynamic_update_slice_in_dim(c, jnp.swapaxes(n, 0, 1).astype(c.dtype), s, axis=1)

    return jax.vmap(one)(cache, new, starts)


def shared_prefix_attention(
    q: jax.Array, k_new: jax.Array, v_new: jax.Array, kv: tuple[jax.Array, ...],
    ctx: SharedPrefixContext, positions: jax.Array, window: int | None,
) -> tuple[jax.Array, tuple[jax.Array, ...]]:
    """Attention over (shared prompt KV) + (own tail KV), exact joint softmax.

    q/k_new/v_new: [G*R, T, ...]; kv = (prefix_k [G, P, K, D], prefix_v,
    tail_k [G, R, S, K, D], tail_v), or with ``ctx.heads_major`` prefix
    [G, K, P, D] and tail [G, R, K, S, D]. Only the tail is written.
    """
    pk, pv, tk, tv = kv
    g, r = ctx.tail_lengths.shape
    bt, t, h, d = q.shape
    starts = ctx.tail_lengths.reshape(-1)
    if ctx.heads_major:
        kvh, p_len = pk.shape[1], pk.shape[2]
        tk = _write_rows_heads_major(tk.reshape(g * r, *tk.shape[2:]), k_new, starts).reshape(tk.shape)
        tv = _write_rows_heads_major(tv.reshape(g * r, *tv.shape[2:]), v_new, starts).reshape(tv.shape)
        w = tk.shape[3] if ctx.tail_window is None else min(ctx.tail_window, tk.shape[3])
        tk_read, tv_read = tk[:, :, :, :w], tv[:, :, :, :w]
        pre_spec, tail_spec = "gkpd", "grksd"
    else:
        kvh, p_len = pk.shape[2], pk.shape[1]
        tk = _write_rows(tk.reshape(g * r, *tk.shape[2:]), k_new, starts).reshape(tk.shape)
        tv = _write_rows(tv.reshape(g * r, *tv.shape[2:]), v_new, starts).reshape(tv.shape)
        w = tk.shape[2] if ctx.tail_window is None else min(ctx.tail_window, tk.shape[2])
        tk_read, tv_read = tk[:, :, :w], tv[:, :, :w]
        pre_spec, tail_spec = "gpkd", "grskd"
    qg = q.reshape(g, r, t, kvh, h // kvh, d) * jnp.asarray(d**-0.5, q.dtype)
    # Prefix scores: one einsum per group, the prefix never copied per row.
    s_pre = jnp.einsum(f"grtkjd,{pre_spec}->grkjtp", qg, pk, preferred_element_type=jnp.float32)
    s_tail = jnp.einsum(f"grtkjd,{tail_spec}->grkjts", qg, tk_read, preferred_element_type=jnp.float32)
    q_pos = positions.reshape(g, r, t)
    pre_ok = jnp.arange(p_len)[None, None, None, :] < ctx.prefix_lengths[:, None, None, None]
    pre_ok = pre_ok & _window_ok(q_pos[..., None], jnp.arange(p_len)[None, None, None, :], window)
    tail_index = ctx.tail_lengths[:, :, None] + jnp.arange(t)[None, None, :]  # [G, R, T]
    tail_ok = jnp.arange(w)[None, None, None, :] <= tail_index[..., None]
    tail_pos = ctx.prefix_lengths[:, None, None, None] + jnp.arange(w)[None, None, None, :]
    tail_ok = tail_ok & _window_ok(q_pos[..., None], tail_pos, window)
    s_pre = jnp.where(pre_ok[:, :, None, None], s_pre, _NEG)
    s_tail = jnp.where(tail_ok[:, :, None, None], s_tail, _NEG)
    probs = jax.nn.softmax(jnp.concatenate([s_pre, s_tail], axis=-1), axis=-1)
    p_pre, p_tail = probs[..., :p_len], probs[..., p_len:]
    out = jnp.einsum(f"grkjtp,{pre_spec}->grtkjd", p_pre.astype(pv.dtype), pv, preferred_element_type=jnp.float32)
    out += jnp.einsum(f"grkjts,{tail_spec}->grtkjd", p_tail.astype(tv.dtype), tv_read, preferred_element_type=jnp.float32)
    return out.reshape(bt, t, h, d).astype(q.dtype), (pk, pv, tk, tv)
