"""RL log-probs over sequence chunks: equal to the one-block computation, and bounded in memory."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mathjax.rl import grpo
from mathjax.rl.step import chunked_token_logprobs, logprob_chunk


def _inputs(n=3, t=12, d=8, v=50, seed=0):
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.standard_normal((n, t, d)), jnp.float32)
    w = jnp.asarray(rng.standard_normal((d, v)), jnp.float32)
    targets = jnp.asarray(rng.integers(0, v, (n, t)), jnp.int32)
    return x, w, targets


@pytest.mark.parametrize("chunk", [1, 3, 4, 12, 5])  # 5 does not divide 12: one block
def test_chunks_equal_one_block_values_and_grads(chunk):
    x, w, targets = _inputs()
    weights = jnp.asarray(np.random.default_rng(1).standard_normal(targets.shape), jnp.float32)

    def loss(x, w, c):
        logp, ent = chunked_token_logprobs(x, w, targets, 0.7, c)
        return jnp.sum(logp * weights) + 0.1 * jnp.sum(ent), (logp, ent)

    def reference(x, w):
        logits = jnp.einsum("btd,dv->btv", x, w)
        logp, ent = grpo.token_logprobs(logits, targets, 0.7)
        return jnp.sum(logp * weights) + 0.1 * jnp.sum(ent), (logp, ent)

    (l1, (lp1, e1)), g1 = jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(x, w, chunk)
    (l2, (lp2, e2)), g2 = jax.value_and_grad(reference, argnums=(0, 1), has_aux=True)(x, w)
    np.testing.assert_allclose(lp1, lp2, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(e1, e2, rtol=1e-5, atol=1e-5)
    for a, b in zip(g1, g2):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    # log-probs are log-probs: each is log softmax at the target, by hand for one position
    logits = np.asarray(jnp.einsum("d,dv->v", x[1, 2], w)) / 0.7
    by_hand = logits[int(targets[1, 2])] - np.log(np.sum(np.exp(logits - logits.max()))) - logits.max()
    np.testing.assert_allclose(lp1[1, 2], by_hand, rtol=1e-5)


def test_chunk_choice_fits_the_budget():
    # 256 rows x 3072 positions x 151936 vocab (a Qwen2.5 1.5B GRPO step) over 8 row shards, 512 MiB per device
    budget = 512 * 1024**2
    c = logprob_chunk(256, 3072, 151936, row_shards=8, budget=budget)
    per_position = (256 // 8) * 151936 * 4
    assert 3072 % c == 0 and c * per_position <= budget
    larger = [d for d in range(c + 1, 3073) if 3072 % d == 0]
    assert larger[0] * per_position > budget  # the largest divisor that fits
    assert logprob_chunk(2, 16, 10) == 16  # small: one block
    assert logprob_chunk(4, 6, 1000, budget=4 * 1000 * 4 * 2) == 2  # divisors of 6 under 2 positions' worth


def test_compiled_memory_is_one_chunk_not_the_whole_sequence():
    n, t, d, v = 8, 512, 64, 8192  # full float32 logits: 128 MiB; a 16-position chunk: 4 MiB
    x = jax.ShapeDtypeStruct((n, t, d), jnp.float32)
    w = jax.ShapeDtypeStruct((d, v), jnp.float32)
    targets = jax.ShapeDtypeStruct((n, t), jnp.int32)

    def grad_fn(c):
        f = lambda x, w, tg: jnp.sum(chunked_token_logprobs(x, w, tg, 1.0, c)[0])  # noqa: E731
        return jax.jit(jax.grad(f, argnums=(0, 1))).lower(x, w, targets).compile().memory_analysis()

    full_logits = n * t * v * 4
    chunked, whole = grad_fn(16), grad_fn(0)
    assert whole.temp_size_in_bytes >= full_logits  # the control: one block holds all logits
    assert chunked.temp_size_in_bytes < full_logits / 4
