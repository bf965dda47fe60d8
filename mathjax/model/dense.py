"""``x @ w`` for the model's projections, with a weight gradient laid out for XLA:CPU.

The weight gradient of ``y = x @ w`` is ``x^T @ dy``: a contraction over the
token axis, the major axis of both operands, so one of them must be
transposed. XLA:CPU picks ``dy`` (the larger one: ``[tokens, 1408]`` against
``[tokens, 512]`` in an MLP) and fuses the transposition into the
elementwise op that produces it (the SiLU gradient), which then writes with a
stride of one row per element; in the 58M benchmark those fusions took more
time than the MLP's weight-gradient matmuls themselves. Here the backward
pass transposes the narrower operand explicitly behind an optimization
barrier (so the transpose is not folded back into the dot or into its
producer) and multiplies in the plain row-major form (:func:`weight_grad`).
On other backends (TPU, GPU) it is a plain matmul with autodiff: their dot
emitters take transposed operands for free.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mathjax.parallel.rules import target_platform


def dense(x: jax.Array, w: jax.Array) -> jax.Array:
    """``x [..., in] @ w [in, out]`` -> ``[..., out]`` in x's dtype (w is cast to it)."""
    w = w.astype(x.dtype)
    if target_platform() != "cpu":
        return x @ w
    return _dense_cpu(x, w)


@jax.custom_vjp
def _dense_cpu(x: jax.Array, w: jax.Array) -> jax.Array:
    return x @ w


def _fwd(x, w):
    return x @ w, (x, w)


def weight_grad(after: jax.Array, x: jax.Array, dy: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(after, x^T @ dy)``: the float32 ``[in, out]`` weight gradient of ``x [..., in] @ w``.

    The smaller of ``x`` and ``dy`` is transposed explicitly (``(dy^T @ x)^T``
    when ``dy`` is narrower: the result's transpose is small). An optimization
    barrier keeps the transpose from being folded into an elementwise producer
    and ties the weight-gradient matmul to ``after`` (the input gradient), so
    XLA schedules it after that one where it can: two multithreaded matmuls
    side by side on a few cores each run at about half speed (the runtime
    still overlaps some pairs, as traced).
    """
    x2 = x.reshape(-1, x.shape[-1])
    dy2 = dy.reshape(-1, dy.shape[-1])
    if x2.shape[1] <= dy2.shape[1]:
        after, x_t = jax.lax.optimization_barrier((after, x2.T))
        return after, jnp.matmul(x_t, dy2, preferred_element_type=jnp.float32)
    after, dy_t = jax.lax.optimization_barrier((after, dy2.T))
    return after, jnp.matmul(dy_t, x2, preferred_element_type=jnp.float32).T


def _bwd(residuals, dy):
    x, w = residuals
    dx = jax.lax.dot_general(dy, w, (((dy.ndim - 1,), (1,)), ((), ())), preferred_element_type=jnp.float32)
    dx, dw = weight_grad(dx, x, dy)
    return dx.astype(x.dtype), dw.astype(w.dtype)


_dense_cpu.defvjp(_fwd, _bwd)
