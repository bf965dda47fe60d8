"""Host <-> mesh transfers that also work when the mesh spans several processes.

On a multi-host mesh every process runs the same host code with the same
values (the sampler's scheduler is deterministic and reads only replicated
summaries), so a host array is turned into a global one by letting each
process place just the shards of its own devices.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec


def to_global(value: np.ndarray, sharding: NamedSharding) -> jax.Array:
    """A global array with ``sharding`` from a host array every process holds in full."""
    value = np.asarray(value)
    return jax.make_array_from_callback(value.shape, sharding, lambda index: value[index])


def replicated(value: np.ndarray, mesh: Mesh) -> jax.Array:
    """``value`` on every device of ``mesh``."""
    return to_global(value, NamedSharding(mesh, PartitionSpec()))


def spans_processes(mesh: Mesh) -> bool:
    """Whether ``mesh`` has devices of other processes (a pod-wide model)."""
    me = jax.process_index()
    return any(d.process_index != me for d in mesh.devices.flat)
