"""``x @ w`` for the model's projections, with a weight gradient laid out for XLA:CPU.

The weight gradient of ``y = x @ w`` is ``x^T @ dy``: a contraction over the
token axis, the major axis of both operands, so one of them must be
transposed. XLA:CPU picks ``dy`` (the larger one: ``[tokens, 1408]`` against
``[tokens, 512]`` in an MLP) and fuses the transposition into the
elementwise op that produces it (the SiLU gradient), which then writes with a
stride of one row per element; in the 58M benchmark those fusions took more
time than the MLP's weight-gradient matmuls themselves. Here the backward
pass transposes ``x`` explicitly behind an optimization barrier (so the
transpose is not folded back into the dot) and multiplies ``x^T @ dy`` in the
plain row-major form. On other backends (TPU, GPU) it is a plain matmul with
autodiff: their dot emitters take transposed operands for free.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def dense(x: jax.Array, w: jax.Array) -> jax.Array:
    """``x [..., in] @ w [in, out]`` -> ``[..., out]`` in x's dtype (w is cast to it)."""
    w = w.astype(x.dtype)
    if jax.default_backend() != "cpu":
        return x @ w
    return _dense_cpu(x, w)


@jax.custom_vjp
def _dense_cpu(x: jax.Array, w: jax.Array) -> jax.Array:
    return x @ w


def _fwd(x, w):
    return x @ w, (x, w)


def _bwd(residuals, dy):
    x, w = residuals
    dx = jax.lax.dot_general(dy, w, (((dy.ndim - 1,), (1,)), ((), ())), preferred_element_type=jnp.float32)
    # The barrier also orders the two matmuls (x_t needs dx): run side by side, two
    # multithreaded matmuls on a few cores fight over them and each runs at under half speed.
    dx, x_t = jax.lax.optimization_barrier((dx, x.reshape(-1, x.shape[-1]).T))  # x_t [in, tokens], materialized
    dw = jnp.matmul(x_t, dy.reshape(-1, dy.shape[-1]), preferred_element_type=jnp.float32)
    return dx.astype(x.dtype), dw.astype(w.dtype)


_dense_cpu.defvjp(_fwd, _bwd)
