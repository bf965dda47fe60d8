"""The one table that maps logical axis names to mesh axes, and helpers that apply it.

Parameters and activations carry logical names (``embed``, ``heads``, ``mlp``,
...). This module is the only place that decides which mesh axis shards which
logical axis; change a strategy here, not in the model.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Sequence

import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

# logical axis -> mesh axis (or tuple of mesh axes, or None = replicated).
# FSDP shards the embedding dimension of every weight; tensor parallelism
# shards heads and the MLP's hidden dimension (Megatron layout); the batch is
# split over both data-parallel axes.
LOGICAL_RULES: tuple[tuple[str, Any], ...] = (
    ("batch", ("data", "fsdp")),
    ("length", None),
    ("embed", "fsdp"),
    ("act_embed", None),
    ("vocab", "tensor"),
    ("heads", "tensor"),
    ("kv_heads", "tensor"),
    ("head_dim", None),
    ("mlp", "tensor"),
    ("act_heads", "tensor"),
    ("act_mlp", "tensor"),
    ("act_vocab", "tensor"),
    ("layers", None),
    ("norm", None),
    ("cache_batch", ("data", "fsdp")),
    ("cache_length", None),
)


def _mesh_axes_for(name: str | None, rules: Sequence[tuple[str, Any]]) -> tuple[str, ...]:
    if name is None:
        return ()
    for logical, mesh_axes in rules:
        if logical == name:
            if mesh_axes is None:
                return ()
            return (mesh_axes,) if isinstance(mesh_axes, str) else tuple(mesh_axes)
    raise KeyError(f"logical axis {name!r} has no rule in the rules table")


def logical_to_spec(
    names: Sequence[str | None],
    shape: Sequence[int] | None = None,
    mesh: Mesh | None = None,
    rules: Sequence[tuple[str, Any]] = LOGICAL_RULES,
) -> PartitionSpec:
    """PartitionSpec for an array with the given logical axis names.

    With ``shape`` and ``mesh``, a mesh axis that does not divide a dimension
    is dropped for that dimension (e.g. 8 KV heads on ``tensor:16``), size-1
    axes are left out, and a
    mesh axis is never used twice, so every spec is valid on every mesh.
    """
    used: set[str] = set()
    out = []
    for dim, name in enumerate(names):
        axes = []
        size = 1
        for axis in _mesh_axes_for(name, rules):
            if axis in used:
                continue
            if mesh is not None and shape is not None:
                axis_size = mesh.shape[axis]
                if axis_size == 1 or shape[dim] % (size * axis_size):
                    continue
                size *= axis_size
            axes.append(axis)
        used.update(axes)
        out.append(None if not axes else axes[0] if len(axes) == 1 else tuple(axes))
    return PartitionSpec(*out)


def named_sharding(mesh: Mesh, names: Sequence[str | None], shape: Sequence[int]) -> NamedSharding:
    return NamedSharding(mesh, logical_to_spec(names, shape, mesh))


# ---- activation constraints ----
# The model calls `constrain(x, names)`; it is a no-op unless a mesh is active,
# so the same model code runs unsharded (tests, conversion) and sharded.
_ACTIVE = threading.local()


@contextlib.contextmanager
def activate(mesh: Mesh | None):
    """Makes ``constrain`` apply sharding constraints on ``mesh`` while tracing."""
    previous = getattr(_ACTIVE, "mesh", None)
    _ACTIVE.mesh = mesh
    try:
        yield
    finally:
        _ACTIVE.mesh = previous


def active_mesh() -> Mesh | None:
    return getattr(_ACTIVE, "mesh", None)


def target_platform() -> str:
    """The platform the traced program is for: the active mesh's devices, else JAX's default backend.

    A fit check compiles for a TPU topology from a CPU host (``--dry_run_topology``);
    kernel choices (splash vs blockwise attention, CPU-only backward rules)
    must follow the target, not the host.
    """
    mesh = active_mesh()
    if mesh is not None:
        return mesh.devices.flat[0].platform
    return jax.default_backend()


def constrain(x: jax.Array, names: Sequence[str | None]) -> jax.Array:
    """``with_sharding_constraint`` by logical names on the active mesh (no-op without one)."""
    mesh = active_mesh()
    if mesh is None or mesh.size == 1:
        return x
    return jax.lax.with_sharding_constraint(x, named_sharding(mesh, names, x.shape))
