"""Cloud TPU slices without the hardware: the real device set of a named accelerator type.

``libtpu`` ships the TPU compiler and a topology model; with it installed, a
CPU host can build the exact device list of, say, a v4-32 (16 chips in 4
hosts, with their ``process_index`` and ICI coordinates), lay a mesh over it
in the order ``jax.make_mesh`` would use on the pod, and compile a jitted step
for it. That is how ``--dry_run_topology`` checks memory and collectives of a
pod run from a laptop or CI (MaxText's ``train_compile.py`` works the same way).

Accelerator type names follow Cloud TPU: ``v4-N`` and ``v5p-N`` count
TensorCores (2 per chip, megacore), ``v5litepod-N`` and ``v6e-N`` count chips.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re

GiB = 1024**3


@dataclasses.dataclass(frozen=True)
class SliceType:
    """One Cloud TPU accelerator type: its topology string and host layout."""

    name: str  # e.g. "v4-32"
    topology: str  # get_topology_desc's name, e.g. "v4:2x2x4"
    chips: int
    chips_per_host_bounds: tuple[int, int, int]
    chip_config_name: str | None  # "megacore" where two TensorCores act as one device
    hbm_bytes: int  # per chip (= per JAX device)

    @property
    def hosts(self) -> int:
        return self.chips // (self.chips_per_host_bounds[0] * self.chips_per_host_bounds[1] *
                              self.chips_per_host_bounds[2])


# Per-chip HBM from the Cloud TPU system architecture pages.
_HBM = {"v4": 32 * GiB, "v5p": 95 * GiB, "v5litepod": 16 * GiB, "v6e": 32 * GiB}

# Chip grids per slice size. v4/v5p: 3-D tori, 4 chips per host; v5e/v6e: 2-D,
# 8 chips on a single-host slice, 4 per host on multi-host slices.
_V4_V5P_GRIDS = {8: "2x2x1", 16: "2x2x2", 32: "2x2x4", 64: "2x4x4", 128: "4x4x4"}
_V5E_V6E_GRIDS = {8: "2x4", 16: "4x4", 32: "4x8", 64: "8x8", 128: "8x16", 256: "16x16"}


def _slice_types() -> dict[str, SliceType]:
    out = {}
    for family, prefix in (("v4", "v4"), ("v5p", "v5p")):
        for cores, grid in _V4_V5P_GRIDS.items():
            chips = cores // 2
            out[f"{family}-{cores}"] = SliceType(f"{family}-{cores}", f"{prefix}:{grid}", chips, (2, 2, 1),
                                                 "megacore", _HBM[family])
    for family, prefix in (("v5litepod", "v5e"), ("v6e", "v6e")):
        for chips, grid in _V5E_V6E_GRIDS.items():
            bounds = (2, 4, 1) if chips == 8 else (2, 2, 1)
            out[f"{family}-{chips}"] = SliceType(f"{family}-{chips}", f"{prefix}:{grid}", chips, bounds, None,
                                                 _HBM[family])
    return out


SLICE_TYPES: dict[str, SliceType] = _slice_types()


def slice_type(name: str) -> SliceType:
    """The :class:`SliceType` of a Cloud TPU accelerator type name (``v4-32``, ``v5litepod-64``, ...)."""
    key = name.strip().lower()
    key = re.sub(r"^v5e-", "v5litepod-", key)  # the common shorthand
    if key not in SLICE_TYPES:
        raise ValueError(f"unknown TPU accelerator type {name!r}; known: {', '.join(SLICE_TYPES)}")
    return SLICE_TYPES[key]


@contextlib.contextmanager
def _quiet_libtpu_env(accelerator: str):
    """libtpu probes the GCE metadata server and warns on stderr unless told it is a lone worker.

    Only for the duration of the topology query: these variables must not
    leak into cluster detection (``jax.distributed``) later in the process.
    """
    # ALLOW_MULTIPLE_LIBTPU_LOAD: libtpu otherwise takes /tmp/libtpu_lockfile for the
    # process's lifetime, and a second compile-only process (a test's subprocess, a
    # second dry run) aborts. Describing a topology never opens a chip.
    values = {"TPU_ACCELERATOR_TYPE": accelerator, "TPU_WORKER_HOSTNAMES": "localhost", "TPU_WORKER_ID": "0",
              "TPU_SKIP_MDS_QUERY": "1", "ALLOW_MULTIPLE_LIBTPU_LOAD": "1"}
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def topology_devices(name: str) -> list:
    """The devices of accelerator type ``name`` from libtpu's topology model (no TPU needed).

    Raises:
      RuntimeError: libtpu is not installed (one line naming the pip command).
    """
    spec = slice_type(name)
    try:
        import libtpu  # noqa: F401 - only to tell a missing install from a topology error
    except ImportError:
        raise RuntimeError("--dry_run_topology needs the TPU compiler: pip install libtpu") from None
    from jax.experimental import topologies

    kwargs = {"chip_config_name": spec.chip_config_name} if spec.chip_config_name else {}
    with _quiet_libtpu_env(spec.name):
        topo = topologies.get_topology_desc(topology_name=spec.topology, platform="tpu", num_slices=1,
                                            chips_per_host_bounds=spec.chips_per_host_bounds, **kwargs)
    devices = list(topo.devices)
    if len(devices) != spec.chips:
        raise RuntimeError(f"libtpu's {spec.topology} has {len(devices)} devices; {name} has {spec.chips} chips")
    return devices
