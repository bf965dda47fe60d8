"""The jitted decode loop: a ``lax.while_loop`` over rows with a per-row done mask.

Every step feeds each row's next token, samples the following one with that
row's own key, and appends it. A row stops on EOS (unless ``ignore_eos``) or
at ``max_new_tokens``. The loop exits early, back to the host, when

* no row is active,
* ``exit_after`` rows have finished in this call (the host refills them),
* ``steps`` steps have run (stop-string checks, progress; static: it sizes
  the window of new tokens returned), or
* an active row would write past the tail segments this variant reads.

The cache and the row state are donated, so the KV buffers are updated in
place across calls. The host gets back only a small replicated summary: the
row state's [B] vectors and the [B, steps] tokens generated in this call, never
a whole output buffer; every process of a multi-host mesh reads the same
summary, so all of them take the same scheduling decisions.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from mathjax.model import llama
from mathjax.model.attention import SharedPrefixContext, row_prefix_lengths
from mathjax.model.config import ModelConfig
from mathjax.parallel.rules import activate
from mathjax.sample.cache import CacheLayout, cache_shardings, row_sharding, window
from mathjax.sample.sampling import SamplingRules, log_probs_at, sample_tokens

RUNNING, EOS, LENGTH = 0, 1, 2  # finish codes written by the loop


@struct.dataclass
class RowState:
    """Per-row decode state (all [B] unless noted)."""

    tokens: jax.Array  # int32: next token to feed
    lengths: jax.Array  # int32: tokens generated so far (= tail tokens cached after this step's write)
    active: jax.Array  # bool: row is generating
    finish: jax.Array  # int32: RUNNING / EOS / LENGTH
    question_hash: jax.Array  # uint32: stable hash of the question id (RNG stream)
    sample_index: jax.Array  # int32: sample number within the question (RNG stream)
    row_buffer: jax.Array  # int32: which of its slot's prefix buffers the row reads
    prefix_lengths: jax.Array  # int32 [G, NB]: prompt tokens in each slot's prefix buffers


@struct.dataclass
class CallSummary:
    """What one decode call hands back to the host (replicated on every device: a few KB)."""

    tokens: jax.Array  # [B] int32
    lengths: jax.Array  # [B] int32
    active: jax.Array  # [B] bool
    finish: jax.Array  # [B] int32
    new_tokens: jax.Array  # [B, steps] int32: column i = the token sampled at this call's step i
    new_logprobs: jax.Array  # [B, steps] float32 log-probs of those tokens ([B, 0] unless requested)
    steps: jax.Array  # () int32: steps run
    busy: jax.Array  # () int32: row-steps that produced a kept token


def row_keys(seed_key: jax.Array, question_hash: jax.Array, sample_index: jax.Array, step: jax.Array) -> jax.Array:
    """key(seed) -> fold(question) -> fold(sample) -> fold(step), per row.

    Depends only on the sample's identity, never on its row, batch or device,
    so outputs do not change with batch size, refill order or device count.
    """
    def one(q, s, t):
        return jax.random.fold_in(jax.random.fold_in(jax.random.fold_in(seed_key, q), s), t)

    return jax.vmap(one)(question_hash, sample_index, step)


def row_state_shardings(mesh: Mesh, layout: CacheLayout) -> RowState:
    rows = row_sharding(mesh, layout)
    return RowState(
        tokens=rows, lengths=rows, active=rows, finish=rows, question_hash=rows, sample_index=rows,
        row_buffer=rows, prefix_lengths=row_sharding(mesh, layout, 2),
    )


def make_decode_fn(
    config: ModelConfig, mesh: Mesh, layout: CacheLayout, rules: SamplingRules,
    eos_ids: tuple[int, ...], ignore_eos: bool, steps: int, logprobs: bool = False,
):
    """Returns jitted ``decode(params, cache, state, seed_data, exit_after, num_segments)``.

    Returns ``(cache, state, summary)`` (:class:`CallSummary`). ``num_segments``
    is static (one compiled loop per tail window); ``seed_data`` is the run
    key's uint32 data (``jax.random.key_data``), ``exit_after`` an int32.
    ``logprobs``: also return each sampled token's log-probability under the
    temperature-scaled distribution (before top-k/top-p), as an RL trainer
    recomputes it, so the two can be compared.
    """
    g, r = layout.groups, layout.rows_per_group
    b = layout.batch
    max_new = layout.tail_len
    eos = np.asarray(eos_ids if eos_ids else (-1,), np.int32)

    def decode(params, cache, state: RowState, seed_data, exit_after, num_segments):
        limit = window(layout, num_segments)
        seed_key = jax.random.wrap_key_data(seed_data)
        ctx_buffer = state.row_buffer.reshape(g, r)
        row_prefix = row_prefix_lengths(state.prefix_lengths, ctx_buffer, r).reshape(b)

        def cond(carry):
            step, _, st, finished, _, _, _ = carry
            longest = jnp.max(jnp.where(st.active, st.lengths, 0))
            return (step < steps) & jnp.any(st.active) & (finished < exit_after) & (longest < limit)

        def body(carry):
            step, cache, st, finished, busy, recent, recent_lp = carry
            busy = busy + jnp.sum(st.active.astype(jnp.int32))  # row-steps that produce a kept token
            positions = (row_prefix + st.lengths)[:, None]
            ctx = SharedPrefixContext(st.prefix_lengths, st.lengths.reshape(g, r), segmented=True,
                                      row_buffer=ctx_buffer)
            # Only the reachable segments go through the model; the rest are untouched.
            reach = tuple((pk, pv, tks[:num_segments], tvs[:num_segments]) for pk, pv, tks, tvs in cache)
            with activate(mesh):
                logits, reach = llama.forward(config, params, st.tokens[:, None], positions, ctx, reach)
            cache = tuple(
                (pk, pv, tks + old[2][num_segments:], tvs + old[3][num_segments:])
                for (pk, pv, tks, tvs), old in zip(reach, cache)
            )
            keys = row_keys(seed_key, st.question_hash, st.sample_index, st.lengths)
            token = sample_tokens(logits[:, 0], keys, rules)
            # Column `step` of every row: a slice update along the unsplit axis, local per device.
            recent = jax.lax.dynamic_update_slice_in_dim(recent, token[:, None], step, axis=1)
            if logprobs:
                lp = log_probs_at(logits[:, 0], token, rules.temperature or 1.0)[0]
                recent_lp = jax.lax.dynamic_update_slice_in_dim(recent_lp, lp[:, None], step, axis=1)
            lengths = st.lengths + st.active.astype(jnp.int32)
            if ignore_eos:
                is_eos = jnp.zeros_like(st.active)
            else:
                is_eos = jnp.any(token[:, None] == eos[None, :], axis=-1)
            done = st.active & (is_eos | (lengths >= max_new))
            finish = jnp.where(done, jnp.where(is_eos, EOS, LENGTH), st.finish)
            active = st.active & ~done
            st = st.replace(tokens=jnp.where(active, token, st.tokens), lengths=lengths, active=active, finish=finish)
            return step + 1, cache, st, finished + jnp.sum(done.astype(jnp.int32)), busy, recent, recent_lp

        zero = jnp.zeros((), jnp.int32)
        recent = jax.lax.with_sharding_constraint(jnp.zeros((b, steps), jnp.int32), row_sharding(mesh, layout, 2))
        recent_lp = jax.lax.with_sharding_constraint(jnp.zeros((b, steps if logprobs else 0), jnp.float32),
                                                     row_sharding(mesh, layout, 2))
        n, cache, state, _, busy, recent, recent_lp = jax.lax.while_loop(
            cond, body, (zero, cache, state, zero, zero, recent, recent_lp))
        summary = CallSummary(tokens=state.tokens, lengths=state.lengths, active=state.active, finish=state.finish,
                              new_tokens=recent, new_logprobs=recent_lp, steps=n, busy=busy)
        return cache, state, summary

    replicated = NamedSharding(mesh, PartitionSpec())
    summary_sharding = CallSummary(*([replicated] * 8))
    return jax.jit(
        decode, static_argnames=("num_segments",), donate_argnums=(1, 2),
        out_shardings=(cache_shardings(mesh, layout), row_state_shardings(mesh, layout), summary_sharding),
    )
