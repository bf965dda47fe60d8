"""The mathjax model checkpoint: ``mathjax_config.json`` + orbax ``params/`` (+ tokenizer files).

This is what the HF importer writes and what ``mathjax.load`` reads back
sharded. (Training workdirs keep full train state under ``checkpoints/``; see
:mod:`mathjax.train.checkpoint`.)
"""

from __future__ import annotations

import os
import shutil

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp
from jax.sharding import Mesh

from mathjax.model import llama
from mathjax.model.config import ModelConfig
from mathjax.model.partition import abstract_sharded_params

CONFIG_FILE = "mathjax_config.json"
PARAMS_DIR = "params"


def is_mathjax_checkpoint(path: str) -> bool:
    return os.path.isfile(os.path.join(path, CONFIG_FILE)) and os.path.isdir(os.path.join(path, PARAMS_DIR))


def read_config(path: str) -> ModelConfig:
    config_path = os.path.join(path, CONFIG_FILE)
    with open(config_path) as f:
        return ModelConfig.from_json(f.read(), source=config_path)


def save_checkpoint(path: str, config: ModelConfig, params: llama.Params, tokenizer_source: str | None = None) -> str:
    """Writes a mathjax checkpoint atomically (temp dir, then rename). All processes must call."""
    path = os.path.abspath(path)
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    is_writer = jax.process_index() == 0
    # All processes write their shards into the same temp dir; its name must agree.
    tmp = os.path.join(parent, f".tmp-{os.path.basename(path)}")
    if is_writer and os.path.exists(tmp):
        shutil.rmtree(tmp)
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(os.path.join(tmp, PARAMS_DIR), params)
    checkpointer.wait_until_finished()
    if is_writer:
        with open(os.path.join(tmp, CONFIG_FILE), "w") as f:
            f.write(config.to_json())
        if tokenizer_source:
            from mathjax.convert.hf import copy_tokenizer

            copy_tokenizer(tokenizer_source, tmp)
        if os.path.exists(path):
            shutil.rmtree(path)
        os.rename(tmp, path)
    return path


def load_checkpoint(path: str, mesh: Mesh, dtype=None, config: ModelConfig | None = None):
    """Restores ``(config, params)`` straight into shards on ``mesh``."""
    config = config or read_config(path)
    stored = abstract_sharded_params(config, mesh)
    restored = ocp.StandardCheckpointer().restore(os.path.join(path, PARAMS_DIR), stored)
    if dtype is not None:
        restored = jax.tree_util.tree_map(lambda a: a.astype(jnp.dtype(dtype)), restored)
    return config, restored

