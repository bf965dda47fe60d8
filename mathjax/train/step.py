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
from mathjax.parallel.rules import activate
from mathjax.train.fused_loss import linear_cross_entropy
from mathjax.train.state import TrainState, replicated, state_shardings

Batch = dict[str, jax.Array]


def nll_sum(config: ModelConfig, params: llama.Params, batch: Batch, loss_chunk: int = 0) -> jax.Array:
    """Summed NLL over ``batch["loss_mask"]`` of one ``[rows, seq_len]`` micro-batch.

    The output projection and the cross-entropy run as one fused op
    (:func:`mathjax.train.fused_loss.linear_cross_entropy`) that forms its
    gradient in the forward pass. ``loss_chunk > 0`` (a divisor of
    ``seq_len``) runs it over sequence chunks of that many tokens, so that
    only one ``[rows, loss_chunk, vocab]`` float32 block of logits exists at
    a time (they dominate activation memory for 32k+ vocabularies).
    """
    mask = batch["loss_mask"].astype(jnp.float32)
    context = SegmentContext(batch["segment_ids"])
    hidden, _ = llama.forward(config, params, batch["tokens"], batch["positions"], context, return_hidden=True)
    x, w = llama.head_inputs(config, params, hidden)
    return linear_cross_entropy(x, w, batch["targets"], mask, int(loss_chunk))


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
