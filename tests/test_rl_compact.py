"""Rows with zero advantage left out of the update: the same loss, gradient and step as the full minibatch."""

import jax
import numpy as np
import optax
import pytest

from mathjax.model.config import get_preset
from mathjax.parallel.mesh import make_mesh
from mathjax.rl import grpo
from mathjax.rl.compact import bucket_rows, compact, informative_rows
from mathjax.rl.config import base_rl_config
from mathjax.rl.step import make_logprob_fn, make_rl_step
from mathjax.sample.host_arrays import replicated
from mathjax.train.state import create_state

GROUP = 4


def _batch(rows=16, seq_len=128, vocab=64, seed=0, per_token=False):
    """Groups of 4: groups 1 and 3 with all-equal rewards (advantage 0), the others mixed."""
    rng = np.random.default_rng(seed)
    prompt = rng.integers(4, 12, rows)
    response = rng.integers(3, 40, rows)
    z = lambda dtype: np.zeros((rows, seq_len), dtype)  # noqa: E731
    tokens, targets, mask = z(np.int32), z(np.int32), z(np.float32)
    for r in range(rows):
        n = prompt[r] + response[r]
        seq = rng.integers(4, vocab, n)
        tokens[r, :n], targets[r, : n - 1] = seq, seq[1:]
        mask[r, prompt[r] - 1 : n - 1] = 1.0
    rewards = rng.integers(0, 2, rows).astype(np.float32)
    rewards[GROUP : 2 * GROUP] = 1.0
    rewards[3 * GROUP : 4 * GROUP] = 0.0
    rewards[:GROUP] = [1, 0, 0, 1]
    rewards[2 * GROUP : 3 * GROUP] = [0, 1, 1, 1]
    adv = grpo.group_advantages(rewards, GROUP)
    if per_token:  # process supervision: a per-token term on top, here only on the mixed groups' rows
        adv = np.repeat(adv[:, None], seq_len, axis=1) + 0.1 * (adv[:, None] != 0) * mask
    weight = np.ones(rows, np.float32)
    weight[3 * GROUP - 1] = 0.0  # a padding row of a mixed group
    return {"tokens": tokens, "targets": targets, "mask": mask, "advantages": adv.astype(np.float32),
            "weight": weight}


def test_informative_rows_are_the_weighted_rows_with_a_nonzero_advantage():
    b = _batch()
    keep = informative_rows(b["advantages"], b["mask"], b["weight"])
    expected = np.repeat([True, False, True, False], GROUP)
    expected[3 * GROUP - 1] = False  # weight 0
    np.testing.assert_array_equal(keep, expected)
    per_token = _batch(per_token=True)
    np.testing.assert_array_equal(informative_rows(per_token["advantages"], per_token["mask"], per_token["weight"]),
                                  expected)
    # A per-token advantage that is non-zero only off the response mask carries no gradient either.
    adv = np.zeros((2, 8), np.float32)
    adv[0, 0] = 1.0
    mask = np.zeros((2, 8), np.float32)
    mask[:, 3:6] = 1.0
    np.testing.assert_array_equal(informative_rows(adv, mask, np.ones(2)), [False, False])


def test_bucket_rows_rounds_up_to_a_grid_of_shard_multiples():
    assert [bucket_rows(k, 256, 1) for k in (0, 1, 64, 65, 128, 129, 200, 256)] == [64, 64, 64, 128, 128, 192,
                                                                                      256, 256]
    assert len({bucket_rows(k, 256, 8) for k in range(257)}) == 4  # compiled shapes stay bounded
    assert bucket_rows(5, 16, 8) == 8 and bucket_rows(9, 16, 8) == 16  # multiples of the row shards
    assert bucket_rows(3, 12, 8) == 8  # the grid step is itself rounded up to the shards
    assert bucket_rows(0, 6, 8) == 6  # never more rows than the minibatch
    with pytest.raises(ValueError, match="multiple"):
        bucket_rows(3, 16, 0)


def test_compact_keeps_the_informative_rows_and_the_full_denominators():
    b = _batch()
    b["old_logp"] = b["ref_logp"] = -b["mask"]
    keep = informative_rows(b["advantages"], b["mask"], b["weight"])
    out = compact(b, keep, seq_len=128, row_multiple=2)
    assert out["tokens"].shape == (8, 64)  # 7 rows -> the 8-row bucket; the longest row fits 64 columns
    np.testing.assert_array_equal(out["tokens"][:7], b["tokens"][keep][:, :64])
    assert not b["tokens"][keep][:, 64:].any()  # only padding columns were cut
    assert out["weight"].tolist() == [1.0] * 7 + [0.0]  # the bucket's padding row has no weight
    assert not out["mask"][7].any()
    assert out["num_samples"] == pytest.approx(15.0)
    assert out["num_tokens"] == pytest.approx(float((b["mask"] * b["weight"][:, None]).sum()))
    with pytest.raises(ValueError, match="keep has shape"):
        compact(b, keep[:3], seq_len=128)
    with pytest.raises(KeyError, match="ref_logp"):
        compact({k: v for k, v in b.items() if k != "ref_logp"}, keep, seq_len=128)


@pytest.mark.parametrize("aggregation,per_token,devices", [
    ("sequence", False, 1), ("constant", True, 1), ("token", False, 4),
])
def test_compacted_update_equals_the_full_minibatch_update(aggregation, per_token, devices):
    config = get_preset("tiny", vocab_size=64, hidden_size=32, intermediate_size=64, num_layers=2, num_heads=4,
                        num_kv_heads=2, max_position_embeddings=128)
    mesh = make_mesh(f"data:{devices}", devices=jax.devices()[:devices])
    rl = base_rl_config().rl
    rl.loss_aggregation, rl.clip_low, rl.clip_high = aggregation, 0.2, 0.28
    # SGD at lr 1: the step is the gradient itself (see tests/test_rl_trim.py on Adam and round-off).
    optimizer, schedule = optax.sgd(1.0), optax.constant_schedule(1.0)
    step = make_rl_step(config, optimizer, schedule, mesh, rl, max_new_tokens=40)
    b = _batch(per_token=per_token)
    state = create_state(config, mesh, optimizer, seed=0)
    # Off-policy old log-probs (a perturbed copy of the current ones), so ratios and clipping are live.
    current = np.asarray(make_logprob_fn(config, mesh, 1.0)(state.params, b["tokens"], b["targets"]))
    b["old_logp"] = current + 0.3 * np.random.default_rng(1).standard_normal(current.shape).astype(np.float32)
    b["ref_logp"] = np.zeros_like(current)
    keep = informative_rows(b["advantages"], b["mask"], b["weight"])
    small = compact(b, keep, seq_len=128, row_multiple=devices)
    assert small["tokens"].shape[0] < b["tokens"].shape[0]
    results = []
    for batch in (b, small):
        state = create_state(config, mesh, optimizer, seed=0)
        initial = jax.device_get(state.params)
        args = {k: v for k, v in batch.items() if k not in ("num_samples", "num_tokens")}
        args.update({k: replicated(batch[k], mesh) for k in ("num_samples", "num_tokens") if k in batch})
        state, metrics = step(state, args)
        grads = jax.tree_util.tree_map(lambda a, c: a - c, initial, jax.device_get(state.params))
        results.append((grads, {k: float(v) for k, v in metrics.items()}, initial))
    (g_full, m_full, params), (g_small, m_small, _) = results
    for k in ("loss", "pg_loss", "grad_norm"):
        assert m_small[k] == pytest.approx(m_full[k], rel=1e-4, abs=1e-7), k
    assert m_full["grad_norm"] > 0 and m_full["clip_fraction"] > 0  # a real, clipped update
    # The step is read back as params - new params: float32 rounds each new param to ~6e-8 of its size.
    for a, c, p in zip(*(jax.tree_util.tree_leaves(t) for t in (g_full, g_small, params))):
        assert np.abs(a).max() > 0
        atol = 1e-4 * np.abs(a).max() + 2 * np.finfo(np.float32).eps * np.abs(p).max()
        np.testing.assert_allclose(a, c, rtol=1e-4, atol=atol)
    if devices > 1 or per_token:
        return  # (the check below compiles another step; once is enough)
    # Without the full denominators the compacted loss would differ: the test can tell them apart.
    plain = {k: v for k, v in small.items() if k not in ("num_samples", "num_tokens")}
    _, m_plain = step(create_state(config, mesh, optimizer, seed=0), plain)
    assert float(m_plain["loss"]) != pytest.approx(m_full["loss"], rel=1e-3)
