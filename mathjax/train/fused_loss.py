"""Output projection + softmax cross-entropy as one op whose gradient is formed in the forward pass.

The usual autodiff graph for ``nll(x @ W)`` keeps the float32 ``[B, T, V]``
logits (or recomputes them) and then runs three passes over a tensor of that
size in the backward pass: softmax, ``softmax - onehot`` and its transpose
for the weight gradient. For a 32k vocabulary that tensor is the largest in
the whole step, and XLA:CPU spent more time moving it (two layouts of the
same elementwise gradient, a select to pick target logits) than in the three
matmuls it feeds.

Here the loss is a scalar at the end of the graph, so its cotangent is a
scalar ``g``: the forward rule computes, chunk by chunk over the sequence,
the logits, the loss and already the gradients ``dx = dlogits @ W^T`` and
``dW = x^T @ dlogits`` (as Liger's fused linear cross-entropy does); the
backward rule only scales them by ``g``. Each chunk's logits live only inside
its scan step, so peak memory is one ``[B, chunk, V]`` block. The primal
(forward-only, e.g. eval) path computes no gradients.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from mathjax.parallel.rules import constrain


def _split(x: jax.Array, chunk: int) -> jax.Array:
    """[B, T, ...] -> [T // chunk, B, chunk, ...] (the scan axis first, batch sharding kept)."""
    b, t = x.shape[:2]
    return jnp.swapaxes(x.reshape(b, t // chunk, chunk, *x.shape[2:]), 0, 1)


def _merge(x: jax.Array) -> jax.Array:
    """Inverse of :func:`_split`."""
    n, b, c = x.shape[:3]
    return jnp.swapaxes(x, 0, 1).reshape(b, n * c, *x.shape[3:])


def _logits(x: jax.Array, w: jax.Array) -> jax.Array:
    logits = jnp.einsum("btd,dv->btv", x, w, preferred_element_type=jnp.float32)
    return constrain(logits, ("batch", "length", "act_vocab"))


def _target_mask(logits: jax.Array, targets: jax.Array) -> jax.Array:
    """Boolean ``[..., V]``: True at each row's target. An iota comparison, not a
    gather: elementwise, so it stays local when the vocabulary is sharded."""
    vocab = jax.lax.broadcasted_iota(jnp.int32, logits.shape, logits.ndim - 1)
    return vocab == targets[..., None]


def _chunk_loss(logits: jax.Array, targets: jax.Array, mask: jax.Array):
    """(summed masked NLL, logsumexp [B, c]) of one chunk's float32 logits."""
    logz = jax.nn.logsumexp(logits, axis=-1)
    target_logit = jnp.sum(jnp.where(_target_mask(logits, targets), logits, 0.0), axis=-1)
    return jnp.sum((logz - target_logit) * mask), logz


def _chunk_size(seq_len: int, chunk: int) -> int:
    if chunk <= 0 or chunk >= seq_len or seq_len % chunk:
        return seq_len
    return chunk


@functools.partial(jax.custom_vjp, nondiff_argnums=(4,))
def linear_cross_entropy(x: jax.Array, w: jax.Array, targets: jax.Array, mask: jax.Array, chunk: int = 0) -> jax.Array:
    """Summed masked NLL of ``softmax(x @ w)`` at ``targets``.

    Args:
      x: ``[B, T, D]`` final (normed) hidden states in the compute dtype.
      w: ``[D, V]`` output projection in the compute dtype.
      targets: int ``[B, T]``.
      mask: float32 ``[B, T]`` per-token weights (0 for prompt and padding).
      chunk: sequence chunk length (``T`` when 0 or not a divisor of ``T``).

    Returns:
      float32 scalar ``sum(mask * nll)``; differentiable in ``x`` and ``w``.
    """
    return _forward(x, w, targets, mask, chunk)


def _forward(x, w, targets, mask, chunk):
    c = _chunk_size(x.shape[1], chunk)
    if c == x.shape[1]:
        return _chunk_loss(_logits(x, w), targets, mask)[0]

    def body(total, xs):
        xc, tc, mc = xs
        return total + _chunk_loss(_logits(xc, w), tc, mc)[0], None

    total, _ = jax.lax.scan(body, jnp.zeros((), jnp.float32), (_split(x, c), _split(targets, c), _split(mask, c)))
    return total


_W_NAMES = ("embed", "vocab")  # the output projection's [D, V] layout (as the lm_head parameter)


def _chunk_grads(xc, w, tc, mc):
    """Loss and the gradients of one chunk: (loss, dx [B, c, D], dW [D, V] float32)."""
    logits = _logits(xc, w)
    loss, logz = _chunk_loss(logits, tc, mc)
    # d loss / d logits = mask * (softmax - onehot(target)); one elementwise pass.
    probs = jnp.exp(logits - logz[..., None])
    dlogits = ((probs - _target_mask(logits, tc).astype(jnp.float32)) * mc[..., None]).astype(xc.dtype)
    dlogits = constrain(dlogits, ("batch", "length", "act_vocab"))
    dx = jnp.einsum("btv,dv->btd", dlogits, w, preferred_element_type=jnp.float32).astype(xc.dtype)
    # The barrier keeps dW's operand transposition out of the elementwise op that makes
    # dlogits and asks for dW after dx (XLA:CPU's runtime still overlapped them in traces).
    dx, dlogits = jax.lax.optimization_barrier((dx, dlogits))
    dw = jnp.einsum("btd,btv->dv", xc, dlogits, preferred_element_type=jnp.float32)
    return loss, dx, dw


def _fwd(x, w, targets, mask, chunk):
    c = _chunk_size(x.shape[1], chunk)
    if c == x.shape[1]:
        loss, dx, dw = _chunk_grads(x, w, targets, mask)
    else:
        # The float32 dW accumulator lives in w's own shards (fsdp over D, tensor
        # over V): each chunk's partial dW is reduce-scattered into it rather than
        # a replicated [D, V] buffer being all-reduced.
        def body(carry, xs):
            total, dw_acc = carry
            loss, dxc, dwc = _chunk_grads(xs[0], w, xs[1], xs[2])
            return (total + loss, constrain(dw_acc + constrain(dwc, _W_NAMES), _W_NAMES)), dxc

        init = (jnp.zeros((), jnp.float32), constrain(jnp.zeros(w.shape, jnp.float32), _W_NAMES))
        (loss, dw), dx = jax.lax.scan(body, init, (_split(x, c), _split(targets, c), _split(mask, c)))
        dx = _merge(dx)
    return loss, (dx, dw.astype(w.dtype))


def _bwd(chunk, residuals, g):
    del chunk
    dx, dw = residuals
    return (dx * g.astype(dx.dtype)), (dw * g.astype(dw.dtype)), None, None


linear_cross_entropy.defvjp(_fwd, _bwd)
