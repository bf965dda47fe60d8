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
complete (on GCS: marks it complete with a commit file), so a run killed at
any moment resumes from the last complete step.

A workdir may be a local directory or a URI (``gs://bucket/run``): every path
here goes through :mod:`mathjax.io.paths`, and orbax takes the same strings.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from typing import Any

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp
from jax.sharding import Mesh

from mathjax.io import paths
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
        self.directory = paths.join(paths.normalize(workdir), CHECKPOINT_DIR)
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
    paths.makedirs(workdir)
    paths.write_text(paths.join(workdir, MODEL_CONFIG_FILE), model_config.to_json())
    if train_config is not None:
        paths.write_text(paths.join(workdir, TRAIN_CONFIG_FILE), json.dumps(train_config, indent=2, sort_keys=True))
    if tokenizer_source:
        copy_tokenizer_files(tokenizer_source, paths.join(workdir, TOKENIZER_DIR))


# The files workdir_tokenizer_path looks for to call a copy an HF tokenizer dir:
# copied last to a remote dir, where the copy cannot be renamed into place.
_HF_MARKERS = ("tokenizer.json", "tokenizer_config.json")


def copy_tokenizer_files(source: str, dest: str) -> None:
    """Copies a tokenizer (HF dir, or a SentencePiece ``.model`` file kept as is) into ``dest``.

    Local or remote on either side. A local ``dest`` is swapped in whole
    (temporary dir, then rename); a remote one is refilled in place with the
    files that mark an HF tokenizer last.
    """
    from mathjax.convert.hf import TOKENIZER_FILES

    if paths.is_within(source, dest):
        return  # resuming from the workdir's own copy
    if paths.isfile(source):
        files = {"tokenizer.model": source}
    elif paths.isdir(source):
        files = {f: paths.join(source, f) for f in TOKENIZER_FILES if paths.exists(paths.join(source, f))}
        if not files:
            raise FileNotFoundError(f"{source}: no tokenizer files ({', '.join(TOKENIZER_FILES)})")
    else:
        raise FileNotFoundError(f"{source}: tokenizer not found")
    if paths.is_remote(dest):
        paths.rmtree(dest)
        for name in sorted(files, key=lambda f: f in _HF_MARKERS):
            paths.copy_file(files[name], paths.join(dest, name))
        return
    parent = os.path.dirname(os.path.abspath(dest))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".tokenizer-", dir=parent)
    try:
        for name, src in files.items():
            paths.copy_file(src, os.path.join(tmp, name))
        shutil.rmtree(dest, ignore_errors=True)
        os.replace(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def workdir_tokenizer_path(workdir: str) -> str | None:
    """The workdir's tokenizer: its dir, or its bare ``tokenizer.model`` when no HF files came with it."""
    path = paths.join(workdir, TOKENIZER_DIR)
    if not paths.isdir(path):
        return None
    if any(paths.exists(paths.join(path, f)) for f in _HF_MARKERS):
        return path
    model = paths.join(path, "tokenizer.model")
    return model if paths.exists(model) else None


def read_model_config(workdir: str) -> ModelConfig:
    path = paths.join(workdir, MODEL_CONFIG_FILE)
    if not paths.exists(path):
        raise FileNotFoundError(f"{path}: not found (not a mathjax training workdir?)")
    return ModelConfig.from_json(paths.read_text(path), source=path)


def read_train_config(workdir: str) -> dict | None:
    path = paths.join(workdir, TRAIN_CONFIG_FILE)
    if not paths.exists(path):
        return None
    try:
        return json.loads(paths.read_text(path))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: invalid JSON ({e})") from None


def is_workdir(path: str) -> bool:
    """True for a training workdir (model config + checkpoints dir)."""
    return paths.isfile(paths.join(path, MODEL_CONFIG_FILE)) and paths.isdir(paths.join(path, CHECKPOINT_DIR))


def load_workdir_params(workdir: str, mesh: Mesh, dtype=None, step: int | None = None, **config_overrides):
    """Params of a training workdir's latest (or given) checkpoint, restored straight into shards.

    Returns ``(ModelConfig, params, tokenizer_path or None)``.

    Args:
      workdir: a directory (or URI) written by :func:`mathjax.train.trainer.train`.
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
            raise FileNotFoundError(f"{manager.directory}: no complete checkpoint")
        target = abstract_sharded_params(stored, mesh, dtype=jnp.dtype(config.param_dtype))
        params = manager.restore_params(step, target)
    finally:
        manager.close()
    logging.info("loaded params of %s step %d", workdir, step)
    return config, params, workdir_tokenizer_path(workdir)


# ---------------------------------------------------------------------------
# Tokenizers and initial models from any location.


def load_tokenizer_from(path: str):
    """``load_tokenizer`` for local paths and URIs (a remote file or dir is read from a temporary local copy)."""
    from mathjax.convert.hf import TOKENIZER_FILES
    from mathjax.data.tokenizer import load_tokenizer

    if not paths.is_remote(path):
        return load_tokenizer(path)
    if paths.isfile(path):
        with paths.local_copy(path) as local:
            return load_tokenizer(local)  # SentencePiece and HF tokenizers hold everything in memory once loaded
    if not paths.isdir(path):
        raise FileNotFoundError(f"{path}: tokenizer not found")
    # Only the tokenizer's files (and config.json, which can name the tokenizer class): the
    # dir may be a whole HF model (init_from's), whose weights are not needed here.
    names = [f for f in (*TOKENIZER_FILES, "config.json") if paths.exists(paths.join(path, f))]
    if not set(names) - {"config.json"}:
        raise FileNotFoundError(f"{path}: no tokenizer files ({', '.join(TOKENIZER_FILES)})")
    with tempfile.TemporaryDirectory(prefix="mathjax-tokenizer-") as tmp:
        paths.copy_tree(path, tmp, names)
        return load_tokenizer(tmp)


def load_initial_model(init_from: str, mesh: Mesh, param_dtype: str, numerics: dict[str, Any]):
    """``(ModelConfig, params, tokenizer_path or None)`` of an HF dir, a mathjax checkpoint or a workdir.

    ``numerics`` are the ModelConfig fields the run sets (``dtype``,
    ``param_dtype``, ``remat_policy``, ...). Workdirs and mathjax checkpoints
    are restored by orbax wherever they are; a remote HF dir is read in place
    (each host range-reads the tensors it needs, once), and the returned
    tokenizer path is the remote one.
    """
    from mathjax.model import checkpoint as model_ckpt

    if is_workdir(init_from):
        # `dtype` is load_workdir_params' own argument (the params' dtype); the compute
        # dtype goes in as a config override under the same name, so it is set after.
        overrides = {k: v for k, v in numerics.items() if k not in ("param_dtype", "dtype")}
        config, params, tokenizer_path = load_workdir_params(init_from, mesh, dtype=param_dtype, **overrides)
        if "dtype" in numerics:
            config = config.replace(dtype=numerics["dtype"])
        return config, params, tokenizer_path
    rest = {k: v for k, v in numerics.items() if k not in ("dtype", "param_dtype")}
    if paths.is_remote(init_from) and model_ckpt.is_mathjax_checkpoint(init_from):
        from mathjax.convert.hf import has_tokenizer

        # What mathjax.load does for a local checkpoint: compute dtype = param dtype.
        config = model_ckpt.read_config(init_from).replace(dtype=param_dtype, param_dtype=param_dtype, **rest)
        config, params = model_ckpt.load_checkpoint(init_from, mesh, dtype=param_dtype, config=config)
        return config, params, init_from if has_tokenizer(init_from) else None
    from mathjax.api import load

    # A remote HF dir is read in place: each host range-reads the tensors it needs once
    # (no copy of the checkpoint on every worker's disk).
    model = load(init_from, dtype=param_dtype, mesh=mesh, **rest)
    return model.config, model.params, model.tokenizer_path
