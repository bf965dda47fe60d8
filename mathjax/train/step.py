"""The jitted train and eval steps.

Loss: the mean next-token negative log-likelihood over the *response* tokens
of the whole global batch (``loss_mask``), so it does not depend on how
examples are packed into rows nor on how the batch is split into
micro-batches: every micro-batch's summed loss is divided by the global
token count before its gradient is taken, and the gradients are summed in a
``lax.scan`` (one compiled micro-step, memory of one micro-batch).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh

from mathjax.model import llama
from mathjax.model.attention import SegmentContext
from mathjax.model.config import ModelConfig
from mathjax.parallel.rules import activate, constrain
from mathjax.train.state import TrainState, replicated, state_shardings

Batch = dict[str, jax.Array]


def _target_mask(logits: jax.Array, targets: jax.Array) -> jax.Array:
    # An iota comparison instead of a gather: elementwise, so it fuses with the
    # surrounding reductions and stays local when the vocab is sharded.
    vocab = jax.lax.broadcasted_iota(jnp.int32, logits.shape, logits.ndim - 1)
    return vocab == targets[..., None]


@jax.custom_vjp
def _nll_sum(logits: jax.Array, targets: jax.Array, mask: jax.Array) -> jax.Array:
    """Summed masked NLL of float32 logits ``[..., V]`` (fused softmax-cross-entropy gradient)."""
    return _nll_fwd(logits, targets, mask)[0]


def _nll_fwd(logits, targets, mask):
    logz = jax.nn.logsumexp(logits, axis=-1)
    target_logit = jnp.sum(jnp.where(_target_mask(logits, targets), logits, 0.0), axis=-1)
    return jnp.sum((logz - target_logit) * mask), (logits, logz, targets, mask)


def _nll_bwd(residuals, g):
    # d/dlogits = mask * (softmax - onehot): one elementwise pass over [..., V],
    # where autodiff would add a scatter for the gathered target logit.
    logits, logz, targets, mask = residuals
    probs = jnp.exp(logits - logz[..., None])
    grad = (probs - _target_mask(logits, targets).astype(logits.dtype)) * (g * mask)[..., None]
    return grad.astype(logits.dtype), None, None


_nll_sum.defvjp(_nll_fwd, _nll_bwd)


def nll_sum(config: ModelConfig, params: llama.Params, batch: Batch, loss_chunk: int = 0) -> jax.Array:
    """Summed NLL over ``batch["loss_mask"]`` of one ``[rows, seq_len]`` micro-batch.

    ``loss_chunk > 0`` computes the output projection and the loss over
    sequence chunks of that many tokens, recomputing each chunk's logits in the
    backward pass, so the ``[rows, seq_len, vocab]`` float32 logits never
    exist at once (they dominate activation memory for 32k+ vocabularies).
    """
    mask = batch["loss_mask"].astype(jnp.float32)
    context = SegmentContext(batch["segment_ids"])
    seq_len = batch["tokens"].shape[1]
    if loss_chunk <= 0 or loss_chunk >= seq_len or seq_len % loss_chunk:
        logits, _ = llama.forward(config, params, batch["tokens"], batch["positions"], context)
        return _nll_sum(logits, batch["targets"], mask)
    hidden, _ = llama.forward(config, params, batch["tokens"], batch["positions"], context, return_hidden=True)
    embedding = params["embed"]["embedding"] if config.tie_word_embeddings else None
    head = llama.Head(config)
    rows, n = hidden.shape[0], seq_len // loss_chunk

    def split(x):  # [rows, seq, ...] -> [chunks, rows, chunk, ...]
        return jnp.swapaxes(x.reshape(rows, n, loss_chunk, *x.shape[2:]), 0, 1)

    @jax.checkpoint
    def chunk_loss(total, xs):
        h, targets, m = xs
        logits = head.apply({"params": params["head"]}, h, embedding)
        logits = constrain(logits, ("batch", "length", "act_vocab"))
        return total + _nll_sum(logits, targets, m), None

    total, _ = jax.lax.scan(chunk_loss, jnp.zeros((), jnp.float32),
                            (split(hidden), split(batch["targets"]), split(mask)))
    return total


def _micro(batch: Batch, i: int) -> Batch:
    return {k: v[i] for k, v in batch.items()}


def make_train_step(
    config: ModelConfig,
    optimizer: optax.GradientTransformation,
    schedule: optax.Schedule,
    mesh: Mesh,
    batch_sharding,
    loss_chunk: int = 0,
    donate: bool = True,
) -> Callable[[TrainState, Batch], tuple[TrainState, dict[str, jax.Array]]]:
    """``jit(step)(state, batch) -> (state, metrics)`` with NamedSharding in/out and a donated state.

    ``batch`` arrays are int32 ``[micro_batches, rows, seq_len]`` (see
    :class:`mathjax.data.sft.BatchLayout`); metrics are replicated scalars:
    ``loss``, ``grad_norm`` (before clipping), ``lr``, ``loss_tokens``,
    ``tokens`` (non-padding).
    """
    s_shardings = state_shardings(config, mesh, optimizer)

    def train_step(state: TrainState, batch: Batch):
        with activate(mesh):
            denom = jnp.maximum(jnp.sum(batch["loss_mask"]).astype(jnp.float32), 1.0)

            def micro_grads(mb: Batch):
                return jax.value_and_grad(lambda p: nll_sum(config, p, mb, loss_chunk) / denom)(state.params)

            num_micro = batch["tokens"].shape[0]
            if num_micro == 1:
                loss, grads = micro_grads(_micro(batch, 0))
            else:
                def body(carry, mb):
                    loss_acc, grad_acc = carry
                    loss, grads = micro_grads(mb)
                    grad_acc = jax.tree_util.tree_map(jnp.add, grad_acc, grads)
                    return (loss_acc + loss, grad_acc), None

                zeros = jax.tree_util.tree_map(
                    lambda p, sh: jax.lax.with_sharding_constraint(jnp.zeros_like(p, jnp.float32), sh),
                    state.params, s_shardings.params)
                (loss, grads), _ = jax.lax.scan(body, (jnp.zeros((), jnp.float32), zeros), batch)
            grad_norm = optax.global_norm(grads)
            updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
            params = optax.apply_updates(state.params, updates)
            rng = jax.random.key_data(jax.random.split(jax.random.wrap_key_data(state.rng))[0])
        metrics = {
            "loss": loss,
            "grad_norm": grad_norm,
            "lr": jnp.asarray(schedule(state.step), jnp.float32),
            "loss_tokens": jnp.sum(batch["loss_mask"]),
            "tokens": jnp.sum(batch["segment_ids"] > 0),
        }
        new_state = TrainState(step=state.step + 1, params=params, opt_state=opt_state, rng=rng)
        return new_state, metrics

    batch_shardings = {k: batch_sharding for k in ("tokens", "targets", "loss_mask", "segment_ids", "positions")}
    return jax.jit(
        train_step,
        in_shardings=(s_shardings, batch_shardings),
        out_shardings=(s_shardings, replicated(mesh)),
        donate_argnums=(0,) if donate else (),
    )


def make_eval_step(config: ModelConfig, mesh: Mesh, param_shardings: Any, batch_sharding, loss_chunk: int = 0):
    """``jit(eval)(params, batch) -> (nll_sum, loss_tokens)`` over all micro-batches."""

    def eval_step(params, batch: Batch):
        with activate(mesh):
            def body(total, mb):
                return total + nll_sum(config, params, mb, loss_chunk), None

            total, _ = jax.lax.scan(body, jnp.zeros((), jnp.float32), batch)
        return total, jnp.sum(batch["loss_mask"]).astype(jnp.float32)

    batch_shardings = {k: batch_sharding for k in ("tokens", "targets", "loss_mask", "segment_ids", "positions")}
    return jax.jit(eval_step, in_shardings=(param_shardings, batch_shardings), out_shardings=replicated(mesh))
