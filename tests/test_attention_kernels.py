"""Attention kernel selection, fallbacks, and splash (Pallas) vs the XLA path in interpret mode.

Splash is a TPU kernel; ``MATHJAX_SPLASH_INTERPRET=1`` runs the same kernel
through Pallas' interpreter on CPU, slowly, so shapes here are tiny (one
256-token row pair, head_dim 128: the smallest the kernel takes).
"""

import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mathjax.model import attention as attn
from mathjax.model import llama, splash
from mathjax.model.config import ModelConfig
from mathjax.parallel.mesh import make_mesh
from mathjax.parallel.rules import activate

B, T, H, K, D = 2, 256, 4, 2, 128


@pytest.fixture(autouse=True)
def _fresh_log_once():
    splash._logged.clear()  # each test sees its own fallback messages
    yield
    splash._logged.clear()


@pytest.fixture
def interpret(monkeypatch):
    monkeypatch.setenv(splash.INTERPRET_ENV, "1")


def _packed(b=B, t=T):
    """Segment ids with two examples, a padding tail (segment 0) and one full row; per-example positions."""
    seg = np.zeros((b, t), np.int32)
    seg[0, :100], seg[0, 100:200] = 1, 2
    seg[1:, :] = 1
    pos = np.zeros((b, t), np.int32)
    for row in range(b):
        for s in np.unique(seg[row]):
            idx = np.nonzero(seg[row] == s)[0]
            pos[row, idx] = np.arange(len(idx))
    return attn.SegmentContext(jnp.asarray(seg)), jnp.asarray(pos)


def _qkv(b=B, t=T, h=H, k=K, d=D, dtype=jnp.float32):
    ks = jax.random.split(jax.random.key(0), 3)
    return (jax.random.normal(ks[0], (b, t, h, d), dtype), jax.random.normal(ks[1], (b, t, k, d), dtype),
            jax.random.normal(ks[2], (b, t, k, d), dtype))


def _attend(impl, window, ctx, pos):
    return jax.jit(lambda q, k, v: attn.segment_attention(q, k, v, ctx, pos, window, impl))


# ---------------------------------------------------------------------------
# Selection.


@pytest.mark.parametrize("backend,expected", [("cpu", "blockwise"), ("gpu", "cudnn"), ("tpu", "splash")])
def test_auto_picks_the_backend_kernel(monkeypatch, backend, expected):
    monkeypatch.setattr(jax, "default_backend", lambda: backend)
    assert attn.select_impl("auto") == expected
    assert attn.select_impl(None) == expected


def test_explicit_choices_and_unknown(monkeypatch):
    monkeypatch.setattr(jax, "default_backend", lambda: "tpu")
    assert attn.select_impl("xla") == "xla"
    assert attn.select_impl("splash") == "splash"
    with pytest.raises(ValueError, match="unknown attention_impl"):
        attn.select_impl("flash3")


def test_fused_kernels_fall_back_off_their_backend_with_a_reason(caplog):
    with caplog.at_level(logging.WARNING):
        assert attn.select_impl("splash") == "xla"
        assert attn.select_impl("cudnn") == "xla"
    assert "splash needs a TPU (backend is cpu" in caplog.text
    assert "cudnn needs a GPU" in caplog.text


def test_interpret_mode_keeps_splash_on_cpu(interpret):
    assert attn.select_impl("splash") == "splash"


@pytest.mark.parametrize("q_shape,k_shape,needle", [
    ((2, 256, 4, 64), (2, 256, 2, 64), "head_dim=64 is not a multiple of 128"),
    ((2, 200, 4, 128), (2, 200, 2, 128), "sequence length 200 is not a multiple of 128"),
    ((2, 256, 4, 128), (2, 128, 2, 128), "query length 256 != key length 128"),
])
def test_unsupported_shapes_give_reasons(q_shape, k_shape, needle):
    assert needle in splash.unsupported_reason(q_shape, k_shape, backend="tpu")


def test_supported_shapes_and_backends():
    assert splash.unsupported_reason((2, 2048, 32, 128), (2, 2048, 8, 128), backend="tpu") is None
    assert "needs a TPU" in splash.unsupported_reason((2, 2048, 32, 128), (2, 2048, 8, 128), backend="gpu",
                                                      interpret=False)
    assert splash.unsupported_reason((2, 2048, 32, 128), (2, 2048, 8, 128), backend="gpu", interpret=True) is None
    assert [splash.block_size(n) for n in (2048, 768, 384, 200)] == [512, 256, 128, None]


def test_heads_split_differently_over_tensor_is_refused():
    mesh = make_mesh("fsdp:2,tensor:4")
    # 8 query heads split 4 ways, 2 KV heads cannot be: head i would look for the wrong KV head.
    reason = splash.unsupported_reason((2, 256, 8, 128), (2, 256, 2, 128), backend="tpu", mesh=mesh)
    assert "split differently" in reason
    assert splash.unsupported_reason((2, 256, 8, 128), (2, 256, 4, 128), backend="tpu", mesh=mesh) is None


def test_mask_is_causal_and_windowed():
    i, j = np.arange(T)[:, None], np.arange(T)[None, :]
    causal = splash.make_mask(2, T, None)[:, :, :]
    assert causal.shape == (2, T, T) and (causal == (j <= i)).all()
    local = splash.make_mask(2, T, 64)[:, :, :]
    assert (local == ((j <= i) & (j > i - 64))).all()


def test_shape_fallback_logs_once_and_matches_xla(interpret, caplog):
    ctx, pos = _packed()
    q, k, v = _qkv(d=64)
    with caplog.at_level(logging.WARNING):
        out = _attend("splash", None, ctx, pos)(q, k, v)
        _attend("splash", 32, ctx, pos)(q, k, v)  # a second trace: same reason, not repeated
    assert caplog.text.count("head_dim=64 is not a multiple of 128; using xla") == 1
    np.testing.assert_array_equal(np.asarray(out), np.asarray(_attend("xla", None, ctx, pos)(q, k, v)))


# ---------------------------------------------------------------------------
# Numerics (Pallas interpret mode).


@pytest.mark.parametrize("window", [None, 64])
def test_splash_matches_xla(interpret, window):
    ctx, pos = _packed()
    q, k, v = _qkv()
    assert "pallas_call" in str(jax.make_jaxpr(_attend("splash", window, ctx, pos))(q, k, v))  # no silent fallback
    got = _attend("splash", window, ctx, pos)(q, k, v)
    want = _attend("xla", window, ctx, pos)(q, k, v)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=2e-5, rtol=2e-5)


def test_splash_gradients_match_xla(interpret):
    ctx, pos = _packed()
    q, k, v = _qkv()
    w = jax.random.normal(jax.random.key(1), (B, T, H, D))

    def grads(impl):
        loss = lambda q, k, v: jnp.sum(w * attn.segment_attention(q, k, v, ctx, pos, 64, impl))  # noqa: E731
        return jax.jit(jax.grad(loss, argnums=(0, 1, 2)))(q, k, v)

    for got, want in zip(grads("splash"), grads("xla")):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-4, rtol=1e-4)


def test_splash_sharded_over_the_mesh_matches_xla(interpret):
    ctx, pos = _packed()
    q, k, v = _qkv()
    mesh = make_mesh("fsdp:2,tensor:2", devices=jax.devices()[:4])

    def run(impl):
        def fn(q, k, v):
            with activate(mesh):
                return attn.segment_attention(q, k, v, ctx, pos, None, impl)
        return jax.jit(fn)

    assert "shard_map" in str(jax.make_jaxpr(run("splash"))(q, k, v))  # Pallas calls run per shard
    np.testing.assert_allclose(np.asarray(run("splash")(q, k, v)), np.asarray(run("xla")(q, k, v)),
                               atol=2e-5, rtol=2e-5)


def test_model_loss_and_grads_with_splash_match_xla(interpret):
    """Through the scanned, rematerialised layer stack (custom VJP inside remat inside scan)."""
    t = 128  # one block: interpret mode is slow, and this test is about the plumbing
    cfg = ModelConfig(vocab_size=128, hidden_size=128, intermediate_size=256, num_layers=1, num_heads=2,
                      num_kv_heads=1, head_dim=128, remat_policy="full", max_position_embeddings=t)
    params = llama.init_params(cfg, jax.random.key(0))
    ctx, pos = _packed(b=1, t=t)
    tokens = jax.random.randint(jax.random.key(2), (1, t), 0, cfg.vocab_size)

    def loss_and_grads(impl):
        c = cfg.replace(attention_impl=impl)
        loss = lambda p: jnp.mean(llama.forward(c, p, tokens, pos, ctx)[0] ** 2)  # noqa: E731
        return jax.jit(jax.value_and_grad(loss))(params)

    splash_forward = lambda p: llama.forward(cfg.replace(attention_impl="splash"), p, tokens, pos, ctx)[0]  # noqa: E731
    assert "pallas_call" in str(jax.make_jaxpr(splash_forward)(params))
    (l1, g1), (l2, g2) = loss_and_grads("splash"), loss_and_grads("xla")
    np.testing.assert_allclose(float(l1), float(l2), rtol=1e-5)
    for a, b in zip(jax.tree_util.tree_leaves(g1), jax.tree_util.tree_leaves(g2)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5, rtol=1e-3)
