"""Meshes, the logical rules table, and sharded execution on 8 emulated CPU devices."""

import jax
import numpy as np
import pytest

import mathjax
from mathjax.model import llama
from mathjax.model.config import get_preset
from mathjax.model.partition import abstract_sharded_params, param_shardings
from mathjax.parallel.mesh import make_mesh, parse_mesh_spec
from mathjax.parallel.rules import logical_to_spec


def test_parse_mesh_spec():
    assert parse_mesh_spec("data:1,fsdp:-1,tensor:2", 8) == {"data": 1, "fsdp": 4, "tensor": 2}
    assert parse_mesh_spec("tensor:2", 2) == {"data": 1, "fsdp": 1, "tensor": 2}
    assert parse_mesh_spec("", 8) == {"data": 1, "fsdp": 8, "tensor": 1}
    for bad in ("data:3,fsdp:-1", "fsdp:-1,tensor:-1", "model:2", "data:x", "fsdp:16"):
        with pytest.raises(ValueError):
            parse_mesh_spec(bad, 8)


def test_rules_drop_axes_that_do_not_divide():
    mesh = make_mesh("fsdp:2,tensor:4")
    spec = logical_to_spec(("embed", "kv_heads", "head_dim"), (64, 2, 16), mesh)
    assert tuple(spec) == ("fsdp", None, None)
    assert tuple(logical_to_spec(("batch", "length"), (8, 3), mesh)) == ("fsdp", None)


def test_every_large_llama2_7b_param_is_fsdp_sharded():
    """Abstract shapes only: nothing of the 7B model is allocated."""
    config = get_preset("llama2_7b")
    devices = np.array(jax.devices()).reshape(1, 4, 2)
    mesh = jax.sharding.Mesh(devices, ("data", "fsdp", "tensor"))
    abstract = abstract_sharded_params(config, mesh)
    flat = jax.tree_util.tree_leaves_with_path(abstract)
    assert sum(int(np.prod(x.shape)) for _, x in flat) == config.num_params()
    large = [(p, x) for p, x in flat if np.prod(x.shape) > 1_000_000]
    assert len(large) >= 9
    for path, x in large:
        spec = x.sharding.spec
        axes = {a for entry in spec if entry for a in ((entry,) if isinstance(entry, str) else entry)}
        assert "fsdp" in axes, (jax.tree_util.keystr(path), spec)
    # The 70B's 8 KV heads shard over tensor=8; the 7B vocab over tensor too.
    shardings = param_shardings(get_preset("llama2_70b"), jax.sharding.Mesh(np.array(jax.devices()).reshape(1, 1, 8), ("data", "fsdp", "tensor")))
    assert tuple(shardings["layers"]["attn"]["k_proj"].spec) == (None, None, "tensor", None)


def test_sharded_logits_equal_single_device():
    config = get_preset("tiny", vocab_size=128, hidden_size=64, intermediate_size=128, num_layers=2, num_heads=4, num_kv_heads=2)
    single = mathjax.from_random(config, seed=3)
    params = jax.device_get(single.params)
    sharded = mathjax.api.Model(config=config, params=jax.device_put(params, param_shardings(config, make_mesh("fsdp:4,tensor:2"))), mesh=make_mesh("fsdp:4,tensor:2"))
    leaf = sharded.params["layers"]["mlp"]["gate_proj"]
    assert len(leaf.sharding.device_set) == 8
    tokens = np.random.default_rng(0).integers(0, 128, size=(8, 16))
    np.testing.assert_allclose(sharded.logits(tokens), single.logits(tokens), atol=1e-5, rtol=1e-5)


def test_hf_import_streams_onto_mesh(tmp_path):
    from hf_fixtures import hf_logits, make_hf_model

    hf_model = make_hf_model("llama_gqa")
    hf_model.save_pretrained(tmp_path)
    model = mathjax.load(str(tmp_path), mesh="fsdp:4,tensor:2")
    q = model.params["layers"]["attn"]["q_proj"]
    assert tuple(q.sharding.spec) == (None, "fsdp", "tensor", None)
    tokens = np.random.default_rng(0).integers(0, 97, size=(4, 12))
    assert np.abs(model.logits(tokens) - hf_logits(hf_model, tokens)).max() < 1e-4
