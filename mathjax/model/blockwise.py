"""Causal attention over query blocks, flash-attention style, in plain XLA (the CPU training kernel).

The reference path (:func:`mathjax.model.attention.masked_attention`) builds
the full ``[T, T]`` score matrix, masks half of it away, and under autodiff
keeps the ``[T, T]`` probabilities of every layer for the backward pass.
On XLA:CPU those are memory-bound passes over the largest tensors of the
layer, and in a scanned layer stack the saved probabilities are also copied
into a stacked buffer.

This kernel splits the queries into blocks; block ``i`` only sees the key
prefix ``[0, (i + 1) * block)`` (and, with a sliding window, only the blocks
the window reaches), so the upper triangle is never computed. Each block's
softmax row is complete (the whole key prefix at once), so no online
rescaling is needed. The custom VJP keeps only ``q, k, v, out`` and the
per-row log-sum-exp and recomputes each block's probabilities in the
backward pass, as FlashAttention does. Packed rows (``segment_ids``) and
sliding windows are masked inside the blocks. Static shapes throughout:
the block loop is unrolled at trace time.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

_NEG = -1e30

DEFAULT_BLOCK = 128
MAX_BLOCKS = 16


def block_size(seq_len: int, block: int = DEFAULT_BLOCK) -> int:
    """The query block for ``seq_len``: ``block``, grown until at most MAX_BLOCKS blocks; ``seq_len`` when it does not divide."""
    while seq_len // block > MAX_BLOCKS:
        block *= 2
    if block >= seq_len or seq_len % block:
        return seq_len
    return block


def _first_key_block(i: int, block: int, window: int | None) -> int:
    """First key block that any query of block ``i`` can see."""
    if window is None:
        return 0
    # The earliest query (i * block) sees keys > i * block - window.
    return max(0, (i * block - window + 1) // block)


def _block_mask(segment_ids, positions, q0, q1, k0, k1, window):
    """[B, 1, 1, q1-q0, k1-k0] mask: causal by token order, same segment, inside the window."""
    qi = jnp.arange(q0, q1)[:, None]
    ki = jnp.arange(k0, k1)[None, :]
    mask = (qi >= ki)[None]
    mask = mask & (segment_ids[:, q0:q1, None] == segment_ids[:, None, k0:k1])
    if window is not None:
        mask = mask & (positions[:, None, k0:k1] > positions[:, q0:q1, None] - window)
    return mask[:, None, None]


def _to_heads(x: jax.Array, kv: int) -> jax.Array:
    """[B, T, H, D] -> head-major [B, K, H // K, T, D]."""
    b, t, h, d = x.shape
    return x.reshape(b, t, kv, h // kv, d).transpose(0, 2, 3, 1, 4)


def _from_heads(x: jax.Array) -> jax.Array:
    """Inverse of :func:`_to_heads`."""
    b, kv, g, t, d = x.shape
    return x.transpose(0, 3, 1, 2, 4).reshape(b, t, kv * g, d)


def _block_probs(qs, kh, segment_ids, positions, q0, q1, k0, window, m):
    """Masked scores of query block ``[q0, q1)`` against keys ``[k0, q1)``: float32 [B, K, G, c, s].

    ``m`` is the row offset to subtract before ``exp``: None returns the raw
    masked scores, an array ``[B, K, G, c, 1]`` returns ``exp(scores - m)``.
    """
    s = jnp.einsum("bkgtd,bksd->bkgts", qs[:, :, :, q0:q1], kh[:, :, k0:q1], preferred_element_type=jnp.float32)
    s = jnp.where(_block_mask(segment_ids, positions, q0, q1, k0, q1, window), s, _NEG)
    return s if m is None else jnp.exp(s - m)


def _blocks(t: int, block: int, window: int | None):
    for i in range(t // block):
        yield i * block, (i + 1) * block, _first_key_block(i, block, window) * block


# Everything runs head-major ([B, K, G, T, D]: one transpose per tensor and
# layer): every block matmul is then a plain batched matmul over (B, K), where
# the token-major layout made XLA:CPU copy each block's operands first.


def _forward(q, k, v, segment_ids, positions, window, block):
    """(out [B, T, H, D], residuals) with residuals = (scaled q, k, v head-major, out head-major, lse)."""
    kv, d = k.shape[2], q.shape[3]
    qs = _to_heads(q * jnp.asarray(d ** -0.5, q.dtype), kv)
    kh, vh = _to_heads(k, kv)[:, :, 0], _to_heads(v, kv)[:, :, 0]
    outs, lses = [], []
    for q0, q1, k0 in _blocks(q.shape[1], block, window):
        s = _block_probs(qs, kh, segment_ids, positions, q0, q1, k0, window, None)
        m = jnp.max(s, axis=-1, keepdims=True)
        p = jnp.exp(s - m)
        denom = jnp.sum(p, axis=-1, keepdims=True)
        o = jnp.einsum("bkgts,bksd->bkgtd", p.astype(v.dtype), vh[:, :, k0:q1], preferred_element_type=jnp.float32)
        outs.append((o / denom).astype(q.dtype))
        lses.append(m + jnp.log(denom))
    out_h = jnp.concatenate(outs, axis=3)  # [B, K, G, T, D]
    lse = jnp.concatenate(lses, axis=3)  # [B, K, G, T, 1]
    return _from_heads(out_h), (qs, kh, vh, out_h, lse)


@functools.partial(jax.custom_vjp, nondiff_argnums=(5, 6))
def blockwise_attention(q: jax.Array, k: jax.Array, v: jax.Array, segment_ids: jax.Array, positions: jax.Array,
                        window: int | None = None, block: int = DEFAULT_BLOCK) -> jax.Array:
    """Causal grouped-query attention within segments, computed over query blocks.

    Args:
      q: ``[B, T, H, D]``; k, v: ``[B, T, K, D]`` (``H`` a multiple of ``K``).
      segment_ids: int ``[B, T]``; tokens attend only within their segment.
      positions: int ``[B, T]``; used for the sliding window only.
      window: sliding window (keys with ``q_pos - k_pos < window``), or None.
      block: query block length (see :func:`block_size`).

    Returns:
      ``[B, T, H, D]`` in q's dtype; the softmax runs in float32.
    """
    return _forward(q, k, v, segment_ids, positions, window, block)[0]


def _fwd(q, k, v, segment_ids, positions, window, block):
    out, residuals = _forward(q, k, v, segment_ids, positions, window, block)
    return out, (residuals, segment_ids, positions)


def _pad_keys(x: jax.Array, k0: int, k1: int, t: int) -> jax.Array:
    """[B, K, s, D] for keys [k0, k1) -> [B, K, T, D], zeros elsewhere (fuses into the accumulating add)."""
    return jnp.pad(x, ((0, 0), (0, 0), (k0, t - k1), (0, 0)))


def _bwd(window, block, residuals, dout):
    (qs, kh, vh, out_h, lse), segment_ids, positions = residuals
    b, kv, g, t, d = qs.shape
    doh = _to_heads(dout, kv)
    # delta_i = sum_d dout_i * out_i = sum_j p_ij dp_ij (the softmax Jacobian's diagonal term).
    delta = jnp.sum(doh.astype(jnp.float32) * out_h.astype(jnp.float32), axis=-1, keepdims=True)
    dq_blocks = []
    dk = jnp.zeros(kh.shape, jnp.float32)
    dv = jnp.zeros(vh.shape, jnp.float32)
    for q0, q1, k0 in _blocks(t, block, window):
        p = _block_probs(qs, kh, segment_ids, positions, q0, q1, k0, window, lse[:, :, :, q0:q1])
        do_b = doh[:, :, :, q0:q1]
        dv = dv + _pad_keys(jnp.einsum("bkgts,bkgtd->bksd", p.astype(vh.dtype), do_b,
                                       preferred_element_type=jnp.float32), k0, q1, t)
        dp = jnp.einsum("bkgtd,bksd->bkgts", do_b, vh[:, :, k0:q1], preferred_element_type=jnp.float32)
        ds = (p * (dp - delta[:, :, :, q0:q1])).astype(qs.dtype)
        dq_blocks.append(jnp.einsum("bkgts,bksd->bkgtd", ds, kh[:, :, k0:q1], preferred_element_type=jnp.float32))
        dk = dk + _pad_keys(jnp.einsum("bkgts,bkgtd->bksd", ds, qs[:, :, :, q0:q1],
                                       preferred_element_type=jnp.float32), k0, q1, t)
    # scores = (q * scale) . k: dq carries the scale, dk has it through the scaled q.
    dq = _from_heads(jnp.concatenate(dq_blocks, axis=3) * d ** -0.5)
    dk, dv = _from_heads(dk[:, :, None]), _from_heads(dv[:, :, None])
    return dq.astype(qs.dtype), dk.astype(kh.dtype), dv.astype(vh.dtype), None, None


blockwise_attention.defvjp(_fwd, _bwd)
