"""A cache of each process's tokenized records, keyed by content, so restarts skip tokenization.

``sft.build_batches(..., cache_dir=...)`` looks for ``<cache_dir>/tokens-<key>.npz``
before tokenizing; the trainer passes ``workdir/data_cache``, so a preempted run
restarts without re-tokenizing. The key is a SHA-256 over everything the
tokenized store depends on:

* the data: the SHA-256 of every data file's bytes, in order (a Hugging Face
  hub or saved dataset: its ``datasets`` fingerprint). Full content, not size
  + mtime + the first and last MB: an edit in the middle that keeps the size
  (``17`` -> ``18``) under a preserved mtime (``cp -p``, ``rsync -t``, a
  restored backup) would keep a stale cache, and hashing runs at ~1.4 GB/s
  (SHA extensions), ~30 ms for 100K records, next to seconds of tokenizing;
* the tokenizer (``Tokenizer.fingerprint()``: its model file or its backend
  JSON) and the versions of the tokenizer libraries;
* the template (name, prompt, stops), the fields and answer conversion,
  ``seq_len``, ``truncate``, ``skip_bad_lines``, ``add_bos``;
* the records this process tokenizes and the ones it counts in the stats (its
  slots' record ids: a function of the seed, the batch size and the mesh);
* ``CACHE_VERSION``, bumped whenever the tokenization code changes its output.

A tokenizer without a fingerprint, or a source that cannot be fingerprinted,
turns the cache off (logged) rather than risk a stale hit.

Files are written to a temporary name and renamed, so a reader never sees a
partial file; a file that is still bad (truncated by a full disk, bit rot, a
foreign writer) fails the zip CRC or the consistency checks, is logged and is
rebuilt. A failed write only logs: the cache is an optimisation. Nothing is
ever deleted (train and eval stores share a directory and are both live).

All file access goes through :func:`_path`, which uses ``etils.epath`` when it
is installed (so ``gs://`` cache dirs and data files work once a filesystem
backend is there) and ``pathlib`` otherwise; the project's path layer can
replace the four helpers below it (``_is_file``, ``file_digest``, ``_read_npz``,
``_write_npz_atomic``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import json
import logging
import os
import time
import uuid
from collections.abc import Sequence

import numpy as np

from mathjax.data import sources
from mathjax.data.templates import Template
from mathjax.data.tokenize import DataStats, TokenStore
from mathjax.io import paths

# Bump when tokenize.py (or a template's formatting) changes the ids or masks
# it produces for the same inputs: old caches then miss instead of being reused.
CACHE_VERSION = 1
_HASH_CHUNK = 8 << 20
_LIBRARIES = ("sentencepiece", "tokenizers", "transformers")


# ---------------------------------------------------------------------------
# File I/O (one place to swap in another filesystem).


def _path(path: str | os.PathLike):
    """``etils.epath.Path`` if available (local and ``gs://``), else ``pathlib.Path``."""
    try:
        from etils import epath
    except ImportError:
        import pathlib

        return pathlib.Path(path)
    return epath.Path(path)


def _is_file(path: str | os.PathLike) -> bool:
    try:
        return _path(path).is_file()
    except Exception:  # noqa: BLE001 - an unreachable filesystem: not a file we can fingerprint
        return False


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, streamed."""
    h = hashlib.sha256()
    with _path(path).open("rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _read_npz(path) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file, read fully (so the zip CRCs are checked)."""
    with path.open("rb") as f, np.load(f, allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}


def _write_npz_atomic(path, arrays: dict[str, np.ndarray]) -> None:
    """Writes ``arrays`` to a unique temporary file beside ``path``, then renames it onto ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        with tmp.open("wb") as f:
            np.savez(f, **arrays)
        # The shared path layer: on object stores a server-side copy (epath's rename goes
        # through gcsfs's moveTo, which emulators lack and retry for half a minute).
        paths.replace(os.fspath(tmp), os.fspath(path))
    except BaseException:
        if tmp.exists():
            tmp.unlink()
        raise


# ---------------------------------------------------------------------------
# The key.


def source_fingerprints(files: str | Sequence[str] | None, hf_dataset: str,
                        source: sources.RecordSource) -> list[str] | None:
    """One fingerprint per data part of ``source`` (as ``sources.open_sources`` built it), or None."""
    names = sources.split_paths(files) + ([hf_dataset] if hf_dataset else [])
    leaves = source.sources if isinstance(source, sources.ConcatSource) else [source]
    if len(names) != len(leaves):
        return None
    out = []
    for name, leaf in zip(names, leaves):
        if _is_file(name):
            out.append("sha256:" + file_digest(name))
            continue
        fingerprint = getattr(getattr(leaf, "_ds", None), "_fingerprint", None)
        if not fingerprint:
            return None
        out.append(f"datasets:{name}:{fingerprint}")
    return out


def _library_versions() -> dict[str, str | None]:
    versions = {}
    for name in _LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _digest_ids(ids: Sequence[int] | set[int]) -> str:
    """Digest of a set of record indices (order-free)."""
    values = np.fromiter(ids, np.int64, len(ids)) if isinstance(ids, set) else np.asarray(ids, np.int64)
    return hashlib.sha256(np.sort(values).tobytes()).hexdigest()


def cache_key(data: list[str] | None, tokenizer, template: Template, fields: sources.Preset, *, seq_len: int,
              truncate: bool, skip_bad: bool, add_bos: bool, local: Sequence[int],
              counted: Sequence[int] | set[int]) -> str | None:
    """The content key of one process's tokenized store (module docstring), or None if uncacheable."""
    fingerprint = getattr(tokenizer, "fingerprint", lambda: None)()
    if data is None or fingerprint is None:
        logging.info("token cache off: %s has no fingerprint", "the data" if data is None else "the tokenizer")
        return None
    convert = fields.to_target
    parts = {
        "version": CACHE_VERSION,
        "data": data,
        "tokenizer": fingerprint,
        "libraries": _library_versions(),
        "template": [template.name, template.prompt, list(template.stop)],
        "fields": [fields.name, fields.question_field, fields.answer_field,
                   None if convert is None else f"{convert.__module__}.{convert.__qualname__}"],
        "options": {"seq_len": seq_len, "truncate": truncate, "skip_bad": skip_bad, "add_bos": add_bos},
        "local": _digest_ids(local),
        "counted": _digest_ids(counted),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def cache_path(cache_dir: str | os.PathLike, key: str):
    return _path(cache_dir) / f"tokens-{key[:40]}.npz"


# ---------------------------------------------------------------------------
# Load and save.


def load(cache_dir: str | os.PathLike, key: str) -> tuple[TokenStore, DataStats] | None:
    """The cached ``(store, stats)`` for ``key``; None if absent or unusable (then logged)."""
    path = cache_path(cache_dir, key)
    start = time.perf_counter()
    try:
        if not path.exists():
            return None
        arrays = _read_npz(path)
        if str(arrays["key"]) != key or int(arrays["version"]) != CACHE_VERSION:
            raise ValueError("key mismatch")
        store = TokenStore.from_arrays(arrays["tokens"], arrays["offsets"], arrays["prompt_lens"], arrays["index"])
        values = json.loads(str(arrays["stats"]))
        if set(values) != {f.name for f in dataclasses.fields(DataStats)}:
            raise ValueError("stats fields differ")
        stats = DataStats(**{k: int(v) for k, v in values.items()})
    except Exception as e:  # noqa: BLE001 - any unreadable file is rebuilt, never fatal
        logging.warning("token cache %s is unusable (%s: %s); tokenizing again", path, type(e).__name__, e)
        return None
    logging.info("token cache hit: %s (%d examples, %.2fs)", path, len(store), time.perf_counter() - start)
    return store, stats


def save(cache_dir: str | os.PathLike, key: str, store: TokenStore, stats: DataStats) -> bool:
    """Writes ``(store, stats)`` under ``key``; returns False (and logs) if that failed."""
    path = cache_path(cache_dir, key)
    # uint16 halves the file for vocabularies up to 65536 (LLaMA-2, Mistral, ours).
    small = len(store.tokens) == 0 or int(store.tokens.max()) < 1 << 16
    arrays = {
        "key": np.asarray(key),
        "version": np.asarray(CACHE_VERSION, np.int64),
        "tokens": store.tokens.astype(np.uint16 if small else np.int32),
        "offsets": store.offsets,
        "prompt_lens": store.prompt_lens,
        "index": store.index,
        "stats": np.asarray(json.dumps(stats.as_dict())),
    }
    try:
        _write_npz_atomic(path, arrays)
    except Exception as e:  # noqa: BLE001 - a cache that cannot be written must not stop training
        logging.warning("could not write token cache %s (%s: %s)", path, type(e).__name__, e)
        return False
    logging.info("token cache written: %s (%d examples)", path, len(store))
    return True
