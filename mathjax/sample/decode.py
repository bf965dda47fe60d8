"""The jitted decode loop: a ``lax.while_loop`` over rows with a per-row done mask.

Every step feeds each row's next token, samples the following one with that
row's own key, and appends it. A row stops on EOS (unless ``ignore_eos``) or
at ``max_new_tokens``. The loop exits early, back to the host, when

* no row is active,
* ``exit_after`` rows have finished in this call (the host refills them),
* ``max_steps`` steps have run (stop-string checks, progress), or
* an active row would write past the tail segments this variant reads.

The cache and the row state are donated, so the KV buffers are updated in
place across calls.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax.sharding import Mesh

from mathjax.model import llama
from mathjax.model.attention import SharedPrefixContext
from mathjax.model.config import ModelConfig
from mathjax.parallel.rules import activate
from mathjax.sample.cache import CacheLayout, cache_shardings, row_sharding, window
from mathjax.sample.sampling import SamplingRules, sample_tokens

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
    prefix_lengths: jax.Array  # int32 [G]: prompt tokens in each slot's prefix
    out: jax.Array  # int32 [B, max_new_tokens]: generated tokens


def row_keys(seed_key: jax.Array, question_hash: jax.Array, sample_index: jax.Array, step: jax.Array) -> jax.Array:
    """key(seed) -> fold(question) -> fold(sample) -> fold(step), per row.

    Depends only on the sample's identity, never on its row, batch or device,
    so outputs do not change with batch size, refill order or device count.
    """
    def one(q, s, t):
        return jax.random.fold_in(jax.random.fold_in(jax.random.fold_in(seed_key, q), s), t)

    return jax.vmap(one)(question_hash, sample_index, step)


def make_decode_fn(
    config: ModelConfig, mesh: Mesh, layout: CacheLayout, rules: SamplingRules,
    eos_ids: tuple[int, ...], ignore_eos: bool,
):
    """Returns jitted ``decode(params, cache, state, seed_key, max_steps, exit_after, num_segments)``.

    Returns ``(cache, state, steps, active_row_steps)``. ``num_segments`` is
    static (one compiled loop per tail window); the rest are traced.
    """
    g, r = layout.groups, layout.rows_per_group
    b = layout.batch
    max_new = layout.tail_len
    eos = np.asarray(eos_ids if eos_ids else (-1,), np.int32)

    def decode(params, cache, state: RowState, seed_key, max_steps, exit_after, num_segments):
        limit = window(layout, num_segments)

        def per_row(group_values):
            # [G] -> [B] by broadcast and reshape (slots are row-major), which stays
            # split over `data`; indexing with arange(B) // R was a gather the
            # partitioner answered with an all-gather every step.
            return jnp.broadcast_to(group_values[:, None], (g, r)).reshape(b)

        def cond(carry):
            step, _, st, finished, _ = carry
            longest = jnp.max(jnp.where(st.active, st.lengths, 0))
            return (step < max_steps) & jnp.any(st.active) & (finished < exit_after) & (longest < limit)

        def body(carry):
            step, cache, st, finished, busy = carry
            busy = busy + jnp.sum(st.active.astype(jnp.int32))  # row-steps that produce a kept token
            positions = (per_row(st.prefix_lengths) + st.lengths)[:, None]
            ctx = SharedPrefixContext(st.prefix_lengths, st.lengths.reshape(g, r), segmented=True)
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
            write_at = jnp.where(st.active, st.lengths, max_new)  # inactive rows: dropped
            # Per-row writes (vmapped: the row is a batching dimension of the scatter, kept local).
            out = jax.vmap(lambda o, i, t: o.at[i].set(t, mode="drop"))(st.out, write_at, token)
            lengths = st.lengths + st.active.astype(jnp.int32)
            if ignore_eos:
                is_eos = jnp.zeros_like(st.active)
            else:
                is_eos = jnp.any(token[:, None] == eos[None, :], axis=-1)
            done = st.active & (is_eos | (lengths >= max_new))
            finish = jnp.where(done, jnp.where(is_eos, EOS, LENGTH), st.finish)
            active = st.active & ~done
            st = st.replace(
                tokens=jnp.where(active, token, st.tokens), lengths=lengths, active=active, finish=finish, out=out
            )
            return step + 1, cache, st, finished + jnp.sum(done.astype(jnp.int32)), busy

        zero = jnp.zeros((), jnp.int32)
        steps, cache, state, _, busy = jax.lax.while_loop(cond, body, (zero, cache, state, zero, zero))
        return cache, state, steps, busy

    rows = row_sharding(mesh, layout)
    state_sharding = RowState(
        tokens=rows, lengths=rows, active=rows, finish=rows, question_hash=rows, sample_index=rows,
        prefix_lengths=row_sharding(mesh, layout), out=row_sharding(mesh, layout, 2),
    )
    return jax.jit(
        decode, static_argnames=("num_segments",), donate_argnums=(1, 2),
        out_shardings=(cache_shardings(mesh, layout), state_sharding, None, None),
    )
