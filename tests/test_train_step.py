"""Train step numerics: prompt masking, packing equivalence, accumulation equivalence, chunked loss."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from mathjax.data import sft
from mathjax.model import llama
from mathjax.model.config import ModelConfig
from mathjax.parallel.mesh import make_mesh
from mathjax.train import optimizer as opt_lib
from mathjax.train.state import create_state
from mathjax.train.step import make_train_step, nll_sum

CONFIG = ModelConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_layers=2, num_heads=4,
                     num_kv_heads=2, max_position_embeddings=128)
T = 32


def _examples(n: int, seed: int = 0) -> list[tuple[np.ndarray, int]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        length = int(rng.integers(8, 16))
        out.append((rng.integers(4, CONFIG.vocab_size, size=length).astype(np.int32), int(rng.integers(2, length - 2))))
    return out


def _store(examples) -> sft.TokenStore:
    store = sft.TokenStore()
    for i, (ids, p) in enumerate(examples):
        store.add(i, ids, p)
    return store.finalize()


def _rows(store, rows) -> dict[str, np.ndarray]:
    built = [sft.build_row(store, r, T) for r in rows]
    return {k: np.stack([b[k] for b in built]) for k in sft.BATCH_KEYS}


@functools.partial(jax.jit, static_argnums=2)
def _jit_loss_and_grads(params, batch, chunk):
    denom = batch["loss_mask"].sum()
    return jax.value_and_grad(lambda p: nll_sum(CONFIG, p, batch, chunk) / denom)(params)


def _loss_and_grads(params, batch, chunk=0):
    return _jit_loss_and_grads(params, {k: jnp.asarray(v) for k, v in batch.items()}, chunk)


@pytest.fixture(scope="module")
def params():
    return jax.jit(lambda k: llama.init_params(CONFIG, k))(jax.random.key(0))


def _assert_trees_close(a, b, rtol=1e-5, atol=1e-6):
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)


def test_prompt_targets_weigh_zero(params):
    store = _store(_examples(4))
    batch = _rows(store, [[0, 1], [2, 3], [], [], [], []])
    loss, grads = _loss_and_grads(params, batch)
    # Change every target the mask excludes (prompt positions, padding): nothing moves.
    changed = dict(batch)
    rng = np.random.default_rng(1)
    changed["targets"] = np.where(batch["loss_mask"] == 0, rng.integers(0, CONFIG.vocab_size, size=batch["targets"].shape),
                                  batch["targets"]).astype(np.int32)
    assert not np.array_equal(changed["targets"], batch["targets"])
    loss2, grads2 = _loss_and_grads(params, changed)
    assert float(loss) == float(loss2)
    _assert_trees_close(grads, grads2, rtol=0, atol=0)
    # A response target does count.
    j = np.argwhere(batch["loss_mask"] == 1)[0]
    changed = dict(batch)
    changed["targets"] = batch["targets"].copy()
    changed["targets"][tuple(j)] = (batch["targets"][tuple(j)] + 1) % CONFIG.vocab_size
    assert float(_loss_and_grads(params, changed)[0]) != float(loss)


def test_packing_equivalence(params):
    """Token-mean loss and grads are the same packed several per row or one per row."""
    store = _store(_examples(6, seed=3))
    packed = _rows(store, [[0, 1], [2, 3, 4], [5], [], [], []])  # same shape: one compile
    alone = _rows(store, [[k] for k in range(6)])
    loss_p, grads_p = _loss_and_grads(params, packed)
    loss_a, grads_a = _loss_and_grads(params, alone)
    np.testing.assert_allclose(float(loss_p), float(loss_a), rtol=1e-6)
    _assert_trees_close(grads_p, grads_a)
    # Each example's own loss is untouched by its row neighbours.
    only_1 = {k: v.copy() for k, v in packed.items()}
    only_1["loss_mask"] *= (only_1["segment_ids"] == 2) & (np.arange(6)[:, None] == 0)
    solo = _rows(store, [[1], [], [], [], [], []])
    np.testing.assert_allclose(float(_loss_and_grads(params, only_1)[0]),
                               float(_loss_and_grads(params, solo)[0]), rtol=1e-6)


def test_chunked_loss_matches(params):
    store = _store(_examples(4, seed=5))
    batch = _rows(store, [[0, 1], [2, 3], [], [], [], []])
    loss, grads = _loss_and_grads(params, batch)
    loss_c, grads_c = _loss_and_grads(params, batch, chunk=8)
    np.testing.assert_allclose(float(loss), float(loss_c), rtol=1e-6)
    _assert_trees_close(grads, grads_c)


def _sgd_config():
    c = ml_collections.ConfigDict({
        "name": "sgd", "lr": 1.0, "schedule": "constant", "warmup_ratio": 0.0, "warmup_steps": 0,
        "final_lr_ratio": 0.0, "weight_decay": 0.0, "b1": 0.9, "b2": 0.999, "eps": 1e-8, "clip_norm": 0.0})
    return c


def test_accumulation_equivalence():
    """Same update from one batch of 8 rows and from 4 micro-batches of 2 (SGD: update == gradient)."""
    mesh = make_mesh("data:1,fsdp:2,tensor:2", devices=jax.devices()[:4])
    store = _store(_examples(16, seed=7))
    rows = _rows(store, [[2 * i, 2 * i + 1] for i in range(8)])
    optimizer, schedule = opt_lib.make_optimizer(_sgd_config(), CONFIG, total_steps=10)
    initial = create_state(CONFIG, mesh, optimizer, seed=0)
    results = {}
    for micro in (1, 4):
        layout = sft.BatchLayout(mesh, 8, micro, T)
        step = make_train_step(CONFIG, optimizer, schedule, mesh, layout.sharding)
        state = jax.tree_util.tree_map(jnp.copy, initial)  # the step donates its input
        batch = {k: jax.device_put(v.reshape(micro, 8 // micro, T), layout.sharding) for k, v in rows.items()}
        state, metrics = step(state, batch)
        results[micro] = (jax.device_get(metrics), jax.device_get(state.params))
    np.testing.assert_allclose(results[4][0]["loss"], results[1][0]["loss"], rtol=1e-6)
    np.testing.assert_allclose(results[4][0]["grad_norm"], results[1][0]["grad_norm"], rtol=1e-5)
    _assert_trees_close(results[4][1], results[1][1], rtol=1e-5, atol=1e-7)


def test_schedule_and_decay_mask():
    c = ml_collections.ConfigDict({"lr": 1.0, "schedule": "cosine", "warmup_ratio": 0.04, "warmup_steps": 0,
                                   "final_lr_ratio": 0.0})
    sched = opt_lib.make_schedule(c, 100)
    assert opt_lib.warmup_steps(c, 100) == 4
    assert float(sched(0)) == 0.0 and float(sched(4)) == pytest.approx(1.0)
    assert float(sched(52)) == pytest.approx(0.5, abs=0.02) and float(sched(100)) == pytest.approx(0.0, abs=1e-6)
    mask = opt_lib.decay_mask(CONFIG)
    assert mask["layers"]["mlp"]["up_proj"] and mask["embed"]["embedding"]
    assert not mask["layers"]["attn_norm"]["scale"] and not mask["head"]["final_norm"]["scale"]
