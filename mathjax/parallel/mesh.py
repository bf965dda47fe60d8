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


def detect_cluster() -> type | None:
    """The cluster environment ``jax.distributed.initialize()`` would pick here, or None.

    Asks JAX's own detectors, in JAX's order, skipping the opt-in ones
    (mpi4py) as JAX does: Open MPI, SLURM, GKE TPU (``TPU_WORKER_HOSTNAMES``),
    GCE TPU VMs (the metadata server: plain Cloud TPU VMs set no variable),
    Kubernetes. JAX has no public "is a cluster present" call; its detectors
    register themselves in ``jax._src.clusters.ClusterEnv._cluster_types``
    (what ``auto_detect_unset_distributed_params`` walks), read here.

    Raises:
      RuntimeError: a detector failed (e.g. the TPU metadata server did not
        answer), naming it. Explicit flags skip detection (``num_processes=1``
        for one process).
    """
    try:
        from jax._src import clusters

        cluster_types = list(clusters.ClusterEnv._cluster_types)
    except (ImportError, AttributeError):  # pragma: no cover - depends on the JAX version
        logging.warning("this JAX has no cluster registry (jax._src.clusters); multi-host runs need the "
                        "--coordinator_address, --num_processes and --process_id flags")
        return None
    for env in cluster_types:
        if getattr(env, "opt_in_only_method", False):
            continue
        try:
            present = env.is_env_present()
        except Exception as e:  # noqa: BLE001 - re-raised with the detector's name
            raise RuntimeError(f"cluster detection by JAX's {env.__name__} failed ({type(e).__name__}: {e}); "
                               "skip it with --num_processes=1 (one process) or --coordinator_address, "
                               "--num_processes and --process_id") from e
        if present:
            return env
    return None


def _use_gloo_on_cpu() -> None:
    # Cross-process collectives of the CPU backend (GPU/TPU use NCCL/ICI); gloo
    # is JAX's default since 0.5, set for older versions. Must happen before any
    # backend is initialised, so jax.default_backend() is not asked here.
    if getattr(jax.config, "jax_cpu_collectives_implementation", None) is None:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")


def initialize_distributed(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
) -> bool:
    """Starts ``jax.distributed`` when the run spans several processes; returns whether it is running.

    * Explicit flags (GPU/CPU hosts): ``num_processes > 1`` with the
      coordinator's ``host:port`` (or ``JAX_COORDINATOR_ADDRESS``) and this
      process's id. ``num_processes=1`` means one process, whatever the cluster.
    * Otherwise every cluster JAX knows (:func:`detect_cluster`), Cloud TPU VMs
      included, where JAX finds its peers through the metadata server. When
      the cluster has one process (a single-host TPU VM such as v4-8, a
      one-task SLURM job) nothing is started: JAX's TPU detector would start a
      coordinator on the fixed port 8482 and connect to itself, which only
      adds a way to fail (another JAX job on the VM holding the port), and
      single-process runs need no coordination (checkpoints and SIGTERM
      handling work without it).

    Call before anything touches a JAX backend; safe to call again.
    """
    if jax.distributed.is_initialized():
        return True
    if num_processes is not None:
        if num_processes <= 1:
            return False
        coordinator_address = coordinator_address or os.environ.get("JAX_COORDINATOR_ADDRESS")
        if not coordinator_address or process_id is None:
            raise ValueError(f"num_processes={num_processes} needs the coordinator address (host:port) and "
                             "this process's id (--coordinator_address, --process_id)")
        _use_gloo_on_cpu()
        jax.distributed.initialize(
            coordinator_address=coordinator_address, num_processes=num_processes, process_id=process_id
        )
    else:
        env = detect_cluster()
        if env is None:
            return False
        try:
            count = int(env.get_process_count())
        except Exception as e:  # noqa: BLE001 - re-raised with the cluster's name
            raise RuntimeError(f"{env.__name__} cluster found but its process count is unreadable "
                               f"({type(e).__name__}: {e}); skip detection with --num_processes=1 (one process) "
                               "or --coordinator_address, --num_processes and --process_id") from e
        if count <= 1:
            logging.info("%s cluster with one process: jax.distributed not started", env.__name__)
            return False
        _use_gloo_on_cpu()
        logging.info("%s cluster with %d processes: starting jax.distributed", env.__name__, count)
        jax.distributed.initialize()  # JAX runs the same detection and fills in address, count and id
    logging.info(
        "jax.distributed: process %d of %d, %d local / %d global devices",
        jax.process_index(), jax.process_count(), jax.local_device_count(), jax.device_count(),
    )
    return True
