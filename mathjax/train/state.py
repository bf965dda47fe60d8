"""The train state (params, optimizer state, step, RNG) and where each part lives on the mesh."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from mathjax.model import llama
from mathjax.model.config import ModelConfig
from mathjax.model.partition import param_shardings


@struct.dataclass
class TrainState:
    """Everything a resumed run needs besides the data position.

    ``params`` and ``opt_state`` are float32 (``param_dtype``); ``rng`` is raw
    key data (uint32) so that it checkpoints as a plain array.
    """

    step: jax.Array  # int32 scalar: optimizer updates applied
    params: llama.Params
    opt_state: optax.OptState
    rng: jax.Array

    def as_items(self) -> dict[str, Any]:
        """Checkpoint items: params apart, so a model can be loaded without optimizer state."""
        return {"params": self.params, "opt_state": self.opt_state, "meta": {"step": self.step, "rng": self.rng}}

    @classmethod
    def from_items(cls, items: dict[str, Any]) -> "TrainState":
        meta = items["meta"]
        return cls(step=meta["step"], params=items["params"], opt_state=items["opt_state"], rng=meta["rng"])


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def state_shardings(config: ModelConfig, mesh: Mesh, optimizer: optax.GradientTransformation) -> TrainState:
    """NamedSharding for every leaf: optimizer moments like their params, counters replicated."""
    p_shardings = param_shardings(config, mesh)
    abstract = llama.abstract_params(config)
    abstract_opt = jax.eval_shape(optimizer.init, abstract)
    opt_shardings = optax.tree_map_params(
        optimizer, lambda _, sharding: sharding, abstract_opt, p_shardings,
        transform_non_params=lambda _: replicated(mesh),
    )
    return TrainState(step=replicated(mesh), params=p_shardings, opt_state=opt_shardings, rng=replicated(mesh))


def abstract_state(config: ModelConfig, mesh: Mesh, optimizer: optax.GradientTransformation) -> TrainState:
    """ShapeDtypeStructs with shardings (restore targets; no allocation)."""
    params = llama.abstract_params(config)
    shapes = TrainState(
        step=jax.ShapeDtypeStruct((), jnp.int32),
        params=params,
        opt_state=jax.eval_shape(optimizer.init, params),
        rng=jax.ShapeDtypeStruct((2,), jnp.uint32),
    )
    shardings = state_shardings(config, mesh, optimizer)
    return jax.tree_util.tree_map(lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh), shapes, shardings)


def create_state(
    config: ModelConfig, mesh: Mesh, optimizer: optax.GradientTransformation, seed: int, params: llama.Params | None = None
) -> TrainState:
    """A fresh state, built directly in its shards: random params (from ``seed``) unless given."""
    shardings = state_shardings(config, mesh, optimizer)
    key = jax.random.key(seed)
    init_key, rng = jax.random.split(key)

    def init(params_in, init_key, rng):
        p = params_in if params_in is not None else llama.init_params(config, init_key)
        p = jax.tree_util.tree_map(lambda a: a.astype(jnp.dtype(config.param_dtype)), p)
        return TrainState(step=jnp.zeros((), jnp.int32), params=p, opt_state=optimizer.init(p),
                          rng=jax.random.key_data(rng))

    if params is None:
        return jax.jit(lambda k, r: init(None, k, r), out_shardings=shardings)(init_key, rng)
    # Given params keep their buffers (donated): no second copy of a large model.
    return jax.jit(init, out_shardings=shardings, donate_argnums=(0,))(params, init_key, rng)
