"""The fused projection + cross-entropy equals plain autodiff of ``nll(x @ w)``, chunked or not."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mathjax.train.fused_loss import linear_cross_entropy

B, T, D, V = 2, 16, 8, 40


def _reference(x, w, targets, mask):
    logits = jnp.einsum("btd,dv->btv", x, w, preferred_element_type=jnp.float32)
    logp = jax.nn.log_softmax(logits, axis=-1)
    nll = -jnp.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]
    return jnp.sum(nll * mask)


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.normal(size=(B, T, D)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(D, V)), jnp.float32)
    targets = jnp.asarray(rng.integers(0, V, size=(B, T)), jnp.int32)
    mask = jnp.asarray(rng.integers(0, 2, size=(B, T)), jnp.float32)
    return x, w, targets, mask


@pytest.mark.parametrize("chunk", [0, 4, 8, 5, 16])  # 5 does not divide T: one chunk
def test_loss_and_grads_match_autodiff(chunk):
    x, w, targets, mask = _inputs()
    ref_loss, (ref_dx, ref_dw) = jax.value_and_grad(_reference, argnums=(0, 1))(x, w, targets, mask)
    fused = jax.jit(jax.value_and_grad(lambda x, w: 3.0 * linear_cross_entropy(x, w, targets, mask, chunk),
                                       argnums=(0, 1)))
    loss, (dx, dw) = fused(x, w)
    np.testing.assert_allclose(loss, 3.0 * ref_loss, rtol=1e-5)
    np.testing.assert_allclose(dx, 3.0 * ref_dx, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(dw, 3.0 * ref_dw, rtol=1e-4, atol=1e-6)


def test_forward_only_matches_and_masked_tokens_weigh_zero():
    x, w, targets, mask = _inputs(1)
    np.testing.assert_allclose(jax.jit(lambda: linear_cross_entropy(x, w, targets, mask, 4))(),
                               _reference(x, w, targets, mask), rtol=1e-5)
    # Changing a masked token's input changes neither the loss nor the weight gradient.
    i = np.argwhere(np.asarray(mask) == 0)[0]
    x2 = x.at[i[0], i[1]].set(100.0)
    grad = jax.grad(linear_cross_entropy, argnums=(0, 1))
    (dx1, dw1), (dx2, dw2) = grad(x, w, targets, mask, 4), grad(x2, w, targets, mask, 4)
    np.testing.assert_allclose(dw1, dw2, rtol=1e-6)
    assert float(jnp.abs(dx2[i[0], i[1]]).max()) == 0.0


def test_bfloat16_inputs_give_bfloat16_grads_close_to_float32():
    x, w, targets, mask = _inputs(2)
    loss, (dx, dw) = jax.value_and_grad(linear_cross_entropy, argnums=(0, 1))(
        x.astype(jnp.bfloat16), w.astype(jnp.bfloat16), targets, mask, 8)
    assert loss.dtype == jnp.float32 and dx.dtype == jnp.bfloat16 and dw.dtype == jnp.bfloat16
    ref_dx, ref_dw = jax.grad(_reference, argnums=(0, 1))(x, w, targets, mask)
    np.testing.assert_allclose(np.asarray(dx, np.float32), ref_dx, atol=0.05 * float(jnp.abs(ref_dx).max()))
    np.testing.assert_allclose(np.asarray(dw, np.float32), ref_dw, atol=0.05 * float(jnp.abs(ref_dw).max()))
