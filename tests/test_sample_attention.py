"""The sampler's segmented shared-prefix cache against the full forward pass and the plain cache."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mathjax.model import llama
from mathjax.model.attention import CacheContext, SharedPrefixContext
from mathjax.model.config import get_preset
from mathjax.sample import cache as cache_lib

CONFIG = get_preset("tiny", vocab_size=101, hidden_size=64, intermediate_size=96, num_layers=2,
                    num_heads=4, num_kv_heads=2)


def _full_logits(config, params, seq):
    return np.asarray(_forward(config, params, jnp.asarray(seq)[None])[0])[0]


_forward = jax.jit(llama.forward, static_argnums=0)


def _prefill(config, params, prompts, layout):
    """Prompt KV into the segmented cache by the plain CacheContext path, transposed heads-major."""
    g, p_max = layout.groups, layout.prefix_len
    padded = np.zeros((g, p_max), np.int32)
    for i, p in enumerate(prompts):
        padded[i, : len(p)] = p
    plain = llama.init_kv_caches(config, g, p_max)
    _, plain = llama.forward(config, params, jnp.asarray(padded), None, CacheContext(jnp.zeros(g, jnp.int32)), plain)
    mesh = jax.sharding.Mesh(np.array(jax.devices()[:1]).reshape(1, 1, 1), ("data", "fsdp", "tensor"))
    cache = cache_lib.init_cache(mesh, layout)
    return tuple((jnp.swapaxes(k, 1, 2), jnp.swapaxes(v, 1, 2), tk, tv) for (k, v), (_, _, tk, tv) in zip(plain, cache))


@pytest.mark.parametrize("variant", ["gqa", "mistral_window"])
def test_segmented_prefix_matches_full_forward(variant):
    """2 questions x 3 rows; prompts of different lengths, rows at different tail lengths, 3 segments."""
    config = CONFIG if variant == "gqa" else CONFIG.replace(model_type="mistral", sliding_window=6)
    params = llama.init_params(config, jax.random.key(0))
    unstacked = llama.unstack_layers(params)
    rng = np.random.default_rng(0)
    g, r = 2, 3
    prompts = [rng.integers(1, 101, size=n) for n in (7, 4)]
    layout = cache_lib.CacheLayout(groups=g, rows_per_group=r, prefix_len=8, segments=(2, 2, 4),
                                   kv_heads=2, head_dim=16, num_layers=2, dtype="float32")
    cache = _prefill(config, params, prompts, layout)
    tails = rng.integers(1, 101, size=(g, r, 8))
    # Rows start at different steps, so tails of one batch straddle segment boundaries.
    start = np.array([[0, 1, 3], [2, 0, 5]])
    refs = [[_full_logits(config, params, np.concatenate([prompts[gi], tails[gi, ri]])) for ri in range(r)]
            for gi in range(g)]
    tail_len = np.zeros((g, r), np.int32)
    for step in range(8):
        live = (step >= start) & (tail_len < 8)
        tok = np.where(live, tails[np.arange(g)[:, None], np.arange(r)[None], np.minimum(tail_len, 7)], 0)
        pos = np.array([len(p) for p in prompts])[:, None] + tail_len
        ctx = SharedPrefixContext(jnp.asarray([len(p) for p in prompts], jnp.int32), jnp.asarray(tail_len),
                                  segmented=True)
        logits, cache = _forward(config, unstacked, jnp.asarray(tok.reshape(-1, 1)),
                                 jnp.asarray(pos.reshape(-1, 1)), ctx, cache)
        for gi in range(g):
            for ri in range(r):
                if not live[gi, ri]:
                    continue
                ref = refs[gi][ri][len(prompts[gi]) + tail_len[gi, ri]]
                np.testing.assert_allclose(np.asarray(logits[gi * r + ri, 0]), ref, atol=1e-5)
        tail_len = tail_len + live


def test_segmented_multi_token_tail_write():
    """Several tail tokens at once (T > 1) across a segment boundary, vs the full forward."""
    params = llama.init_params(CONFIG, jax.random.key(1))
    rng = np.random.default_rng(1)
    prompts = [rng.integers(1, 101, size=5)]
    layout = cache_lib.CacheLayout(groups=1, rows_per_group=2, prefix_len=8, segments=(2, 4),
                                   kv_heads=2, head_dim=16, num_layers=2, dtype="float32")
    cache = _prefill(CONFIG, params, prompts, layout)
    tails = rng.integers(1, 101, size=(2, 4))
    ctx = SharedPrefixContext(jnp.asarray([5], jnp.int32), jnp.zeros((1, 2), jnp.int32), segmented=True)
    pos = 5 + np.broadcast_to(np.arange(4), (2, 4))
    logits, _ = _forward(CONFIG, params, jnp.asarray(tails), jnp.asarray(pos), ctx, cache)
    for row in range(2):
        ref = _full_logits(CONFIG, params, np.concatenate([prompts[0], tails[row]]))[5:]
        np.testing.assert_allclose(np.asarray(logits[row]), ref, atol=1e-5)


def test_tail_segments_and_kv_bytes():
    assert cache_lib.tail_segments(512) == (64, 64, 128, 256)
    assert cache_lib.tail_segments(128) == (64, 64)
    assert cache_lib.tail_segments(100) == (64, 36)
    assert cache_lib.tail_segments(20) == (20,)
    layout = cache_lib.make_layout(CONFIG, groups=1, rows_per_group=256, prefix_len=512, max_new_tokens=512)
    assert cache_lib.active_segments(layout, 0) == 1 and cache_lib.active_segments(layout, 64) == 2
    assert cache_lib.active_segments(layout, 300) == 4
    per_token = llama.kv_bytes_per_token(CONFIG)
    assert layout.shared_bytes() == (2 * 512 + 256 * 512) * per_token  # two prompt buffers per slot
    one = cache_lib.make_layout(CONFIG, groups=1, rows_per_group=256, prefix_len=512, max_new_tokens=512, buffers=1)
    assert one.shared_bytes() == (512 + 256 * 512) * per_token
    assert layout.unshared_bytes() == 256 * 1024 * per_token
