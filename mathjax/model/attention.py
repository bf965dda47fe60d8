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

from mathjax.model import blockwise, splash
from mathjax.parallel.rules import active_mesh, target_platform

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
    # Static (compile-time) choice of the sampler's decode layout; see
    # `segmented_prefix_attention`. False keeps the layout described above.
    segmented: bool = struct.field(pytree_node=False, default=False)
    # Segmented layout only: [groups, rows] int32, which of its group's prefix
    # buffers each row reads (prefix_lengths is then [groups, buffers]). None:
    # one prefix per group.
    row_buffer: jax.Array | None = None


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
    backend = target_platform()
    if requested in ("auto", None):
        # cuDNN flash attention was validated on an H100 (scripts/validate_device.py):
        # it matches the XLA path to bf16 rounding and lifts train MFU from 28% to 47-49%.
        # Splash matches the XLA path in Pallas interpret mode (tests/test_attention_kernels.py);
        # shapes it cannot take fall back to xla in `splash.try_segment_attention`.
        # Blockwise (flash-style, causal blocks skipped) is the CPU training kernel:
        # tests/test_blockwise_attention.py checks it against the xla path.
        return {"gpu": "cudnn", "tpu": "splash", "cpu": "blockwise"}.get(backend, "xla")
    if requested == "cudnn" and backend != "gpu":
        logging.warning("attention_impl=cudnn needs a GPU (backend is %s); using xla", backend)
        return "xla"
    if requested == "splash" and backend != "tpu" and not splash.interpret_mode():
        logging.warning("attention_impl=splash needs a TPU (backend is %s; %s=1 interprets it); using xla",
                        backend, splash.INTERPRET_ENV)
        return "xla"
    if requested not in ("xla", "cudnn", "splash", "blockwise"):
        raise ValueError(f"unknown attention_impl {requested!r}; expected auto, xla, blockwise, cudnn or splash")
    return requested


def segment_attention(
    q: jax.Array, k: jax.Array, v: jax.Array, ctx: SegmentContext, positions: jax.Array,
    window: int | None, impl: str = "xla",
) -> jax.Array:
    """Training/scoring attention over packed rows (no cache)."""
    impl = select_impl(impl)
    if impl == "splash":
        out = splash.try_segment_attention(q, k, v, ctx.segment_ids, window)
        if out is not None:
            return out
    if impl == "cudnn" and q.dtype in (jnp.bfloat16, jnp.float16):
        # cuDNN flash attention: causal (and sliding window) by the kernel, packing by a segment mask.
        seg = ctx.segment_ids
        return jax.nn.dot_product_attention(
            q, k, v, mask=seg[:, None, :, None] == seg[:, None, None, :], is_causal=True,
            local_window_size=None if window is None else (window - 1, 0), implementation="cudnn",
        )
    if impl == "blockwise":
        block = blockwise.block_size(q.shape[1])
        if block < q.shape[1]:
            return blockwise.blockwise_attention(q, k, v, ctx.segment_ids, positions, window, block)
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


def shared_prefix_attention(
    q: jax.Array, k_new: jax.Array, v_new: jax.Array, kv: tuple[jax.Array, ...],
    ctx: SharedPrefixContext, positions: jax.Array, window: int | None,
) -> tuple[jax.Array, tuple[jax.Array, ...]]:
    """Attention over (shared prompt KV) + (own tail KV), exact joint softmax.

    q/k_new/v_new: [G*R, T, ...]; kv = (prefix_k [G, P, K, D], prefix_v,
    tail_k [G, R, S, K, D], tail_v). Only the tail is written.
    """
    if ctx.segmented:
        return segmented_prefix_attention(q, k_new, v_new, kv, ctx, positions, window)
    pk, pv, tk, tv = kv
    g, r = ctx.tail_lengths.shape
    bt, t, h, d = q.shape
    kvh = pk.shape[2]
    tk = _write_rows(tk.reshape(g * r, *tk.shape[2:]), k_new, ctx.tail_lengths.reshape(-1)).reshape(tk.shape)
    tv = _write_rows(tv.reshape(g * r, *tv.shape[2:]), v_new, ctx.tail_lengths.reshape(-1)).reshape(tv.shape)
    qg = q.reshape(g, r, t, kvh, h // kvh, d) * jnp.asarray(d**-0.5, q.dtype)
    # Prefix scores: one einsum per group, the prefix never copied per row.
    s_pre = jnp.einsum("grtkjd,gpkd->grkjtp", qg, pk, preferred_element_type=jnp.float32)
    s_tail = jnp.einsum("grtkjd,grskd->grkjts", qg, tk, preferred_element_type=jnp.float32)
    p_len, s_len = pk.shape[1], tk.shape[2]
    q_pos = positions.reshape(g, r, t)
    pre_ok = jnp.arange(p_len)[None, None, None, :] < ctx.prefix_lengths[:, None, None, None]
    pre_ok = pre_ok & _window_ok(q_pos[..., None], jnp.arange(p_len)[None, None, None, :], window)
    tail_index = ctx.tail_lengths[:, :, None] + jnp.arange(t)[None, None, :]  # [G, R, T]
    tail_ok = jnp.arange(s_len)[None, None, None, :] <= tail_index[..., None]
    tail_pos = ctx.prefix_lengths[:, None, None, None] + jnp.arange(s_len)[None, None, None, :]
    tail_ok = tail_ok & _window_ok(q_pos[..., None], tail_pos, window)
    s_pre = jnp.where(pre_ok[:, :, None, None], s_pre, _NEG)
    s_tail = jnp.where(tail_ok[:, :, None, None], s_tail, _NEG)
    probs = jax.nn.softmax(jnp.concatenate([s_pre, s_tail], axis=-1), axis=-1)
    p_pre, p_tail = probs[..., :p_len], probs[..., p_len:]
    out = jnp.einsum("grkjtp,gpkd->grtkjd", p_pre.astype(pv.dtype), pv, preferred_element_type=jnp.float32)
    out += jnp.einsum("grkjts,grskd->grtkjd", p_tail.astype(tv.dtype), tv, preferred_element_type=jnp.float32)
    return out.reshape(bt, t, h, d).astype(q.dtype), (pk, pv, tk, tv)


def _write_segment(cache: jax.Array, new: jax.Array, index: jax.Array) -> jax.Array:
    """Writes new [B, T, K, D] into cache [B, K, S, D] at per-token slots index [B, T].

    Out-of-range slots (the token lives in another segment) are dropped. The
    scatter updates the buffer in place inside a donated while loop.
    """
    s = cache.shape[2]
    index = jnp.where((index >= 0) & (index < s), index, s)  # never negative: no wrap-around

    # Per row, vmapped: the scatter then carries the row as a batching dimension,
    # which the SPMD partitioner splits over `data` like any batch axis. An
    # explicit `arange(B)` row index instead looks data-dependent to it, and it
    # all-gathered the rows and their indices on every layer of every step.
    def write_row(row_cache, row_new, row_index):
        return row_cache.at[:, row_index].set(jnp.swapaxes(row_new, 0, 1).astype(cache.dtype), mode="drop")

    return jax.vmap(write_row)(cache, new, index)


def _heads_sharded() -> bool:
    """Whether the traced program splits KV heads over a `tensor` mesh axis.

    Then rows and heads must stay separate axes: merging them into one is a
    reshape the partitioner cannot keep sharded, and it gathered q, K, V and
    the scores of every head on every device, every layer, every step.
    """
    mesh = active_mesh()
    return mesh is not None and mesh.shape.get("tensor", 1) > 1


def _row_scores(q: jax.Array, k: jax.Array) -> jax.Array:
    """q [..., M, D] x k [..., S, D] -> float32 [..., M, S]: one small matmul per (row, KV head).

    The leading axes are rows and KV heads, merged into one (cheapest on
    XLA:CPU) or kept apart (a mesh that splits heads over `tensor`, see
    :func:`_heads_sharded`).
    """
    if q.shape[-2] == 1:
        # Unit dims steer XLA:CPU to a slow generic loop (~100x); squeeze them.
        return jnp.einsum("...d,...sd->...s", q[..., 0, :], k, preferred_element_type=jnp.float32)[..., None, :]
    return jnp.einsum("...md,...sd->...ms", q, k, preferred_element_type=jnp.float32)


def _row_values(p: jax.Array, v: jax.Array) -> jax.Array:
    """p [..., M, S] x v [..., S, D] -> float32 [..., M, D]."""
    p = p.astype(v.dtype)
    if p.shape[-2] == 1:
        return jnp.einsum("...s,...sd->...d", p[..., 0, :], v, preferred_element_type=jnp.float32)[..., None, :]
    return jnp.einsum("...ms,...sd->...md", p, v, preferred_element_type=jnp.float32)


def row_prefix_lengths(prefix_lengths: jax.Array, row_buffer: jax.Array | None, rows: int) -> jax.Array:
    """[G, R] prompt length each row reads: its group's ([G]), or its buffer's ([G, NB] by row_buffer [G, R]).

    A select over the buffers, not indexing: indexing by a traced buffer id is a
    gather the partitioner answers with an all-gather on the slot-split axis.
    """
    if row_buffer is None:
        return jnp.broadcast_to(prefix_lengths[:, None], (prefix_lengths.shape[0], rows))
    pick = row_buffer[:, :, None] == jnp.arange(prefix_lengths.shape[1])
    return jnp.sum(jnp.where(pick, prefix_lengths[:, None, :], 0), axis=-1)


def segmented_prefix_attention(
    q: jax.Array, k_new: jax.Array, v_new: jax.Array, kv: tuple,
    ctx: SharedPrefixContext, positions: jax.Array, window: int | None,
) -> tuple[jax.Array, tuple]:
    """Shared-prefix attention in the sampler's decode layout (``ctx.segmented``).

    kv = (prefix_k [G * NB, K, P, D], prefix_v, tail_k, tail_v): NB prefix buffers per
    group (row ``(g, r)`` reads buffer ``ctx.row_buffer[g, r]``; NB = 1 without
    ``row_buffer``), and tail_k/tail_v
    are tuples of segments [G, R, K, S_i, D] covering tail slots
    ``[sum(S_<i), sum(S_<=i))``. Why this layout:

    * heads-major: each head's keys are contiguous, so per-row products are
      plain batched matmuls; with [.., S, K, D] XLA:CPU transposes the whole
      tail every step (measured ~20x slower at 256 rows).
    * segments: a decode loop passes only the segments its rows can reach, so
      early steps never read the empty end of the tail. Slicing one big buffer
      instead makes XLA copy the slice every step.

    The softmax is joined exactly across prefix and segments (shared max, one
    normaliser); fully masked segments add exact zeros.
    """
    pk, pv, tks, tvs = kv
    g, r = ctx.tail_lengths.shape
    bt, t, h, d = q.shape
    kvh, p_len = pk.shape[1], pk.shape[2]
    j = h // kvh
    m = t * j  # queries per (row, KV head)
    qh = q.reshape(g, r, t, kvh, j, d) * jnp.asarray(d**-0.5, q.dtype)
    qh = jnp.transpose(qh, (0, 1, 3, 2, 4, 5)).reshape(g, r, kvh, m, d)  # query index = t * j + head
    q_pos = jnp.repeat(positions.reshape(g, r, 1, t), j, axis=-1)  # [G, R, 1, M]
    tail_index = jnp.repeat((ctx.tail_lengths[:, :, None] + jnp.arange(t)).reshape(g, r, 1, t), j, axis=-1)
    # Prefix buffers per group (nb): a row reads one of them (ctx.row_buffer), so a
    # row can move on to the group's next question while its neighbours finish
    # the previous one. Each buffer is still read once per group, never per row.
    nb = pk.shape[0] // g
    row_prefix_len = row_prefix_lengths(ctx.prefix_lengths, ctx.row_buffer, r)  # [G, R]
    s_pre = jnp.einsum("grkmd,gbkpd->grkmbp", qh, pk.reshape(g, nb, kvh, p_len, d),
                       preferred_element_type=jnp.float32)
    key_pos = jnp.arange(p_len)
    ok = (key_pos < row_prefix_len[:, :, None, None, None, None]) & _window_ok(q_pos[..., None, None], key_pos, window)
    if ctx.row_buffer is not None:
        ok &= ctx.row_buffer[:, :, None, None, None, None] == jnp.arange(nb)[:, None]
    scores = [jnp.where(ok, s_pre, _NEG).reshape(g, r, kvh, m, nb * p_len)]
    rows = (bt, kvh) if _heads_sharded() else (bt * kvh,)
    rows_q = qh.reshape(*rows, m, d)
    new_tks, new_tvs = [], []
    offset = 0
    for tk, tv in zip(tks, tvs):
        size = tk.shape[3]
        slots = (ctx.tail_lengths.reshape(bt, 1) + jnp.arange(t)[None, :]) - offset
        tk = _write_segment(tk.reshape(bt, *tk.shape[2:]), k_new, slots).reshape(tk.shape)
        tv = _write_segment(tv.reshape(bt, *tv.shape[2:]), v_new, slots).reshape(tv.shape)
        new_tks.append(tk)
        new_tvs.append(tv)
        s_tail = _row_scores(rows_q, tk.reshape(*rows, size, d)).reshape(g, r, kvh, m, size)
        key_index = offset + jnp.arange(size)
        ok = key_index <= tail_index[..., None]
        ok &= _window_ok(q_pos[..., None], row_prefix_len[:, :, None, None, None] + key_index, window)
        scores.append(jnp.where(ok, s_tail, _NEG))
        offset += size
    top = scores[0].max(axis=-1)
    for s in scores[1:]:
        top = jnp.maximum(top, s.max(axis=-1))
    probs = [jnp.exp(s - top[..., None]) for s in scores]
    denom = probs[0].sum(axis=-1)
    out = jnp.einsum("grkmbp,gbkpd->grkmd", probs[0].reshape(g, r, kvh, m, nb, p_len).astype(pv.dtype),
                     pv.reshape(g, nb, kvh, p_len, d), preferred_element_type=jnp.float32)
    for p, tv in zip(probs[1:], new_tvs):
        denom = denom + p.sum(axis=-1)
        size = tv.shape[3]
        out = out + _row_values(p.reshape(*rows, m, size), tv.reshape(*rows, size, d)).reshape(out.shape)
    out = out / denom[..., None]  # [G, R, K, M, D]
    out = jnp.transpose(out.reshape(g, r, kvh, t, j, d), (0, 1, 3, 2, 4, 5)).reshape(bt, t, h, d)
    return out.astype(q.dtype), (pk, pv, tuple(new_tks), tuple(new_tvs))
