"""Packed rows, KV-cache decoding and shared-prefix attention against the plain forward pass."""

import jax
import jax.numpy as jnp
import numpy as np

import mathjax
from mathjax.model import llama
from mathjax.model.attention import CacheContext, SegmentContext, SharedPrefixContext
from mathjax.model.config import get_preset

CONFIG = get_preset("tiny", vocab_size=101, hidden_size=64, intermediate_size=96, num_layers=2,
                    num_heads=4, num_kv_heads=2, sliding_window=None)


def _params(config=CONFIG, seed=0):
    return llama.init_params(config, jax.random.key(seed))


_forward = jax.jit(llama.forward, static_argnums=(0,))


def _logits(params, tokens, config=CONFIG):
    return np.asarray(_forward(config, params, jnp.asarray(tokens))[0])


def test_packed_rows_equal_separate_examples():
    params = _params()
    rng = np.random.default_rng(0)
    a, b, c = (rng.integers(1, 101, size=n) for n in (5, 7, 3))
    tokens = np.concatenate([a, b, c, np.zeros(1, int)])[None]
    segments = np.array([[1] * 5 + [2] * 7 + [3] * 3 + [0]])
    positions = np.array([list(range(5)) + list(range(7)) + list(range(3)) + [0]])
    packed = np.asarray(llama.forward(CONFIG, params, jnp.asarray(tokens), jnp.asarray(positions),
                                      SegmentContext(jnp.asarray(segments)))[0])
    start = 0
    for ex in (a, b, c):
        alone = _logits(params, ex[None])
        np.testing.assert_allclose(packed[0, start:start + len(ex)], alone[0], atol=1e-5)
        start += len(ex)
    # Same through the public API.
    model = mathjax.api.Model(config=CONFIG, params=params, mesh=mathjax.api._resolve_mesh(None))
    np.testing.assert_allclose(model.logits(tokens, positions, segments)[0, :5], _logits(params, a[None])[0], atol=1e-5)


def test_sliding_window_packed_matches_separate():
    config = CONFIG.replace(sliding_window=3, model_type="mistral")
    params = _params(config)
    a = np.arange(1, 9)
    tokens = np.concatenate([a, a])[None]
    seg = np.array([[1] * 8 + [2] * 8])
    pos = np.array([list(range(8)) * 2])
    packed = np.asarray(llama.forward(config, params, jnp.asarray(tokens), jnp.asarray(pos), SegmentContext(jnp.asarray(seg)))[0])
    np.testing.assert_allclose(packed[0, 8:], _logits(params, a[None], config)[0], atol=1e-5)


def test_cached_decoding_matches_full_forward():
    params = _params()
    rng = np.random.default_rng(1)
    tokens = rng.integers(1, 101, size=(3, 12))
    full = _logits(params, tokens)
    caches = llama.init_kv_caches(CONFIG, 3, 16)
    prompt = 5
    pos = jnp.broadcast_to(jnp.arange(prompt), (3, prompt))
    logits, caches = llama.forward(CONFIG, params, jnp.asarray(tokens[:, :prompt]), pos, CacheContext(jnp.zeros(3, jnp.int32)), caches)
    np.testing.assert_allclose(np.asarray(logits), full[:, :prompt], atol=1e-5)
    unstacked = llama.unstack_layers(params)
    for t in range(prompt, 12):
        lengths = jnp.full((3,), t, jnp.int32)
        logits, caches = _forward(CONFIG, unstacked, jnp.asarray(tokens[:, t:t + 1]), lengths[:, None], CacheContext(lengths), caches)
        np.testing.assert_allclose(np.asarray(logits[:, 0]), full[:, t], atol=1e-5)


def test_shared_prefix_matches_full_forward():
    """Two questions (groups) x three samples each; different prompt lengths and tail lengths."""
    params = _params()
    rng = np.random.default_rng(2)
    g, r, p_max, s_max = 2, 3, 8, 6
    prompt_lens = [8, 5]
    prompts = [rng.integers(1, 101, size=n) for n in prompt_lens]
    tails = rng.integers(1, 101, size=(g, r, 4))
    # Prefill both prompts into a plain cache (right-padded), then use it as the shared prefix.
    padded = np.zeros((g, p_max), int)
    for i, p in enumerate(prompts):
        padded[i, : len(p)] = p
    caches = llama.init_kv_caches(CONFIG, g, p_max)
    _, caches = llama.forward(CONFIG, params, jnp.asarray(padded), None, CacheContext(jnp.zeros(g, jnp.int32)), caches)
    shape = (g, r, s_max, CONFIG.num_kv_heads, CONFIG.resolved_head_dim)
    layer_caches = tuple((k, v, jnp.zeros(shape), jnp.zeros(shape)) for k, v in caches)
    refs = {(gi, ri): _logits(params, np.concatenate([prompts[gi], tails[gi, ri]])[None])[0]
            for gi in range(g) for ri in range(r)}
    tail_len = np.zeros((g, r), np.int32)
    for step in range(4):
        x = tails[:, :, step].reshape(g * r, 1)
        pos = (np.array(prompt_lens)[:, None] + tail_len).reshape(g * r, 1)
        ctx = SharedPrefixContext(jnp.asarray(prompt_lens, jnp.int32), jnp.asarray(tail_len))
        logits, layer_caches = _forward(CONFIG, params, jnp.asarray(x), jnp.asarray(pos), ctx, layer_caches)
        tail_len += 1
        for gi in range(g):
            for ri in range(r):
                ref = refs[gi, ri][prompt_lens[gi] + step]
                np.testing.assert_allclose(np.asarray(logits[gi * r + ri, 0]), ref, atol=1e-5)
