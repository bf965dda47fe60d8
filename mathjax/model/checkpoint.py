"""The mathjax model checkpoint: ``mathjax_config.json`` + orbax ``params/`` (+ tokenizer files).

This is what the HF importer writes and what ``mathjax.load`` reads back
sharded. (Training workdirs keep full train state under ``checkpoints/``; see
:mod:`mathjax.train.checkpoint`.) The path may be local or a URI such as
``gs://bucket/model`` (:mod:`mathjax.io.paths`; orbax takes the same strings).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils
from jax.sharding import Mesh

from mathjax.io import paths
from mathjax.model import llama
from mathjax.model.config import ModelConfig
from mathjax.model.partition import abstract_sharded_params

CONFIG_FILE = "mathjax_config.json"
PARAMS_DIR = "params"


def is_mathjax_checkpoint(path: str) -> bool:
    return paths.isfile(paths.join(path, CONFIG_FILE)) and paths.isdir(paths.join(path, PARAMS_DIR))


def read_config(path: str) -> ModelConfig:
    config_path = paths.join(path, CONFIG_FILE)
    if not paths.exists(config_path):
        raise FileNotFoundError(f"{config_path}: not found (not a mathjax checkpoint?)")
    return ModelConfig.from_json(paths.read_text(config_path), source=config_path)


def _barrier(name: str) -> None:
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(name)


def save_checkpoint(path: str, config: ModelConfig, params: llama.Params, tokenizer_source: str | None = None) -> str:
    """Writes a mathjax checkpoint; all processes must call. Returns the (normalised) path.

    Local: everything goes into a temporary sibling dir that is renamed into
    place, so a killed save leaves no half checkpoint. Object stores cannot
    rename a directory: the old checkpoint is removed, orbax writes
    ``params/`` (it marks its own completion), then the tokenizer, and
    ``mathjax_config.json`` last, without which :func:`is_mathjax_checkpoint`
    is False.
    """
    path = paths.normalize(path)
    is_writer = jax.process_index() == 0
    remote = paths.is_remote(path)
    # All processes write their shards into the same dir; its name must agree.
    target = path if remote else paths.join(paths.dirname(path), f".tmp-{paths.basename(path)}")
    if is_writer:
        paths.makedirs(paths.dirname(path))
        paths.rmtree(target)
    _barrier("mathjax_checkpoint_cleared")  # nobody writes shards before the old dir is gone
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(paths.join(target, PARAMS_DIR), params)
    checkpointer.wait_until_finished()
    if is_writer:
        if tokenizer_source:
            from mathjax.convert.hf import copy_tokenizer

            copy_tokenizer(tokenizer_source, target)
        paths.write_text(paths.join(target, CONFIG_FILE), config.to_json())
        if not remote:
            paths.rmtree(path)
            paths.replace(target, path)
    _barrier("mathjax_checkpoint_saved")
    return path


def load_checkpoint(path: str, mesh: Mesh, dtype=None, config: ModelConfig | None = None):
    """Restores ``(config, params)`` straight into shards on ``mesh``."""
    config = config or read_config(path)
    stored = abstract_sharded_params(config, mesh)
    restored = ocp.StandardCheckpointer().restore(paths.join(path, PARAMS_DIR), stored)
    if dtype is not None:
        restored = jax.tree_util.tree_map(lambda a: a.astype(jnp.dtype(dtype)), restored)
    return config, restored
