"""The SwiGLU MLP ``down(silu(x @ gate) * (x @ up))`` with a lean backward pass on XLA:CPU.

Under plain autodiff a scanned layer stack saves, per layer, every
intermediate of the MLP that the backward pass touches: both projections,
the sigmoid, ``silu(gate)`` and the product, each ``[tokens, ffn]`` (five or
six stacked ``[layers, tokens, ffn]`` buffers, a third of the 58M benchmark's
step memory, written in the forward pass and first-touched every step).
This VJP keeps only ``x``, ``x @ gate`` and ``x @ up`` and recomputes the
cheap elementwise rest in the backward pass; ``x`` is transposed once for
both weight gradients and the down projection's gradient transposes the
narrow ``dy``, not the hidden activations (see :mod:`mathjax.model.dense` for
why the transposes are explicit). Other backends use the plain expression: their compilers
already remat elementwise ops and take transposed matmul operands for free.
"""

from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp

from mathjax.model.dense import dense, weight_grad
from mathjax.parallel.rules import target_platform


def swiglu_mlp(x: jax.Array, gate: jax.Array, up: jax.Array, down: jax.Array,
               constrain_hidden: Callable[[jax.Array], jax.Array] = lambda h: h) -> jax.Array:
    """``x [..., D]`` -> ``[..., D]``; gate/up ``[D, F]``, down ``[F, D]`` (cast to x's dtype).

    ``constrain_hidden`` is applied to the ``[..., F]`` hidden activations (a
    sharding constraint under tensor parallelism).
    """
    gate, up, down = (w.astype(x.dtype) for w in (gate, up, down))
    if target_platform() != "cpu":
        return dense(constrain_hidden(jax.nn.silu(dense(x, gate)) * dense(x, up)), down)
    return _swiglu_cpu(x, gate, up, down, constrain_hidden)


def _swiglu_fwd(x, gate, up, down, constrain_hidden):
    g = x @ gate
    u = x @ up
    h = constrain_hidden(jax.nn.silu(g) * u)
    return h @ down, (x, g, u, gate, up, down)


def _swiglu_bwd(constrain_hidden, residuals, dy):
    x, g, u, gate, up, down = residuals
    f32 = jnp.float32
    sig = jax.nn.sigmoid(g.astype(f32))
    silu = g.astype(f32) * sig
    h = constrain_hidden((silu * u.astype(f32)).astype(x.dtype))
    dh = jnp.matmul(dy, down.T, preferred_element_type=f32)
    dh, d_down = weight_grad(dh, h, dy)  # transposes dy [tokens, D], not h [tokens, F]
    dg = constrain_hidden((dh * u.astype(f32) * sig * (1.0 + g.astype(f32) * (1.0 - sig))).astype(x.dtype))
    du = constrain_hidden((dh * silu).astype(x.dtype))
    dx = jnp.matmul(dg, gate.T, preferred_element_type=f32) + jnp.matmul(du, up.T, preferred_element_type=f32)
    # x [tokens, D] is transposed once for both weight gradients.
    dx, x_t = jax.lax.optimization_barrier((dx, x.reshape(-1, x.shape[-1]).T))
    d_gate = jnp.matmul(x_t, dg.reshape(-1, dg.shape[-1]), preferred_element_type=f32)
    d_up = jnp.matmul(x_t, du.reshape(-1, du.shape[-1]), preferred_element_type=f32)
    return dx.astype(x.dtype), d_gate.astype(gate.dtype), d_up.astype(up.dtype), d_down.astype(down.dtype)


@functools.partial(jax.custom_vjp, nondiff_argnums=(4,))
def _swiglu_cpu(x, gate, up, down, constrain_hidden):
    return _swiglu_fwd(x, gate, up, down, constrain_hidden)[0]


_swiglu_cpu.defvjp(_swiglu_fwd, _swiglu_bwd)
