"""Device meshes from one flag string, and multi-host initialisation.

The mesh always has the three axes ``data``, ``fsdp``, ``tensor`` (in that
order; axes left out of the string have size 1), so one rules table
(:mod:`mathjax.parallel.rules`) serves every run from one CPU to a pod.
"""

from __future__ import annotations

import logging
import math
import os

import jax
import numpy as np
from jax.sharding import Mesh

MESH_AXES = ("data", "fsdp", "tensor")


def parse_mesh_spec(spec: str, num_devices: int) -> dict[str, int]:
    """Parses ``"data:1,fsdp:-1,tensor:2"`` into axis sizes whose product is num_devices.

    ``-1`` takes the remaining devices (at most one axis may use it); axes
    left out have size 1. An empty spec means ``fsdp:-1``.
    """
    sizes = {axis: 1 for axis in MESH_AXES}
    spec = (spec or "").strip() or "fsdp:-1"
    seen = set()
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, value = part.partition(":")
        name = name.strip()
        if not sep or name not in MESH_AXES:
            raise ValueError(f"mesh spec {spec!r}: bad entry {part!r}; expected axis:size with axis in {MESH_AXES}")
        if name in seen:
            raise ValueError(f"mesh spec {spec!r}: axis {name!r} given twice")
        seen.add(name)
        try:
            sizes[name] = int(value)
        except ValueError:
            raise ValueError(f"mesh spec {spec!r}: size of {name!r} is not an integer: {value!r}") from None
        if sizes[name] == 0 or sizes[name] < -1:
            raise ValueError(f"mesh spec {spec!r}: size of {name!r} must be positive or -1")
    free = [a for a, s in sizes.items() if s == -1]
    if len(free) > 1:
        raise ValueError(f"mesh spec {spec!r}: only one axis may be -1")
    fixed = math.prod(s for s in sizes.values() if s != -1)
    if free:
        if num_devices % fixed:
            raise ValueError(f"mesh spec {spec!r}: {num_devices} devices are not divisible by {fixed}")
        sizes[free[0]] = num_devices // fixed
    if math.prod(sizes.values()) != num_devices:
        raise ValueError(
            f"mesh spec {spec!r} uses {math.prod(sizes.values())} devices but {num_devices} are available"
        )
    return sizes


def make_mesh(spec: str | Mesh | None = None, devices: list | None = None) -> Mesh:
    """Builds a ``Mesh(data, fsdp, tensor)`` from a spec string over all (or the given) devices.

    Axis types are left Auto on purpose: shardings are given at jit boundaries
    (NamedSharding in/out) and by a few activation constraints, and GSPMD
    propagates the rest. Recent ``jax.make_mesh`` defaults to Explicit axes,
    which would require sharding-in-types annotations on every op.
    """
    if isinstance(spec, Mesh):
        return spec
    devices = list(devices) if devices is not None else jax.devices()
    sizes = parse_mesh_spec(spec or "", len(devices))
    shape = tuple(sizes[a] for a in MESH_AXES)
    auto = (jax.sharding.AxisType.Auto,) * len(MESH_AXES)
    try:
        # Topology-aware device order (ICI rings on TPU, NVLink islands on GPU);
        # also for devices of a TPU topology described by libtpu (fit checks).
        # On a pod this interleaves processes along the axes (v4-32 fsdp:16 runs
        # through processes 0,1,2,3,0,1,...): the data layout handles any order.
        return jax.make_mesh(shape, MESH_AXES, axis_types=auto, devices=devices)
    except Exception as e:  # pragma: no cover - depends on the platform
        logging.info("jax.make_mesh failed (%s); using the plain device order", e)
    return Mesh(np.asarray(devices).reshape(shape), MESH_AXES, axis_types=auto)


def initialize_distributed(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
) -> None:
    """Starts ``jax.distributed`` when the run spans several processes.

    On TPU pods and SLURM clusters JAX discovers everything itself; on plain
    GPU/CPU hosts pass the coordinator flags. CPU runs use gloo collectives.
    Safe to call once per process; a no-op for single-process runs.
    """
    explicit = coordinator_address is not None and num_processes is not None and num_processes > 1
    on_tpu_pod = "TPU_WORKER_HOSTNAMES" in os.environ or "MEGASCALE_COORDINATOR_ADDRESS" in os.environ
    on_slurm = "SLURM_JOB_ID" in os.environ and int(os.environ.get("SLURM_NTASKS", "1")) > 1
    if not (explicit or on_tpu_pod or on_slurm):
        return
    if jax.distributed.is_initialized():
        return
    if explicit:
        # Only affects the CPU backend; GPU/TPU use NCCL/ICI. Must be set before
        # any backend is initialised, so do not query jax.default_backend() here.
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    if explicit:
        jax.distributed.initialize(
            coordinator_address=coordinator_address, num_processes=num_processes, process_id=process_id
        )
    else:
        jax.distributed.initialize()
    logging.info(
        "jax.distributed: process %d of %d, %d local / %d global devices",
        jax.process_index(), jax.process_count(), jax.local_device_count(), jax.device_count(),
    )
