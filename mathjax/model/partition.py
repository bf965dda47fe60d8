"""Parameter shardings: the model's logical axis names mapped through the rules table."""

from __future__ import annotations

import jax
from jax.sharding import Mesh, NamedSharding

from mathjax.model import llama
from mathjax.model.config import ModelConfig
from mathjax.parallel.rules import logical_to_spec


def param_shardings(config: ModelConfig, mesh: Mesh) -> llama.Params:
    """Tree of NamedSharding for every parameter (computed from abstract shapes; no allocation)."""
    axes = llama.logical_axes(config)
    shapes = llama.abstract_params(config)
    return jax.tree_util.tree_map(
        lambda names, shape: NamedSharding(mesh, logical_to_spec(names, shape.shape, mesh)),
        axes,
        shapes,
        is_leaf=lambda v: isinstance(v, tuple),
    )


def layer_param_shardings(config: ModelConfig, mesh: Mesh) -> llama.Params:
    """Shardings of ``llama.unstack_layers(params)``: each layer's specs without the (never split) ``layers`` axis."""
    from jax.sharding import PartitionSpec

    shard = param_shardings(config, mesh)
    layer = jax.tree_util.tree_map(lambda s: NamedSharding(mesh, PartitionSpec(*tuple(s.spec)[1:])), shard["layers"])
    return {**shard, "layers": tuple(layer for _ in range(config.num_layers))}


def abstract_sharded_params(config: ModelConfig, mesh: Mesh, dtype=None) -> llama.Params:
    """ShapeDtypeStructs carrying the target shardings (for orbax restore and AOT compiles)."""
    shapes = llama.abstract_params(config)
    shardings = param_shardings(config, mesh)
    return jax.tree_util.tree_map(
        lambda s, sh: jax.ShapeDtypeStruct(s.shape, dtype or s.dtype, sharding=sh), shapes, shardings
    )


def init_sharded_params(config: ModelConfig, mesh: Mesh, rng: jax.Array) -> llama.Params:
    """Random params created directly in their shards (jit with out_shardings)."""
    return jax.jit(lambda key: llama.init_params(config, key), out_shardings=param_shardings(config, mesh))(rng)
