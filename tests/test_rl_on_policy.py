"""One update per rollout: the step's own log-probs (gradient stopped) replace the separate old-log-prob
pass. The update must equal the two-pass update, and the logged sampler gap must be the same number."""

import jax
import numpy as np
import optax
import pytest

from mathjax.model.config import get_preset
from mathjax.parallel.mesh import make_mesh
from mathjax.rl.config import base_rl_config
from mathjax.rl.step import make_logprob_fn, make_rl_step
from mathjax.train.state import create_state


def _batch(rows=6, width=64, vocab=64, seed=0):
    rng = np.random.default_rng(seed)
    tokens = rng.integers(4, vocab, (rows, width)).astype(np.int32)
    targets = np.roll(tokens, -1, axis=1)
    mask = np.zeros((rows, width), np.float32)
    for r in range(rows):
        start, end = rng.integers(3, 12), rng.integers(20, width - 1)
        mask[r, start:end] = 1.0
    advantages = rng.standard_normal(rows).astype(np.float32)
    weight = np.ones(rows, np.float32)
    weight[-1] = 0.0  # a dropped group's sample: no loss, but its tokens still count in the gap
    return tokens, targets, mask, advantages, weight


def test_on_policy_step_equals_the_two_pass_step(kl_coef=0.1):
    # With KL: the same policy-gradient path as kl_coef=0 plus the reference term (one compile fewer).
    config = get_preset("tiny", vocab_size=64, hidden_size=32, intermediate_size=64, num_layers=2, num_heads=4,
                        num_kv_heads=2, max_position_embeddings=128)
    mesh = make_mesh("data:1", devices=jax.devices()[:1])
    rl = base_rl_config().rl
    rl.kl_coef = kl_coef
    # SGD at lr 1: the parameter change is the gradient itself.
    optimizer, schedule = optax.sgd(1.0), optax.constant_schedule(1.0)
    tokens, targets, mask, advantages, weight = _batch()
    logprob = make_logprob_fn(config, mesh, 1.0)
    state = create_state(config, mesh, optimizer, seed=0)
    initial = jax.device_get(state.params)
    old = np.asarray(logprob(state.params, tokens, targets))
    sampler = old + np.random.default_rng(1).normal(0, 0.01, old.shape).astype(np.float32) * mask
    ref = old - 0.05 * mask
    results = {}
    for on_policy in (False, True):
        step = make_rl_step(config, optimizer, schedule, mesh, rl, max_new_tokens=60, on_policy=on_policy)
        s = create_state(config, mesh, optimizer, seed=0)
        batch = {"tokens": tokens, "targets": targets, "mask": mask, "old_logp": sampler if on_policy else old,
                 "ref_logp": ref, "advantages": advantages, "weight": weight}
        s, metrics = step(s, batch)
        grads = jax.tree_util.tree_map(lambda a, b: a - b, initial, jax.device_get(s.params))
        results[on_policy] = (grads, {k: float(v) for k, v in metrics.items()})
    (g_two, m_two), (g_one, m_one) = results[False], results[True]
    for k in ("loss", "pg_loss", "kl", "entropy", "grad_norm", "clip_fraction", "ratio_mean"):
        assert m_one[k] == pytest.approx(m_two[k], rel=1e-4, abs=1e-6), k
    assert m_two["grad_norm"] > 0 and m_one["ratio_mean"] == pytest.approx(1.0)
    for a, b in zip(jax.tree_util.tree_leaves(g_two), jax.tree_util.tree_leaves(g_one)):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-4 * np.abs(a).max() + 1e-9)
    # The gap the trainer logged from its separate pass: mean |old - sampler| over response tokens.
    expected_gap = float(np.abs(old - sampler)[mask > 0].mean())
    assert expected_gap > 1e-3
    assert m_one["logprob_gap"] == pytest.approx(expected_gap, rel=1e-3)
    assert "logprob_gap" not in m_two
