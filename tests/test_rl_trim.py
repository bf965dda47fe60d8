"""Rollout batches trained at the narrowest bucket that holds them: the same update as at full seq_len."""

import dataclasses

import jax
import numpy as np
import optax
import pytest

from mathjax.model.config import get_preset
from mathjax.parallel.mesh import make_mesh
from mathjax.rl.config import base_rl_config
from mathjax.rl.rollout import Rollout, padded_width
from mathjax.rl.step import make_logprob_fn, make_rl_step
from mathjax.train.state import create_state


def test_padded_width_rounds_up_to_a_grid_of_at_most_eight_widths():
    assert [padded_width(u, 256) for u in (0, 1, 64, 65, 128, 129, 160, 193, 256)] == [
        64, 64, 64, 128, 128, 192, 192, 256, 256]
    assert padded_width(300, 3072) == 384 and padded_width(385, 3072) == 768  # grid of 3072 / 8
    assert len({padded_width(u, 3072) for u in range(3073)}) == 8  # compiled shapes stay bounded
    assert padded_width(10, 48) == 48  # seq_len under the minimum: never wider than seq_len
    assert padded_width(20, 256, min_width=16, buckets=16) == 32
    with pytest.raises(ValueError, match="min_width"):
        padded_width(10, 256, min_width=0)


def _rollout(seq_len=256, rows=8, vocab=64, seed=0) -> Rollout:
    rng = np.random.default_rng(seed)
    prompt = rng.integers(4, 12, rows)
    response = rng.integers(3, 40, rows)  # longest row: at most 51 of 256 columns used
    z = lambda dtype: np.zeros((rows, seq_len), dtype)  # noqa: E731
    tokens, targets, mask, slogp = z(np.int32), z(np.int32), z(np.float32), z(np.float32)
    for r in range(rows):
        n = prompt[r] + response[r]
        seq = rng.integers(4, vocab, n)
        tokens[r, :n], targets[r, : n - 1] = seq, seq[1:]
        mask[r, prompt[r] - 1 : n - 1] = 1.0
        slogp[r, prompt[r] - 1 : n - 1] = -rng.random(n - prompt[r])
    return Rollout(tokens=tokens, targets=targets, mask=mask, sampler_logp=slogp,
                   advantages=rng.standard_normal(rows).astype(np.float32), weight=np.ones(rows, np.float32),
                   rewards=np.zeros(rows, np.float32), correct=np.zeros(rows, np.float32),
                   lengths=response.astype(np.int32), truncated=np.zeros(rows, bool),
                   seq_lengths=(prompt + response).astype(np.int32))


def test_trimmed_keeps_every_token_and_cuts_only_padding():
    ro = _rollout()
    cut = ro.trimmed()
    assert cut.tokens.shape == (8, 64) and int(ro.seq_lengths.max()) <= 64
    for name in ("tokens", "targets", "mask", "sampler_logp"):
        full, short = getattr(ro, name), getattr(cut, name)
        np.testing.assert_array_equal(full[:, :64], short)
        assert not full[:, 64:].any()  # only zeros were dropped
    np.testing.assert_array_equal(cut.advantages, ro.advantages)
    per_token = dataclasses.replace(ro, advantages=np.tile(ro.advantages[:, None], (1, 256)))
    np.testing.assert_array_equal(per_token.trimmed().advantages, per_token.advantages[:, :64])  # cut with the rest
    long = dataclasses.replace(ro, seq_lengths=np.full(8, 256, np.int32))
    assert long.trimmed() is long  # nothing to cut: the same batch


@pytest.mark.parametrize("aggregation", ["sequence", "token", "constant"])
def test_update_at_the_trimmed_width_equals_full_width(aggregation):
    config = get_preset("tiny", vocab_size=64, hidden_size=32, intermediate_size=64, num_layers=2, num_heads=4,
                        num_kv_heads=2, max_position_embeddings=256)
    mesh = make_mesh("data:1", devices=jax.devices()[:1])
    rl = base_rl_config().rl
    rl.loss_aggregation, rl.kl_coef = aggregation, 0.1
    # Plain SGD at lr 1: the update is the gradient itself. (Adam's g / sqrt(v) turns float round-off
    # in a near-zero gradient into a visible difference of up to a whole lr step.)
    optimizer, schedule = optax.sgd(1.0), optax.constant_schedule(1.0)
    step = make_rl_step(config, optimizer, schedule, mesh, rl, max_new_tokens=40)
    logprob = make_logprob_fn(config, mesh, 1.0)
    ro = _rollout()
    results = []
    for batch_ro in (ro, ro.trimmed()):
        state = create_state(config, mesh, optimizer, seed=0)
        initial = jax.device_get(state.params)
        old = np.asarray(logprob(state.params, batch_ro.tokens, batch_ro.targets))
        batch = {"tokens": batch_ro.tokens, "targets": batch_ro.targets, "mask": batch_ro.mask, "old_logp": old,
                 "ref_logp": old - 0.05 * batch_ro.mask, "advantages": batch_ro.advantages,
                 "weight": batch_ro.weight}
        state, metrics = step(state, batch)
        grads = jax.tree_util.tree_map(lambda a, b: a - b, initial, jax.device_get(state.params))
        results.append((grads, {k: float(v) for k, v in metrics.items()}, old))
    (p_full, m_full, old_full), (p_cut, m_cut, old_cut) = results
    np.testing.assert_allclose(old_full[:, :64], old_cut, rtol=1e-5, atol=1e-5)
    for k in ("loss", "pg_loss", "kl", "entropy", "grad_norm", "clip_fraction"):
        assert m_cut[k] == pytest.approx(m_full[k], rel=1e-4, abs=1e-6), k
    assert m_full["grad_norm"] > 0 and abs(m_full["kl"]) > 0  # a real update, not a no-op
    # The gradients agree leaf by leaf, to 1e-4 of each leaf's largest entry.
    for a, b in zip(jax.tree_util.tree_leaves(p_full), jax.tree_util.tree_leaves(p_cut)):
        assert np.abs(a).max() > 0
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * np.abs(a).max())
