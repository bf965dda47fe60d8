"""Prefill: run prompts through the model once and store their KV in prefix slots.

The prompt minus its last token goes into the slot's shared prefix; the last
prompt token is fed by the decode loop as every row's first tail token. So
prefill needs no logits (the head is skipped), every row of a slot starts the
same way, and restarting a row with a new sample needs no model call at all.

One compiled function per prompt-length bucket: prompts are right-padded to
the bucket and the batch of prompts per call is fixed, so a run compiles once
per bucket whatever the number of questions.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.sharding import Mesh

from mathjax.model import llama
from mathjax.model.attention import CacheContext
from mathjax.model.config import ModelConfig
from mathjax.parallel.rules import activate
from mathjax.sample.cache import CacheLayout, cache_shardings

MIN_BUCKET = 16


def bucket_length(n: int, minimum: int = MIN_BUCKET) -> int:
    """Smallest power of two >= max(n, minimum): the padded prompt length."""
    size = minimum
    while size < n:
        size *= 2
    return size


def make_prefill_fn(config: ModelConfig, mesh: Mesh, layout: CacheLayout):
    """Returns jitted ``prefill(params, cache, tokens [n, L], slots [n]) -> cache``.

    ``params`` are per-layer (``llama.unstack_layers``). Rows of ``tokens`` are
    prompts (minus their last token) right-padded to a bucket ``L <= P``;
    ``slots`` are the prefix slots to fill. Duplicate rows (same slot, same
    tokens) are allowed: that is how a partial batch is padded. The cache is
    donated and updated in place.
    """

    def prefill(params, cache, tokens, slots):
        n, length = tokens.shape
        with activate(mesh):
            fresh = llama.init_kv_caches(config, n, length, dtype=layout.dtype)
            _, kv = llama.forward(
                config, params, tokens, None, CacheContext(jnp.zeros((n,), jnp.int32)), fresh, return_hidden=True
            )
        out = []
        for (pk, pv, tks, tvs), (k, v) in zip(cache, kv):
            k = jnp.swapaxes(k, 1, 2).astype(pk.dtype)  # [n, K, L, D]: the cache's heads-major layout
            v = jnp.swapaxes(v, 1, 2).astype(pv.dtype)
            for i in range(n):
                pk = jax.lax.dynamic_update_slice(pk, k[i : i + 1], (slots[i], 0, 0, 0))
                pv = jax.lax.dynamic_update_slice(pv, v[i : i + 1], (slots[i], 0, 0, 0))
            out.append((pk, pv, tks, tvs))
        return tuple(out)

    shardings = cache_shardings(mesh, layout)
    return jax.jit(prefill, donate_argnums=(1,), out_shardings=shardings)
