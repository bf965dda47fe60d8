"""The SwiGLU MLP with the lean CPU backward pass equals the plain expression, values and gradients."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mathjax.model.swiglu import swiglu_mlp


def _inputs(dtype=jnp.float32, seed=0):
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.normal(size=(2, 6, 16)), dtype)
    gate, up = (jnp.asarray(rng.normal(size=(16, 40)) * 0.3, jnp.float32) for _ in range(2))
    down = jnp.asarray(rng.normal(size=(40, 16)) * 0.3, jnp.float32)
    return x, gate, up, down


def _plain(x, gate, up, down):
    dt = x.dtype
    return (jax.nn.silu(x @ gate.astype(dt)) * (x @ up.astype(dt))) @ down.astype(dt)


def test_values_and_gradients_match_plain_expression():
    x, gate, up, down = _inputs()
    cot = jnp.asarray(np.random.default_rng(1).normal(size=x.shape), jnp.float32)
    ours = jax.jit(lambda *a: jnp.sum(swiglu_mlp(*a) * cot))
    ref = lambda *a: jnp.sum(_plain(*a) * cot)  # noqa: E731
    np.testing.assert_allclose(ours(x, gate, up, down), ref(x, gate, up, down), rtol=1e-5)
    got = jax.jit(jax.grad(ours, argnums=(0, 1, 2, 3)))(x, gate, up, down)
    want = jax.grad(ref, argnums=(0, 1, 2, 3))(x, gate, up, down)
    for name, a, b in zip(("x", "gate", "up", "down"), got, want):
        assert a.shape == b.shape and a.dtype == b.dtype, name
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-4, err_msg=f"d{name}")


def test_hidden_constraint_is_applied_in_both_passes():
    x, gate, up, down = _inputs()
    seen = []

    def record(h):
        seen.append(h.shape)
        return h

    jax.grad(lambda x: jnp.sum(swiglu_mlp(x, gate, up, down, record)))(x)
    # forward hidden, and in the backward pass the recomputed hidden and both gradients
    assert seen and all(s == (2, 6, 40) for s in seen) and len(seen) >= 2


@pytest.mark.parametrize("dtype", [jnp.bfloat16])
def test_low_precision_close_to_float32(dtype):
    x, gate, up, down = _inputs()
    lo = swiglu_mlp(x.astype(dtype), gate, up, down)
    assert lo.dtype == dtype
    np.testing.assert_allclose(np.asarray(lo, np.float32), _plain(x, gate, up, down), atol=0.1, rtol=0.05)
    g = jax.grad(lambda w: jnp.sum(swiglu_mlp(x.astype(dtype), w, up, down).astype(jnp.float32)))(gate)
    assert g.dtype == jnp.float32 and np.all(np.isfinite(np.asarray(g)))
