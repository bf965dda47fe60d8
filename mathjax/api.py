"""``mathjax.load``: one entry point for HF dirs, mathjax checkpoints and training workdirs."""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding

from mathjax.model import llama
from mathjax.model import attention as attn_lib
from mathjax.model.config import ModelConfig
from mathjax.parallel.mesh import make_mesh
from mathjax.parallel.rules import activate, logical_to_spec


@dataclasses.dataclass
class Model:
    """A loaded model: config, sharded params, mesh, and where its tokenizer lives."""

    config: ModelConfig
    params: llama.Params
    mesh: Mesh
    path: str | None = None
    tokenizer_path: str | None = None

    def logits(self, token_ids, positions=None, segment_ids=None) -> np.ndarray:
        """int [batch, length] -> float32 logits [batch, length, vocab] (numpy).

        ``segment_ids`` (0 = padding) packs several examples in a row;
        ``positions`` then restart per example.
        """
        tokens = jnp.asarray(np.asarray(token_ids), jnp.int32)
        if tokens.ndim != 2:
            raise ValueError(f"token_ids must be [batch, length], got shape {tokens.shape}")
        if int(tokens.max(initial=0)) >= self.config.vocab_size or int(tokens.min(initial=0)) < 0:
            raise ValueError(f"token_ids outside [0, {self.config.vocab_size})")
        b, t = tokens.shape
        positions = jnp.broadcast_to(jnp.arange(t, dtype=jnp.int32), (b, t)) if positions is None else jnp.asarray(positions, jnp.int32)
        segment_ids = jnp.ones((b, t), jnp.int32) if segment_ids is None else jnp.asarray(segment_ids, jnp.int32)
        batch_sharding = NamedSharding(self.mesh, logical_to_spec(("batch", "length"), (b, t), self.mesh))
        args = [jax.device_put(x, batch_sharding) for x in (tokens, positions, segment_ids)]
        return np.asarray(_logits_fn(self.config, self.mesh)(self.params, *args))

    def for_sampling(self) -> "Model":
        """This model with per-layer weights, the layout the sampler decodes with, holding one copy.

        Converts one weight kind at a time and deletes the stacked array it came
        from, so the peak is the weights plus one kind's layers, never two
        copies; this Model's params are gone afterwards (use the returned one).
        The result samples (``Sampler``) but does not train or score
        (``logits``, ``save``), which want stacked layers.
        """
        layers = self.params["layers"]
        if isinstance(layers, (list, tuple)):
            return self
        leaves, treedef = jax.tree_util.tree_flatten(layers)
        n = leaves[0].shape[0]
        per_layer: list[list] = [[] for _ in range(n)]
        for i, leaf in enumerate(leaves):
            for layer in range(n):
                per_layer[layer].append(leaf[layer])
            leaf.delete()
            leaves[i] = None
        params = {**self.params, "layers": tuple(jax.tree_util.tree_unflatten(treedef, x) for x in per_layer)}
        self.params = None
        return dataclasses.replace(self, params=params)

    def tokenizer(self):
        """The model's tokenizer (``mathjax.data.tokenizer.Tokenizer``), local or remote (``gs://``)."""
        from mathjax.train.checkpoint import load_tokenizer_from

        if not self.tokenizer_path:
            raise ValueError(f"{self.path}: no tokenizer files found; pass a tokenizer path explicitly")
        return load_tokenizer_from(self.tokenizer_path)

    def save(self, path: str) -> str:
        """Writes a mathjax checkpoint (orbax params + config + tokenizer files)."""
        from mathjax.model.checkpoint import save_checkpoint

        return save_checkpoint(path, self.config, self.params, self.tokenizer_path)

    def save_hf(self, path: str, dtype: str = "float32", max_shard_bytes: int = 5 * 1024**3) -> str:
        """Writes a Hugging Face model dir (safetensors, config, generation config, tokenizer)."""
        from mathjax.convert.hf import save_hf

        return save_hf(path, self.config, self.params, dtype, self.tokenizer_path, max_shard_bytes)


@functools.lru_cache(maxsize=16)
def _logits_fn(config: ModelConfig, mesh: Mesh):
    def fn(params, tokens, positions, segment_ids):
        with activate(mesh):
            logits, _ = llama.forward(config, params, tokens, positions, attn_lib.SegmentContext(segment_ids))
        return logits

    return jax.jit(fn)


def _resolve_mesh(mesh) -> Mesh:
    if mesh is None:
        return make_mesh("data:1,fsdp:1,tensor:1", devices=jax.devices()[:1])
    return make_mesh(mesh)


def load(path: str, dtype: str = "float32", mesh: str | Mesh | None = None, **config_overrides) -> Model:
    """Loads a model for inference or further training.

    Args:
      path: a Hugging Face model dir (``config.json`` + safetensors), a mathjax
        checkpoint dir (``mathjax_config.json`` + ``params/``), or a training
        workdir (its latest checkpoint).
      dtype: parameter and compute dtype (``float32``, ``bfloat16``, ``float16``).
      mesh: None (one device), a spec such as ``"data:1,fsdp:4,tensor:2"``, or a Mesh.
      config_overrides: ModelConfig fields to change (e.g. ``remat_policy``).
    """
    from mathjax.convert.hf import has_tokenizer, load_hf_params
    from mathjax.model.checkpoint import is_mathjax_checkpoint, load_checkpoint, read_config
    from mathjax.model.config import read_hf_config

    from mathjax.io import paths  # HF dirs and mathjax checkpoints may be remote (gs://)

    if not paths.isdir(path):
        raise FileNotFoundError(f"{path}: not a directory")
    mesh = _resolve_mesh(mesh)
    overrides = {"dtype": dtype, "param_dtype": dtype, **config_overrides}
    tokenizer_path = path if has_tokenizer(path) else None
    if is_mathjax_checkpoint(path):
        config = read_config(path).replace(**overrides)
        config, params = load_checkpoint(path, mesh, dtype=dtype, config=config)
    elif paths.isfile(paths.join(path, "config.json")):
        config = read_hf_config(path).replace(**overrides)
        config, params = load_hf_params(path, config, mesh, dtype=dtype)
    elif paths.isdir(paths.join(path, "checkpoints")):
        from mathjax.train.checkpoint import load_workdir_params

        config, params, tokenizer_path = load_workdir_params(path, mesh, dtype=dtype, **config_overrides)
    else:
        raise ValueError(
            f"{path}: not a model dir (expected config.json + *.safetensors, "
            f"mathjax_config.json + params/, or a training workdir with checkpoints/)"
        )
    return Model(config=config, params=params, mesh=mesh, path=path, tokenizer_path=tokenizer_path)


def from_random(config: ModelConfig, mesh=None, seed: int = 0) -> Model:
    """A randomly initialised model (tests, benchmarks, training from scratch)."""
    from mathjax.model.partition import init_sharded_params

    mesh = _resolve_mesh(mesh)
    return Model(config=config, params=init_sharded_params(config, mesh, jax.random.key(seed)), mesh=mesh)
