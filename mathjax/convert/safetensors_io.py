"""Lazy safetensors reading and streaming writing with numpy only (no torch).

Our own reader because the format is a JSON header plus raw little-endian
bytes, and memory-mapping it gives per-tensor lazy loads of bf16/fp16/fp32
(via ml_dtypes) without ever holding a whole file in RAM. The writer streams
tensors one at a time into files of bounded size, with the HF index file.
Reading needs local files (memory maps); writing takes local paths or URIs
(``gs://...``, through :mod:`mathjax.io.paths`).
"""

from __future__ import annotations

import json
import os
import struct
from typing import Callable

import ml_dtypes
import numpy as np

from mathjax.io import paths

_DTYPES = {
    "F64": np.dtype(np.float64),
    "F32": np.dtype(np.float32),
    "F16": np.dtype(np.float16),
    "BF16": np.dtype(ml_dtypes.bfloat16),
    "I64": np.dtype(np.int64),
    "I32": np.dtype(np.int32),
    "I16": np.dtype(np.int16),
    "I8": np.dtype(np.int8),
    "U8": np.dtype(np.uint8),
    "BOOL": np.dtype(np.bool_),
}
_NAMES = {v: k for k, v in _DTYPES.items()}


class SafetensorsFile:
    """One safetensors file; ``get(name)`` returns the tensor as a numpy array.

    Local files are memory-mapped (``get`` is a read-only view). Remote files
    (``gs://...``) are read by byte range: the header once, then each tensor's
    own bytes when asked for, so nothing is staged on local disk.
    """

    def __init__(self, path: str):
        self.path = path
        self.remote = paths.is_remote(path)
        self.reads = 0  # tensors read from this file (tests count these)
        try:
            with paths.open_file(path, "rb") as f:
                raw = f.read(8)
                if len(raw) != 8:
                    raise ValueError("file shorter than its 8-byte header length")
                (n,) = struct.unpack("<Q", raw)
                if n > 100_000_000:
                    raise ValueError(f"header length {n} is implausible")
                header = json.loads(f.read(n))
        except (OSError, ValueError) as e:
            raise ValueError(f"{path}: not a valid safetensors file ({e})") from None
        self._data_start = 8 + n
        self.metadata = header.pop("__metadata__", {}) or {}
        self.entries = header
        self._size = paths.getsize(path)
        self._mmap = None
        self._remote_file = None  # one open handle, reused for every tensor's range read
        if not self.remote and self._size > self._data_start:
            self._mmap = np.memmap(path, dtype=np.uint8, mode="r")

    def keys(self) -> list[str]:
        return list(self.entries)

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self.entries[name]["shape"])

    def get(self, name: str) -> np.ndarray:
        if name not in self.entries:
            raise KeyError(f"{self.path}: no tensor named {name!r}")
        entry = self.entries[name]
        dtype = _DTYPES.get(entry["dtype"])
        if dtype is None:
            raise ValueError(f"{self.path}: tensor {name!r} has unsupported dtype {entry['dtype']}")
        start, end = entry["data_offsets"]
        shape = tuple(entry["shape"])
        count = int(np.prod(shape)) if shape else 1
        if end - start != count * dtype.itemsize or self._data_start + end > self._size:
            raise ValueError(f"{self.path}: tensor {name!r} data offsets do not match its shape {shape}")
        self.reads += 1
        if self._mmap is not None:
            buf = self._mmap[self._data_start + start : self._data_start + end]
        else:
            if self._remote_file is None:
                self._remote_file = paths.open_file(self.path, "rb")
            self._remote_file.seek(self._data_start + start)
            buf = np.frombuffer(self._remote_file.read(end - start), np.uint8)
            if buf.size != end - start:
                raise ValueError(f"{self.path}: tensor {name!r} is cut short ({buf.size} of {end - start} bytes)")
        return buf.view(dtype).reshape(shape)


class SafetensorsDir:
    """All ``*.safetensors`` of a Hugging Face model dir, by tensor name (index file honoured)."""

    def __init__(self, model_dir: str):
        # Local or remote (gs://): every access goes through the path layer.
        index_path = paths.join(model_dir, "model.safetensors.index.json")
        self._files: dict[str, SafetensorsFile] = {}
        self.location: dict[str, str] = {}
        if paths.exists(index_path):
            try:
                weight_map = json.loads(paths.read_text(index_path))["weight_map"]
            except (json.JSONDecodeError, KeyError) as e:
                raise ValueError(f"{index_path}: invalid index file ({e})") from None
            for name, fname in weight_map.items():
                self.location[name] = paths.join(model_dir, fname)
            missing = sorted({p for p in self.location.values() if not paths.exists(p)})
            if missing:
                raise FileNotFoundError(f"{missing[0]}: listed in {index_path} but missing")
        else:
            listing = paths.listdir(model_dir)
            files = sorted(f for f in listing if f.endswith(".safetensors"))
            if not files:
                has_bin = any(f.endswith(".bin") or f.endswith(".pt") for f in listing)
                hint = " (PyTorch .bin weights found: re-save with safe_serialization=True)" if has_bin else ""
                raise FileNotFoundError(f"{model_dir}: no *.safetensors weights{hint}")
            for fname in files:
                path = paths.join(model_dir, fname)
                for name in self._open(path).keys():
                    self.location[name] = path

    def _open(self, path: str) -> SafetensorsFile:
        if path not in self._files:
            self._files[path] = SafetensorsFile(path)
        return self._files[path]

    def __contains__(self, name: str) -> bool:
        return name in self.location

    def shape(self, name: str) -> tuple[int, ...]:
        return self._open(self.location[name]).shape(name)

    def get(self, name: str) -> np.ndarray:
        if name not in self.location:
            raise KeyError(f"tensor {name!r} not found in the model's safetensors files")
        return self._open(self.location[name]).get(name)

    @property
    def reads(self) -> int:
        """Tensors read so far, over all files."""
        return sum(f.reads for f in self._files.values())


def write_sharded(
    output_dir: str,
    tensors: list[tuple[str, tuple[int, ...], np.dtype]],
    produce: Callable[[str], np.ndarray],
    max_shard_bytes: int = 5 * 1024**3,
    metadata: dict | None = None,
) -> list[str]:
    """Writes tensors (name, shape, dtype) into safetensors files of at most max_shard_bytes.

    ``produce(name)`` is called once per tensor, in order, so only one tensor
    is in memory at a time. One file is named ``model.safetensors``; several
    are ``model-0000i-of-0000n.safetensors`` plus ``model.safetensors.index.json``.
    """
    shards: list[list[tuple[str, tuple[int, ...], np.dtype]]] = [[]]
    size = 0
    for entry in tensors:
        nbytes = int(np.prod(entry[1])) * np.dtype(entry[2]).itemsize
        if shards[-1] and size + nbytes > max_shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append(entry)
        size += nbytes
    n = len(shards)
    names = ["model.safetensors"] if n == 1 else [f"model-{i + 1:05d}-of-{n:05d}.safetensors" for i in range(n)]
    weight_map = {}
    total = 0
    for fname, shard in zip(names, shards):
        header: dict = {"__metadata__": {"format": "pt", **(metadata or {})}}
        offset = 0
        for name, shape, dtype in shard:
            nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
            header[name] = {"dtype": _NAMES[np.dtype(dtype)], "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
            offset += nbytes
            weight_map[name] = fname
        total += offset
        blob = json.dumps(header, separators=(",", ":")).encode()
        blob += b" " * (-len(blob) % 8)  # align the data section
        with paths.open_file(paths.join(output_dir, fname), "wb") as f:
            f.write(struct.pack("<Q", len(blob)))
            f.write(blob)
            for name, shape, dtype in shard:
                arr = np.ascontiguousarray(produce(name), dtype=dtype)
                if arr.shape != tuple(shape):
                    raise ValueError(f"tensor {name!r}: produced shape {arr.shape}, expected {tuple(shape)}")
                f.write(arr.tobytes())
    if n > 1:
        paths.write_text(paths.join(output_dir, "model.safetensors.index.json"),
                         json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2))
    return names

