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


def _scores(qb, kb, scale):
    """qb [B, c, K, G, D] x kb [B, s, K, D] -> float32 [B, K, G, c, s]."""
    return jnp.einsum("btkgd,bskd->bkgts", qb, kb, preferred_element_type=jnp.float32) * scale


def _blocks(t: int, block: int, window: int | None):
    for i in range(t // block):
        yield i, i * block, (i + 1) * block, _first_key_block(i, block, window) * block


def _forward(q, k, v, segment_ids, positions, window, block):
    b, t, h, d = q.shape
    kv = k.shape[2]
    qg = q.reshape(b, t, kv, h // kv, d)
    scale = d ** -0.5
    outs, lses = [], []
    for _, q0, q1, k0 in _blocks(t, block, window):
        s = _scores(qg[:, q0:q1], k[:, k0:q1], scale)
        s = jnp.where(_block_mask(segment_ids, positions, q0, q1, k0, q1, window), s, _NEG)
        m = jnp.max(s, axis=-1, keepdims=True)
        p = jnp.exp(s - m)
        denom = jnp.sum(p, axis=-1, keepdims=True)
        o = jnp.einsum("bkgts,bskd->btkgd", p.astype(v.dtype), v[:, k0:q1], preferred_element_type=jnp.float32)
        # [B, K, G, c, 1] -> [B, c, K, G, 1] to scale o [B, c, K, G, D].
        outs.append(o / jnp.moveaxis(denom, 3, 1))
        lses.append((m + jnp.log(denom))[..., 0])
    out = jnp.concatenate(outs, axis=1).astype(q.dtype).reshape(b, t, h, d)
    lse = jnp.concatenate(lses, axis=-1)  # [B, K, G, T]
    return out, lse


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
    out, lse = _forward(q, k, v, segment_ids, positions, window, block)
    return out, (q, k, v, segment_ids, positions, out, lse)


def _bwd(window, block, residuals, dout):
    q, k, v, segment_ids, positions, out, lse = residuals
    b, t, h, d = q.shape
    kv = k.shape[2]
    g = h // kv
    scale = d ** -0.5
    qg = q.reshape(b, t, kv, g, d)
    dog = dout.reshape(b, t, kv, g, d)
    # delta_i = sum_d dout_i * out_i = sum_j p_ij dp_ij (the softmax Jacobian's diagonal term).
    delta = jnp.einsum("btkgd,btkgd->bkgt", dog.astype(jnp.float32), out.reshape(b, t, kv, g, d).astype(jnp.float32))
    dq_blocks = []
    dk = jnp.zeros(k.shape, jnp.float32)
    dv = jnp.zeros(v.shape, jnp.float32)
    for _, q0, q1, k0 in _blocks(t, block, window):
        s = _scores(qg[:, q0:q1], k[:, k0:q1], scale)
        s = jnp.where(_block_mask(segment_ids, positions, q0, q1, k0, q1, window), s, _NEG)
        p = jnp.exp(s - lse[..., q0:q1, None])  # [B, K, G, c, s]
        do_b = dog[:, q0:q1]
        dv = dv.at[:, k0:q1].add(jnp.einsum("bkgts,btkgd->bskd", p.astype(v.dtype), do_b,
                                            preferred_element_type=jnp.float32))
        dp = jnp.einsum("btkgd,bskd->bkgts", do_b, v[:, k0:q1], preferred_element_type=jnp.float32)
        ds = (p * (dp - delta[..., q0:q1, None]) * scale).astype(q.dtype)
        dq_blocks.append(jnp.einsum("bkgts,bskd->btkgd", ds, k[:, k0:q1], preferred_element_type=jnp.float32))
        dk = dk.at[:, k0:q1].add(jnp.einsum("bkgts,btkgd->bskd", ds, qg[:, q0:q1], preferred_element_type=jnp.float32))
    dq = jnp.concatenate(dq_blocks, axis=1).reshape(b, t, h, d)
    return dq.astype(q.dtype), dk.astype(k.dtype), dv.astype(v.dtype), None, None


blockwise_attention.defvjp(_fwd, _bwd)
