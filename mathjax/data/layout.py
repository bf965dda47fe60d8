"""The global SFT batch on the mesh: which rows each process builds, and how they become one array.

On a real pod the devices of one host are rarely consecutive along the batch
axes: ``jax.make_mesh`` over a v4-32 orders the ``fsdp`` axis as processes
``0,1,2,3,0,1,2,3,...`` (ICI rings), so a process holds rows 0-1, 8-9, 16-17,
... of each micro-batch. The layout therefore keeps an arbitrary sorted set of
local rows and assembles the global array shard by shard
(``jax.make_array_from_single_device_arrays``), which works for any device order.
"""

from __future__ import annotations

from typing import Mapping

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding

from mathjax.parallel.rules import logical_to_spec


class BatchLayout:
    """Global batch ``[micro_batches, batch_size // micro_batches, seq_len]`` on the mesh.

    Rows of each micro-batch are split over the ``data`` x ``fsdp`` axes
    (logical axis ``batch``). Global row ``m * rows_per_micro + r`` is slot
    ``m * rows_per_micro + r``; this process builds only the rows its devices
    hold (``local_row_ids``, sorted, not necessarily contiguous).

    Args:
      mesh: the training mesh.
      batch_size, micro_batches, seq_len: the global batch geometry.
      process_index: whose rows to compute (default: this process). Lets tests
        and fit checks inspect the layout of any process of a topology.
    """

    def __init__(self, mesh: Mesh, batch_size: int, micro_batches: int, seq_len: int,
                 process_index: int | None = None):
        if micro_batches < 1 or batch_size % micro_batches:
            raise ValueError(f"batch_size={batch_size} must be a positive multiple of micro_batches={micro_batches}")
        rows = batch_size // micro_batches
        shards = mesh.shape["data"] * mesh.shape["fsdp"]
        if rows % shards:
            raise ValueError(
                f"batch_size / micro_batches = {rows} rows per micro-batch must be divisible by "
                f"data x fsdp = {shards} (mesh {dict(mesh.shape)})")
        self.mesh = mesh
        self.batch_size = batch_size
        self.micro_batches = micro_batches
        self.rows_per_micro = rows
        self.seq_len = seq_len
        self.global_shape = (micro_batches, rows, seq_len)
        self.sharding = NamedSharding(mesh, logical_to_spec((None, "batch", "length"), self.global_shape, mesh))
        self.process_index = jax.process_index() if process_index is None else process_index
        me = self.process_index
        # Row span -> processes whose devices hold it (several when data/fsdp
        # leave the batch replicated over tensor or over a size-1 axis).
        owners: dict[tuple[int, int], set[int]] = {}
        for device, index in self.sharding.devices_indices_map(self.global_shape).items():
            span = tuple(index[1].indices(rows)[:2])
            owners.setdefault(span, set()).add(device.process_index)
        local = sorted(span for span, procs in owners.items() if me in procs)
        if not local:
            raise ValueError(f"process {me} holds no device of mesh {dict(mesh.shape)}")
        self.local_spans = local
        self.local_row_ids = np.asarray([r for a, b in local for r in range(a, b)], np.int64)
        self.local_slots = np.asarray([[m * rows + r for r in self.local_row_ids] for m in range(micro_batches)],
                                      np.int64)
        # The process with the lowest index among a span's owners counts its records (data stats).
        primary = [span for span, procs in owners.items() if min(procs) == me]
        self.primary_slots = np.asarray(
            sorted(m * rows + r for m in range(micro_batches) for a, b in primary for r in range(a, b)), np.int64)

    @property
    def local_shape(self) -> tuple[int, int, int]:
        return (self.micro_batches, len(self.local_row_ids), self.seq_len)

    def _local_position(self, row: int) -> int:
        pos = int(np.searchsorted(self.local_row_ids, row))
        if pos >= len(self.local_row_ids) or self.local_row_ids[pos] != row:
            raise ValueError(f"row {row} is not held by process {self.process_index}")
        return pos

    def to_global(self, local: Mapping[str, np.ndarray]) -> dict[str, jax.Array]:
        """Process-local rows (in ``local_row_ids`` order) -> global sharded arrays.

        Each addressable device gets exactly its shard, cut from the local rows,
        so any device-to-process order works.
        """
        out = {}
        devices = self.sharding.addressable_devices_indices_map(self.global_shape)
        for key, value in local.items():
            value = np.asarray(value)
            if value.shape != self.local_shape:
                raise ValueError(f"batch[{key!r}] has shape {value.shape}; this process's rows need {self.local_shape}")
            shards = []
            for device, index in devices.items():
                start, stop = index[1].indices(self.rows_per_micro)[:2]
                lo = self._local_position(start)
                shard = value[index[0], lo:lo + (stop - start), index[2]]
                shards.append(jax.device_put(shard, device))
            out[key] = jax.make_array_from_single_device_arrays(self.global_shape, self.sharding, shards)
        return out
