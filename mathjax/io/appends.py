"""Appending on object stores, which cannot append: records batched into atomic appends.

gcsfs opens ``"a"`` as *overwrite* (with a warning), and GCS objects are
immutable; a file that grows record by record (metrics, sampler and
synthesis outputs) goes through :class:`AppendFile` instead: appended,
flushed and fsynced per record locally, batched and appended atomically
(GCS compose; a rewrite on other stores) remotely. :func:`local_mirror`
serves writers that can only append to local files.

Imports no JAX.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator

from mathjax.io import paths

# How often AppendFile uploads to object stores (metrics, sampler output); a
# killed process loses at most this much. MATHJAX_REMOTE_APPEND_SECONDS=0
# uploads every record (one compose each).
REMOTE_APPEND_SECONDS = float(os.environ.get("MATHJAX_REMOTE_APPEND_SECONDS", "30"))


class AppendFile:
    """An append-only UTF-8 text file: ``write`` text, ``commit()`` after each complete record.

    Local files: appended, flushed and fsynced at every commit (as before).
    Object stores: committed text is buffered and appended at most every
    ``interval`` seconds, on ``sync()`` and on ``close()``, as one atomic
    compose (GCS) or rewrite, so a reader never sees half a record and a
    killed process loses at most ``interval`` seconds of records.
    """

    def __init__(self, path: paths.PathLike, interval: float | None = None):
        self.path = os.fspath(path)
        self.remote = paths.is_remote(self.path)
        self.interval = REMOTE_APPEND_SECONDS if interval is None else interval
        self._pending: list[str] = []  # committed, not yet uploaded
        self._open: list[str] = []  # written since the last commit
        self._last = time.monotonic()
        self._file = None if self.remote else open(self.path, "a", encoding="utf-8")

    def write(self, text: str) -> None:
        if self._file is not None:
            self._file.write(text)
        else:
            self._open.append(text)

    def commit(self) -> None:
        """Marks what was written as complete; durable now (local) or within ``interval`` (remote)."""
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            return
        self._pending += self._open
        self._open = []
        if time.monotonic() - self._last >= self.interval:
            self.sync()

    def sync(self) -> None:
        """Makes every committed record durable now."""
        if self._file is not None:
            self.commit()
            return
        self._last = time.monotonic()
        if not self._pending:
            return
        data = "".join(self._pending).encode("utf-8")
        _append_remote(self.path, data)
        self._pending = []

    def close(self) -> None:
        """Commits and syncs what was written, then closes."""
        if self._file is not None:
            self.commit()
            self._file.close()
            self._file = None
            return
        self._pending += self._open
        self._open = []
        self.sync()

    def __enter__(self) -> AppendFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _append_remote(path: str, data: bytes) -> None:
    """Appends ``data`` to an object: GCS compose of (object, new part), else a rewrite."""
    if not paths.exists(path):
        paths.write_bytes(path, data)
        return
    fs = paths.gcs_filesystem(path)
    if fs is None:
        paths.write_bytes(path, paths.read_bytes(path) + data)
        return
    part = f"{path}.append-{uuid.uuid4().hex}"
    paths.write_bytes(part, data)
    try:
        fs.merge(path, [path, part])  # GCS compose: the destination may be a source
    finally:
        paths.remove(part, missing_ok=True)


@contextlib.contextmanager
def local_mirror(files: list[str]) -> Iterator[list[str]]:
    """Local working copies of ``files``, for writers that can only append to local files.

    Local files are their own copies. Remote ones are downloaded (when they
    exist) into a temporary dir and uploaded back when the block ends, also
    when it raises; ``paths.copy_file`` from the copy uploads one sooner. A
    killed process loses what was appended since the last upload.
    """
    if not any(paths.is_remote(f) for f in files):
        yield list(files)
        return
    tmp = tempfile.mkdtemp(prefix="mathjax-mirror-")
    local = [os.path.join(tmp, str(i), paths.basename(f)) if paths.is_remote(f) else f for i, f in enumerate(files)]
    try:
        for f, copy in zip(files, local):
            if copy != f:
                os.makedirs(os.path.dirname(copy))
                if paths.exists(f):
                    paths.copy_file(f, copy)
        yield local
    finally:
        try:
            for f, copy in zip(files, local):
                if copy != f and os.path.exists(copy):
                    paths.copy_file(copy, f)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
