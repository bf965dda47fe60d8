"""One path layer for local paths and object-store URIs (``gs://bucket/run``, ``s3://...``).

Everything that reads or writes a user path goes through here: training
workdirs (config, metrics, tokenizer copy), ``init_from``, tokenizers, data
files, exports, and the sampler's and synthesis outputs, so a ``gs://``
workdir behaves like a local one. Checkpoint arrays go through orbax, which
takes the same strings.

Backends: local paths use ``os`` and builtin ``open`` exactly as before
(fsync, ``os.replace``). URIs use :mod:`etils.epath`, the layer orbax uses;
for ``gs://`` it picks fsspec's ``gcsfs`` (or TensorFlow's gfile when
TensorFlow is installed, unless ``EPATH_USE_TF=false``).

Where object stores differ from a file system, and what this module does:

* No rename: an object appears whole when its upload finishes, so
  :func:`write_bytes` / :func:`write_text` upload directly instead of
  writing a temporary file. Directories are filled in place; callers write
  the file that marks a directory complete (a config) last.
* No append (gcsfs silently *overwrites* in mode ``"a"``): see
  :mod:`mathjax.io.appends`.
* No truncate: :func:`truncate` rewrites the kept prefix.
* gcsfs caches directory listings forever per process, which hides what other
  processes and hosts of the same run wrote: the cache is turned off for
  ``gs://`` here (a ``gcs`` fsspec config set by the user wins).
* Libraries that need local files (SentencePiece, HF tokenizers, memory-mapped
  safetensors) get one through :func:`local_copy`.

Against a GCS emulator: ``STORAGE_EMULATOR_HOST=http://host:port``,
``FSSPEC_GCS_TOKEN=anon``, ``GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false`` (gcsfs),
and for tensorstore (orbax's arrays) ``TENSORSTORE_GCS_HTTP_URL`` and
``GOOGLE_AUTH_TOKEN_FOR_TESTING`` (see tests/test_gcs_paths.py).

Imports no JAX.
"""

from __future__ import annotations

import contextlib
import io
import os
import posixpath
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from typing import IO, Any

PathLike = str | os.PathLike

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_SCHEMES = ("gs", "s3", "az", "hf")  # the URIs etils.epath understands
_CHUNK = 8 * 1024 * 1024


def _configure_fsspec() -> None:
    """Fresh listings for gs:// (several writers per run); set before any gcsfs instance exists."""
    try:
        import fsspec.config
    except ImportError:  # pragma: no cover - fsspec comes with orbax's etils[epath]
        return
    for proto in ("gs", "gcs"):
        fsspec.config.conf.setdefault(proto, {}).setdefault("use_listings_cache", False)


_configure_fsspec()


# ---------------------------------------------------------------------------
# Names.


def is_remote(path: PathLike) -> bool:
    """True for a URI such as ``gs://bucket/x`` (anything with a ``scheme://`` prefix)."""
    return bool(_URI.match(os.fspath(path)))


def normalize(path: PathLike) -> str:
    """Absolute local path (``~`` expanded), or the URI without a trailing slash."""
    path = os.fspath(path)
    if not path:
        raise ValueError("empty path")
    if is_remote(path):
        scheme, rest = _check_scheme(path).split("://", 1)
        return f"{scheme}://{rest.rstrip('/')}"
    return os.path.abspath(os.path.expanduser(path))


def join(base: PathLike, *parts: str) -> str:
    """``base/part/...`` with ``/`` for URIs and the OS separator for local paths."""
    base = os.fspath(base)
    if is_remote(base):
        return posixpath.join(base, *parts)
    return os.path.join(base, *parts)


def basename(path: PathLike) -> str:
    """The last component (of a URI: ignoring a trailing slash)."""
    path = os.fspath(path)
    return posixpath.basename(path.rstrip("/")) if is_remote(path) else os.path.basename(path)


def dirname(path: PathLike) -> str:
    """The parent; a bucket root (``gs://bucket``) is its own parent."""
    path = os.fspath(path)
    if not is_remote(path):
        return os.path.dirname(path)
    scheme, rest = path.rstrip("/").split("://", 1)
    if "/" not in rest:
        return path
    return f"{scheme}://{rest.rsplit('/', 1)[0]}"


def splitext(path: PathLike) -> tuple[str, str]:
    path = os.fspath(path)
    return posixpath.splitext(path) if is_remote(path) else os.path.splitext(path)


def is_within(path: PathLike, directory: PathLike) -> bool:
    """True when ``path`` is ``directory`` or inside it (by name; nothing is resolved remotely)."""
    path, directory = normalize(path), normalize(directory)
    sep = "/" if is_remote(directory) else os.sep
    return path == directory or path.startswith(directory.rstrip(sep) + sep)


def _check_scheme(path: str) -> str:
    """``path``, or ValueError for a scheme epath does not know (it would write ``./scheme:/...`` locally)."""
    scheme = path.split("://", 1)[0]
    if scheme not in _SCHEMES:
        raise ValueError(f"{path}: unsupported storage scheme {scheme}:// "
                         f"(supported: {', '.join(s + '://' for s in _SCHEMES)})")
    return path


def _epath(path: PathLike):
    from etils import epath

    return epath.Path(_check_scheme(os.fspath(path)))


# ---------------------------------------------------------------------------
# Queries.


def exists(path: PathLike) -> bool:
    return _epath(path).exists() if is_remote(path) else os.path.exists(path)


def isdir(path: PathLike) -> bool:
    """A directory, or on object stores a prefix with objects under it."""
    return _epath(path).is_dir() if is_remote(path) else os.path.isdir(path)


def isfile(path: PathLike) -> bool:
    if not is_remote(path):
        return os.path.isfile(path)
    p = _epath(path)
    return p.exists() and not p.is_dir()


def listdir(path: PathLike) -> list[str]:
    """Entry names (not paths), sorted; FileNotFoundError naming the path when it does not exist."""
    if not is_remote(path):
        return sorted(os.listdir(path))
    p = _epath(path)
    if not p.is_dir():
        raise FileNotFoundError(f"{path}: no such directory")
    return sorted(child.name for child in p.iterdir())


def getsize(path: PathLike) -> int:
    return int(_epath(path).stat().length) if is_remote(path) else os.path.getsize(path)


# ---------------------------------------------------------------------------
# Changes.


def makedirs(path: PathLike) -> None:
    """``mkdir -p`` locally; nothing on object stores, which have no directories to create."""
    if not is_remote(path):
        os.makedirs(path, exist_ok=True)


def remove(path: PathLike, missing_ok: bool = False) -> None:
    if is_remote(path):
        _epath(path).unlink(missing_ok=missing_ok)
    elif not (missing_ok and not os.path.lexists(path)):
        os.remove(path)


def rmtree(path: PathLike) -> None:
    """Removes a directory tree if it exists."""
    if is_remote(path):
        p = _epath(path)
        if p.is_dir():
            p.rmtree(missing_ok=True)
        elif p.exists():
            p.unlink()
    else:
        shutil.rmtree(path, ignore_errors=True)


def open_file(path: PathLike, mode: str = "r", encoding: str = "utf-8") -> IO[Any]:
    """``open`` for local paths and URIs. Text modes are UTF-8.

    Object stores take ``r``/``w`` (and ``rb``/``wb``) only; appending is
    :class:`AppendFile`'s job, since gcsfs would silently overwrite.
    """
    if not is_remote(path):
        return open(path, mode) if "b" in mode else open(path, mode, encoding=encoding)
    if mode.replace("b", "") not in ("r", "w"):
        raise ValueError(f"{path}: mode {mode!r} is not supported on object stores (use AppendFile to append)")
    raw = _epath(path).open(mode if "b" in mode else mode + "b")
    return raw if "b" in mode else io.TextIOWrapper(raw, encoding=encoding, newline="")


def read_bytes(path: PathLike) -> bytes:
    with open_file(path, "rb") as f:
        return f.read()


def read_text(path: PathLike) -> str:
    return read_bytes(path).decode("utf-8")


def write_bytes(path: PathLike, data: bytes) -> None:
    """Writes a whole file atomically: temp file + fsync + rename locally, one upload remotely."""
    if is_remote(path):
        with _epath(path).open("wb") as f:
            f.write(data)
        return
    path = os.fspath(path)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text(path: PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def replace(src: PathLike, dst: PathLike) -> None:
    """Renames a file over ``dst`` (object stores: a server-side copy, then the source is deleted)."""
    src, dst = os.fspath(src), os.fspath(dst)
    if not is_remote(src) and not is_remote(dst):
        os.replace(src, dst)
        return
    fs = gcs_filesystem(src) if src.split("://", 1)[0] == dst.split("://", 1)[0] else None
    if fs is None:
        _epath(src).replace(dst)
        return
    # Not fs.mv: gcsfs tries the newer objects.moveTo call first, and where that is
    # missing (emulators) backs off for half a minute before copying anyway.
    fs.copy(src, dst)
    fs.rm(src)


@contextlib.contextmanager
def atomic_writer(path: PathLike, mode: str = "w") -> Iterator[IO[Any]]:
    """A file handle whose contents appear at ``path`` complete or not at all.

    Streams into a temporary sibling (fsynced locally), renamed over ``path``
    when the block ends without an error and removed otherwise. (A plain
    remote upload would publish a half-written object when the block raises,
    since closing the handle finalises the upload.)
    """
    path = os.fspath(path)
    tmp = f"{path}.tmp-{uuid.uuid4().hex[:12]}" if is_remote(path) else f"{path}.tmp{os.getpid()}"
    done = False
    try:
        with open_file(tmp, mode) as f:
            yield f
            if not is_remote(path):
                f.flush()
                os.fsync(f.fileno())
        replace(tmp, path)
        done = True
    finally:
        if not done:
            remove(tmp, missing_ok=True)


def truncate(path: PathLike, size: int) -> None:
    """Cuts a file to its first ``size`` bytes (object stores: rewrites the kept prefix)."""
    if is_remote(path):
        write_bytes(path, read_bytes(path)[:size])
    else:
        with open(path, "r+b") as f:
            f.truncate(size)


def copy_file(src: PathLike, dst: PathLike) -> None:
    """Copies one file between any two locations (local/local keeps metadata, as shutil.copy2)."""
    if not is_remote(src) and not is_remote(dst):
        shutil.copy2(src, dst)
        return
    with open_file(src, "rb") as fin, open_file(dst, "wb") as fout:
        shutil.copyfileobj(fin, fout, _CHUNK)


def walk_files(root: PathLike) -> list[str]:
    """Paths of the files under ``root``, relative to it, with ``/`` separators, sorted."""
    root = os.fspath(root)
    out = []
    if is_remote(root):
        # fsspec walks yield "bucket/dir" roots (scheme dropped), whatever the input looked like.
        key = normalize(root).split("://", 1)[1]
        for directory, _, files in _epath(root).walk():
            rel = os.fspath(directory).split("://", 1)[-1].strip("/")
            if not (rel == key or rel.startswith(key + "/")):
                raise RuntimeError(f"{root}: walk returned {directory}, outside it")
            rel = rel[len(key):].strip("/")
            out += [posixpath.join(rel, f) if rel else f for f in files]
    else:
        for directory, _, files in os.walk(root):
            rel = os.path.relpath(directory, root)
            out += [f if rel == "." else posixpath.join(rel.replace(os.sep, "/"), f) for f in files]
    return sorted(out)


def copy_tree(src: PathLike, dst: PathLike, names: list[str] | None = None) -> list[str]:
    """Copies ``names`` (relative paths; default every file under ``src``) into ``dst``; returns them."""
    names = walk_files(src) if names is None else list(names)
    for name in names:
        target = join(dst, *name.split("/"))
        makedirs(dirname(target))
        copy_file(join(src, *name.split("/")), target)
    return names


@contextlib.contextmanager
def local_copy(path: PathLike) -> Iterator[str]:
    """A local file system path with the contents of ``path`` (itself when already local).

    A remote file or directory is downloaded into a temporary directory,
    removed when the block ends; the yielded path keeps the original base
    name (``.../tokenizer.model``), which loaders use to tell formats apart.
    """
    path = os.fspath(path)
    if not is_remote(path):
        yield path
        return
    p = _epath(path)
    if not p.exists():
        raise FileNotFoundError(f"{path}: not found")
    tmp = tempfile.mkdtemp(prefix="mathjax-copy-")
    try:
        target = os.path.join(tmp, basename(path) or "data")
        if p.is_dir():
            copy_tree(path, target)
            os.makedirs(target, exist_ok=True)  # an empty prefix still yields a directory
        else:
            copy_file(path, target)
        yield target
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------
# Object-store helpers.


def gcs_filesystem(path: str):
    """gcsfs's filesystem for a ``gs://`` path (for server-side copy and compose), else None."""
    if not path.startswith("gs://"):
        return None
    import fsspec

    fs, _ = fsspec.core.url_to_fs(path)
    return fs if hasattr(fs, "merge") else None
