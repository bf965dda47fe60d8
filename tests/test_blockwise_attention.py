"""The blockwise (flash-style) CPU attention equals the masked reference, forward and gradients."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mathjax.model import attention as attn
from mathjax.model.blockwise import block_size, blockwise_attention


def _inputs(b=2, t=32, h=4, kv=2, d=8, seed=0, packed=True):
    rng = np.random.default_rng(seed)
    q = jnp.asarray(rng.normal(size=(b, t, h, d)), jnp.float32)
    k = jnp.asarray(rng.normal(size=(b, t, kv, d)), jnp.float32)
    v = jnp.asarray(rng.normal(size=(b, t, kv, d)), jnp.float32)
    if packed:  # row 0: three segments then padding; row 1: one segment
        seg = np.zeros((b, t), np.int32)
        seg[0, :7], seg[0, 7:20], seg[0, 20:27] = 1, 2, 3
        seg[1:] = 1
    else:
        seg = np.ones((b, t), np.int32)
    pos = np.zeros((b, t), np.int32)
    for r in range(b):
        for s in np.unique(seg[r]):
            idx = np.flatnonzero(seg[r] == s)
            pos[r, idx] = np.arange(len(idx))
    return q, k, v, jnp.asarray(seg), jnp.asarray(pos)


def _reference(q, k, v, seg, pos, window):
    return attn.masked_attention(q, k, v, attn.segment_mask(seg, pos, window))


@pytest.mark.parametrize("block,window,kv", [(8, None, 2), (4, None, 4), (8, 5, 2), (16, 12, 1), (32, None, 2)])
def test_forward_and_grads_match_reference(block, window, kv):
    q, k, v, seg, pos = _inputs(kv=kv)
    cot = jnp.asarray(np.random.default_rng(1).normal(size=q.shape), jnp.float32)

    def loss(fn):
        return lambda q, k, v: jnp.sum(fn(q, k, v) * cot)

    ours = lambda q, k, v: blockwise_attention(q, k, v, seg, pos, window, block)  # noqa: E731
    ref = lambda q, k, v: _reference(q, k, v, seg, pos, window)  # noqa: E731
    np.testing.assert_allclose(jax.jit(ours)(q, k, v), ref(q, k, v), atol=2e-6, rtol=1e-5)
    got = jax.jit(jax.grad(loss(ours), argnums=(0, 1, 2)))(q, k, v)
    want = jax.grad(loss(ref), argnums=(0, 1, 2))(q, k, v)
    for name, a, b in zip("qkv", got, want):
        np.testing.assert_allclose(a, b, atol=2e-5, rtol=1e-4, err_msg=f"d{name}")


def test_padding_and_future_tokens_do_not_leak():
    q, k, v, seg, pos = _inputs()
    base = blockwise_attention(q, k, v, seg, pos, None, 8)
    # Changing keys/values of the last (padding) tokens and of row 0's later segments
    # leaves row 0's first segment unchanged.
    k2 = k.at[0, 7:].set(9.0)
    v2 = v.at[0, 7:].set(-9.0)
    out = blockwise_attention(q, k2, v2, seg, pos, None, 8)
    np.testing.assert_allclose(out[0, :7], base[0, :7], atol=1e-6)
    assert not np.allclose(out[0, 7:20], base[0, 7:20])


def test_bfloat16_close_to_float32():
    q, k, v, seg, pos = _inputs(packed=False)
    lo = blockwise_attention(q.astype(jnp.bfloat16), k.astype(jnp.bfloat16), v.astype(jnp.bfloat16), seg, pos, None, 8)
    assert lo.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(lo, np.float32), _reference(q, k, v, seg, pos, None), atol=0.05)


def test_block_size_choice():
    assert block_size(512) == 128
    assert block_size(4096) == 256  # at most 16 blocks
    assert block_size(100) == 100  # 128 does not divide: one block
    assert block_size(96, 32) == 32


def test_segment_attention_uses_it_on_cpu_and_matches_xla():
    q, k, v, seg, pos = _inputs(t=256)
    ctx = attn.SegmentContext(seg)
    fast = attn.segment_attention(q, k, v, ctx, pos, None, "blockwise")
    np.testing.assert_allclose(fast, attn.segment_attention(q, k, v, ctx, pos, None, "xla"), atol=2e-6, rtol=1e-5)
    assert attn.select_impl("auto") == "blockwise"
