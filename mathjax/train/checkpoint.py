"""Training workdirs: orbax train-state checkpoints plus the files that make a workdir self-describing.

Layout of a workdir::

    train_config.json      the resolved training config (ml_collections, as JSON)
    mathjax_config.json    the ModelConfig (``ModelConfig.to_json``)
    tokenizer/             a copy of the tokenizer files
    checkpoints/<step>/    orbax items: params, opt_state, meta (step, rng), data (position)
    metrics.jsonl, tb/     see mathjax.train.metrics

Params are their own item, so :func:`load_workdir_params` (what ``mathjax.load``
calls for a workdir) reads them without touching the optimizer state.
Orbax writes each step into a temporary directory and renames it when
complete, so a run killed at any moment resumes from the last complete step.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from typing import Any

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp
from jax.sharding import Mesh

from mathjax.model.config import ModelConfig
from mathjax.model.partition import abstract_sharded_params
from mathjax.train.state import TrainState

MODEL_CONFIG_FILE = "mathjax_config.json"
TRAIN_CONFIG_FILE = "train_config.json"
TOKENIZER_DIR = "tokenizer"
CHECKPOINT_DIR = "checkpoints"
_ITEMS = ("params", "opt_state", "meta", "data")


class CheckpointManager:
    """Orbax ``CheckpointManager`` for train states: async saves, keep-last-K, latest-step resume."""

    def __init__(self, workdir: str, keep: int = 3, async_save: bool = True):
        self.directory = os.path.join(os.path.abspath(workdir), CHECKPOINT_DIR)
        options = ocp.CheckpointManagerOptions(
            max_to_keep=keep if keep and keep > 0 else None,
            enable_async_checkpointing=async_save,
            cleanup_tmp_directories=True,  # leftovers of a run killed mid-save
            create=True,
        )
        self._manager = ocp.CheckpointManager(self.directory, options=options, item_names=_ITEMS)

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def all_steps(self) -> list[int]:
        return list(self._manager.all_steps())

    def save(self, step: int, state: TrainState, data_state: dict) -> bool:
        """Starts saving (returns once the state is copied off the devices; writing continues async)."""
        items = state.as_items()
        args = ocp.args.Composite(
            params=ocp.args.StandardSave(items["params"]),
            opt_state=ocp.args.StandardSave(items["opt_state"]),
            meta=ocp.args.StandardSave(items["meta"]),
            data=ocp.args.JsonSave(data_state),
        )
        return self._manager.save(step, args=args, force=True)

    def restore(self, step: int, target: TrainState) -> tuple[TrainState, dict]:
        """Restores into ``target``'s shapes, dtypes and shardings (ShapeDtypeStructs)."""
        items = target.as_items()
        restored = self._manager.restore(step, args=ocp.args.Composite(
            params=ocp.args.StandardRestore(items["params"]),
            opt_state=ocp.args.StandardRestore(items["opt_state"]),
            meta=ocp.args.StandardRestore(items["meta"]),
            data=ocp.args.JsonRestore(),
        ))
        return TrainState.from_items(dict(restored)), dict(restored["data"])

    def restore_params(self, step: int, target: Any) -> Any:
        return self._manager.restore(step, args=ocp.args.Composite(params=ocp.args.StandardRestore(target)))["params"]

    def reached_preemption(self, step: int) -> bool:
        """True on every process at the agreed step after a preemption notice (multi-process runs)."""
        return self._manager.reached_preemption(step)

    def wait_until_finished(self) -> None:
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.close()


# ---------------------------------------------------------------------------
# Workdir metadata.


def write_workdir_metadata(workdir: str, model_config: ModelConfig, tokenizer_source: str | None,
                           train_config: dict | None = None) -> None:
    """Writes the model config, tokenizer copy and resolved train config (process 0 only)."""
    if jax.process_index() != 0:
        return
    os.makedirs(workdir, exist_ok=True)
    _write_atomic(os.path.join(workdir, MODEL_CONFIG_FILE), model_config.to_json())
    if train_config is not None:
        _write_atomic(os.path.join(workdir, TRAIN_CONFIG_FILE), json.dumps(train_config, indent=2, sort_keys=True))
    if tokenizer_source:
        copy_tokenizer_files(tokenizer_source, os.path.join(workdir, TOKENIZER_DIR))


def copy_tokenizer_files(source: str, dest: str) -> None:
    """Copies a tokenizer (HF dir, or a SentencePiece ``.model`` file kept as is) into ``dest``."""
    from mathjax.convert.hf import TOKENIZER_FILES

    if os.path.abspath(source).startswith(os.path.abspath(dest)):
        return  # resuming from the workdir's own copy
    tmp = dest + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    if os.path.isfile(source):
        shutil.copy2(source, os.path.join(tmp, "tokenizer.model"))
    elif os.path.isdir(source):
        found = [f for f in TOKENIZER_FILES if os.path.exists(os.path.join(source, f))]
        if not found:
            raise FileNotFoundError(f"{source}: no tokenizer files ({', '.join(TOKENIZER_FILES)})")
        for name in found:
            shutil.copy2(os.path.join(source, name), os.path.join(tmp, name))
    else:
        raise FileNotFoundError(f"{source}: tokenizer not found")
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)


def workdir_tokenizer_path(workdir: str) -> str | None:
    """The workdir's tokenizer: its dir, or its bare ``tokenizer.model`` when no HF files came with it."""
    path = os.path.join(workdir, TOKENIZER_DIR)
    if not os.path.isdir(path):
        return None
    if any(os.path.exists(os.path.join(path, f)) for f in ("tokenizer.json", "tokenizer_config.json")):
        return path
    model = os.path.join(path, "tokenizer.model")
    return model if os.path.exists(model) else None


def read_model_config(workdir: str) -> ModelConfig:
    path = os.path.join(workdir, MODEL_CONFIG_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: not found (not a mathjax training workdir?)")
    with open(path) as f:
        return ModelConfig.from_json(f.read(), source=path)


def read_train_config(workdir: str) -> dict | None:
    path = os.path.join(workdir, TRAIN_CONFIG_FILE)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def is_workdir(path: str) -> bool:
    """True for a training workdir (model config + checkpoints dir)."""
    return os.path.isfile(os.path.join(path, MODEL_CONFIG_FILE)) and os.path.isdir(os.path.join(path, CHECKPOINT_DIR))


def load_workdir_params(workdir: str, mesh: Mesh, dtype=None, step: int | None = None, **config_overrides):
    """Params of a training workdir's latest (or given) checkpoint, restored straight into shards.

    Returns ``(ModelConfig, params, tokenizer_path or None)``.

    Args:
      workdir: a directory written by :func:`mathjax.train.trainer.train`.
      mesh: target mesh.
      dtype: parameter dtype to restore into (cast while reading); also the
        config's ``param_dtype`` and, unless overridden, its compute ``dtype``.
        None keeps the stored (float32) params and the stored config.
      step: a checkpoint step; default the latest complete one.
      config_overrides: ModelConfig fields to change (``remat_policy``, ...).
    """
    stored = read_model_config(workdir)
    if dtype is not None:
        config_overrides = {"dtype": jnp.dtype(dtype).name, **config_overrides, "param_dtype": jnp.dtype(dtype).name}
    config = stored.replace(**config_overrides)
    manager = CheckpointManager(workdir, keep=0, async_save=False)
    try:
        step = manager.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"{workdir}/{CHECKPOINT_DIR}: no complete checkpoint")
        target = abstract_sharded_params(stored, mesh, dtype=jnp.dtype(config.param_dtype))
        params = manager.restore_params(step, target)
    finally:
        manager.close()
    logging.info("loaded params of %s step %d", workdir, step)
    return config, params, workdir_tokenizer_path(workdir)


def _write_atomic(path: str, text: str) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)
