"""The jitted RL functions: per-token log-probs of sampled sequences, and the policy update.

Sequences are ``[N, T]`` rows (prompt + response, right-padded; causal
attention keeps the padding from affecting real tokens). Rows split over the
mesh's ``data``/``fsdp`` axes like SFT rows; params and optimizer state keep
the SFT trainer's shardings (``state_shardings``).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh, NamedSharding

from mathjax.model import llama
from mathjax.model.config import ModelConfig
from mathjax.parallel.rules import activate, logical_to_spec
from mathjax.rl import grpo
from mathjax.train.fused_loss import _logits, _merge, _split
from mathjax.train.state import TrainState, replicated, state_shardings

BATCH_KEYS = ("tokens", "targets", "mask", "old_logp", "ref_logp", "advantages", "weight")


def row_sharding(mesh: Mesh, shape: tuple[int, ...]) -> NamedSharding:
    names = ("batch", "length")[: len(shape)]
    return NamedSharding(mesh, logical_to_spec(names, shape, mesh))


# Bytes of float32 logits one chunk of the log-prob computation may hold per device.
LOGITS_BYTES_PER_DEVICE = 512 * 1024**2


def logprob_chunk(rows: int, seq_len: int, vocab: int, row_shards: int = 1,
                  budget: int = LOGITS_BYTES_PER_DEVICE) -> int:
    """Largest divisor of ``seq_len`` whose ``[rows / row_shards, chunk, vocab]`` float32 logits fit ``budget``."""
    per_position = max(1, -(-rows // max(1, row_shards))) * vocab * 4
    best = 1
    for c in range(1, seq_len + 1):
        if seq_len % c == 0 and c * per_position <= budget:
            best = c
    return best


def chunked_token_logprobs(x: jax.Array, w: jax.Array, targets: jax.Array, temperature: float,
                           chunk: int) -> tuple[jax.Array, jax.Array]:
    """``([N, T] log-probs of targets, [N, T] entropies)`` of ``softmax(x @ w / temperature)``, float32.

    Over sequence chunks of ``chunk`` positions, each rematerialised in the
    backward pass: only one ``[N, chunk, V]`` block of logits exists at a time
    (the full ``[N, T, V]`` float32 logits of a 1.5B Qwen rollout batch are
    hundreds of GB).
    """
    t = x.shape[1]
    c = chunk if 0 < chunk < t and t % chunk == 0 else t

    @jax.checkpoint
    def one(xc, tc):
        return grpo.token_logprobs(_logits(xc, w), tc, temperature)

    if c == t:
        return one(x, targets)
    _, (logp, entropy) = jax.lax.scan(lambda carry, xs: (carry, one(*xs)), None, (_split(x, c), _split(targets, c)))
    return _merge(logp), _merge(entropy)


def sequence_logprobs(config: ModelConfig, params: llama.Params, tokens: jax.Array, targets: jax.Array,
                      temperature: float, chunk: int = 0) -> tuple[jax.Array, jax.Array]:
    """[N, T] log-probs of ``targets`` and entropies under the model at ``temperature``.

    ``chunk``: sequence positions per block of logits (0: all at once).
    """
    hidden, _ = llama.forward(config, params, tokens, return_hidden=True)
    x, w = llama.head_inputs(config, params, hidden)
    return chunked_token_logprobs(x, w, targets, temperature, chunk)


def _row_shards(mesh: Mesh, rows: int) -> int:
    spec = logical_to_spec(("batch",), (rows,), mesh)[0]
    names = () if spec is None else (spec,) if isinstance(spec, str) else tuple(spec)
    out = 1
    for name in names:
        out *= mesh.shape[name]
    return out


def make_logprob_fn(config: ModelConfig, mesh: Mesh, temperature: float):
    """jit(params, tokens, targets) -> [N, T] log-probs (the trainer's recomputation of old/ref log-probs)."""

    def fn(params, tokens, targets):
        n, t = tokens.shape
        chunk = logprob_chunk(n, t, config.vocab_size, _row_shards(mesh, n))
        with activate(mesh):
            return sequence_logprobs(config, params, tokens, targets, temperature, chunk)[0]

    # Replicated out: every process reads the same [N, T] values (a multi-host mesh).
    return jax.jit(fn, out_shardings=replicated(mesh))


def is_on_policy(rl: Any) -> bool:
    """One update per rollout: the update's params are the ones that sampled (see ``make_rl_step``)."""
    return int(rl.updates_per_rollout) == 1


def make_rl_step(config: ModelConfig, optimizer: optax.GradientTransformation, schedule: optax.Schedule,
                 mesh: Mesh, rl: Any, max_new_tokens: int, on_policy: bool = False):
    """jit(state, batch) -> (state, metrics): one optimizer update on a minibatch of samples.

    ``batch``: ``BATCH_KEYS`` arrays (``ref_logp`` ignored unless ``rl.kl_coef``), optionally with
    the loss denominators ``num_samples``/``num_tokens`` of a compacted minibatch (``mathjax.rl.compact``).
    Metrics (replicated scalars): ``loss``, ``pg_loss``, ``clip_fraction``,
    ``kl``, ``entropy``, ``ratio_mean``, ``grad_norm``, ``lr``.

    ``on_policy``: the update's params are the ones that sampled (one update per
    rollout), so the PPO denominator is the update's own log-probs with the
    gradient stopped (ratio 1, the policy gradient), and the separate old-log-prob
    pass, a full forward over the batch, is skipped. ``batch["old_logp"]`` then
    holds the *sampler's* log-probs, used only for the ``logprob_gap`` metric
    (mean |trainer - sampler| over response tokens).
    """
    s_shardings = state_shardings(config, mesh, optimizer)
    temperature = float(rl.temperature or 1.0)
    kl_coef = float(rl.kl_coef)

    def step(state: TrainState, batch: dict[str, jax.Array]):
        with activate(mesh):
            n, t = batch["tokens"].shape
            chunk = logprob_chunk(n, t, config.vocab_size, _row_shards(mesh, n))

            def loss_fn(params):
                logp, entropy = sequence_logprobs(config, params, batch["tokens"], batch["targets"], temperature,
                                                  chunk)
                old_logp = jax.lax.stop_gradient(logp) if on_policy else batch["old_logp"]
                loss, m = grpo.policy_loss(
                    logp, old_logp, batch["advantages"], batch["mask"], batch["weight"],
                    clip_low=float(rl.clip_low), clip_high=float(rl.clip_high), aggregation=rl.loss_aggregation,
                    max_new_tokens=max_new_tokens, ref_logp=batch["ref_logp"] if kl_coef else None,
                    kl_coef=kl_coef, num_samples=batch.get("num_samples"), num_tokens=batch.get("num_tokens"))
                mask = batch["mask"] * batch["weight"][:, None]
                m["entropy"] = jnp.sum(entropy * mask) / jnp.maximum(jnp.sum(mask), 1.0)
                if on_policy:
                    response = batch["mask"].astype(jnp.float32)
                    gap = jnp.abs(jax.lax.stop_gradient(logp) - batch["old_logp"]) * response
                    m["logprob_gap"] = jnp.sum(gap) / jnp.maximum(jnp.sum(response), 1.0)
                return loss, m

            (loss, m), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
            grad_norm = optax.global_norm(grads)
            updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
            params = optax.apply_updates(state.params, updates)
        metrics = {**m, "loss": loss, "grad_norm": grad_norm, "lr": jnp.asarray(schedule(state.step), jnp.float32)}
        return TrainState(step=state.step + 1, params=params, opt_state=opt_state, rng=state.rng), metrics

    return jax.jit(step, in_shardings=(s_shardings, None), out_shardings=(s_shardings, replicated(mesh)),
                   donate_argnums=(0,))
