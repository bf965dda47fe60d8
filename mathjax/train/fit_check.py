"""Fit check (``--dry_run``): compile the real train step or sampler on a mesh and report per-device memory and FLOPs.

Nothing is allocated: params, optimizer state, batches and KV caches are
``jax.ShapeDtypeStruct`` with their target shardings, and the jitted
functions are only lowered and compiled. So a 70B model can be checked on a
laptop against 8 emulated CPU devices, or on the target slice before a run.

Figures per device:

* params, optimizer state, batch / KV cache: exact, from each array's shard shape;
* activations + temporaries: XLA's ``memory_analysis().temp_size_in_bytes`` of
  the compiled program (on CPU, an estimate of the target: XLA:CPU schedules
  differently, and its XLA attention materialises the ``[T, T]`` scores that
  splash / cuDNN never hold);
* FLOPs: counted from the traced program (every ``dot_general``, scans times
  their length, remat recomputation included). XLA's ``cost_analysis()``
  counts a loop body once, which undercounts a scanned layer stack by the
  number of layers; it is reported alongside for reference only.

Compile time stays small at any depth because training scans over layers (one
compiled layer). The sampler unrolls its layers (per-layer caches updated in
place), so its compile grows with depth.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import re
import time
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from mathjax.model.config import ModelConfig, get_preset
from mathjax.parallel import hlo
from mathjax.parallel.mesh import make_mesh

GiB = 1024**3


# ---------------------------------------------------------------------------
# Devices.


def emulate_devices(count: int | None) -> None:
    """Asks XLA's CPU platform for ``count`` devices (call before JAX's backend starts; no-op on GPU/TPU).

    An explicit ``--xla_force_host_platform_device_count`` in ``XLA_FLAGS`` wins.
    """
    if not count or count < 2:
        return
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={count}".strip()


def device_memory_limit(device: Any = None) -> int | None:
    """Bytes the runtime lets JAX use on ``device`` (None on CPU, where it is not reported)."""
    device = device or jax.devices()[0]
    try:
        stats = device.memory_stats()
    except Exception:  # some backends raise instead of returning None
        return None
    return int(stats["bytes_limit"]) if stats and "bytes_limit" in stats else None


# ---------------------------------------------------------------------------
# Counting.


def per_device_bytes(tree: Any) -> int:
    """Bytes one device holds of a tree of sharded ``ShapeDtypeStruct`` (the largest shard per leaf)."""
    total = 0
    for leaf in jax.tree_util.tree_leaves(tree):
        shape = leaf.sharding.shard_shape(leaf.shape) if getattr(leaf, "sharding", None) is not None else leaf.shape
        total += math.prod(shape) * np.dtype(leaf.dtype).itemsize
    return total


def _dot_flops(eqn) -> float:
    lhs, _ = (v.aval for v in eqn.invars[:2])
    (contract_lhs, _), _ = eqn.params["dimension_numbers"]
    contracted = math.prod(lhs.shape[d] for d in contract_lhs)
    return 2.0 * math.prod(eqn.outvars[0].aval.shape) * contracted


def matmul_flops(jaxpr: Any) -> tuple[float, bool]:
    """``(FLOPs of every dot_general in a (closed) jaxpr, saw_while_loop)``, global shapes.

    Scan bodies count ``length`` times; a ``cond`` counts its costliest
    branch; a ``while`` body counts once (its trip count is dynamic: for the
    sampler's decode loop that is exactly "one decode step"); a Pallas call
    counts its kernel once per grid point.
    """
    from jax.extend.core import jaxprs_in_params

    jaxpr = getattr(jaxpr, "jaxpr", jaxpr)
    total, saw_while = 0.0, False
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        if name == "dot_general":
            total += _dot_flops(eqn)
            continue
        subs = [matmul_flops(j) for j in jaxprs_in_params(eqn.params)]
        if not subs:
            continue
        saw_while |= name == "while" or any(w for _, w in subs)
        if name == "cond":
            total += max(f for f, _ in subs)
            continue
        repeat = 1
        if name == "scan":
            repeat = eqn.params["length"]
        elif name == "pallas_call":
            repeat = math.prod(getattr(eqn.params.get("grid_mapping"), "grid", ()) or (1,))
        total += repeat * sum(f for f, _ in subs)
    return total, saw_while


def _xla_flops(compiled) -> float | None:
    try:
        cost = compiled.cost_analysis()
    except Exception:  # not every backend implements it
        return None
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost["flops"]) if cost and "flops" in cost else None


# ---------------------------------------------------------------------------
# Report.


@dataclasses.dataclass
class FitReport:
    """One compiled program's per-device footprint and work.

    ``memory`` maps a label to bytes per device, in print order; ``peak_bytes``
    is XLA's view of the whole program: arguments + outputs not aliased to a
    donated argument + temporaries.
    """

    title: str
    mesh: dict[str, int]
    platform: str
    memory: dict[str, int]
    peak_bytes: int
    flops_per_step: float  # global, counted from the traced program
    flops_per_device: float
    flops_note: str
    xla_flops_per_device: float | None
    model_flops_per_step: float | None
    lower_seconds: float
    compile_seconds: float
    device_memory: int | None = None
    details: list[str] = dataclasses.field(default_factory=list)
    collectives: hlo.CollectiveStats | None = None  # per device per step, from the compiled HLO
    compiler_refused: str | None = None  # the TPU compiler's out-of-memory message, when it refused

    @property
    def num_devices(self) -> int:
        return math.prod(self.mesh.values())

    @property
    def fits(self) -> bool | None:
        if self.compiler_refused:
            return False
        return None if self.device_memory is None else self.peak_bytes <= self.device_memory

    def format(self) -> str:
        mesh = ",".join(f"{k}:{v}" for k, v in self.mesh.items())
        lines = [f"== fit check: {self.title}", f"   mesh {mesh} ({self.num_devices} x {self.platform})"]
        lines += [f"   {d}" for d in self.details]
        lines.append(f"   {'per device':<34}{'GiB':>10}")
        for label, value in self.memory.items():
            lines.append(f"   {label:<34}{value / GiB:>10.2f}")
        total = f"   {'total (XLA peak estimate)':<34}{self.peak_bytes / GiB:>10.2f}"
        if self.device_memory:
            verdict = "fits" if self.fits else "DOES NOT FIT"
            total += f"  of {self.device_memory / GiB:.1f} GiB device memory ({100 * self.peak_bytes / self.device_memory:.0f}%): {verdict}"
        else:
            total += "  (device memory unknown: pass --device_memory_gib)"
        lines.append(total)
        flops = f"   FLOPs {self.flops_note}: {self.flops_per_step:.3e} total, {self.flops_per_device:.3e} per device"
        lines.append(flops)
        if self.model_flops_per_step:
            lines.append(f"   model FLOPs per step (6N + causal attention, as in MFU): {self.model_flops_per_step:.3e}")
        if self.xla_flops_per_device is not None:
            lines.append(f"   XLA cost_analysis flops per device (loop bodies counted once): {self.xla_flops_per_device:.3e}")
        if self.compiler_refused:
            lines.append(f"   TPU compiler refused the program: {self.compiler_refused}")
        elif self.collectives is None and self.platform == "tpu":
            lines.append("   collectives: the compiled program's HLO text is not available (see the log)")
        if self.collectives is not None:
            loops = (f" (a loop without a fixed trip count, counted once: {self.flops_note})"
                     if self.collectives.dynamic_loops else "")
            lines.append(f"   collectives per device, from the compiled HLO{loops}:")
            lines += [f"     {line}" for line in self.collectives.lines()]
        lines.append(f"   lower {self.lower_seconds:.1f} s, compile {self.compile_seconds:.1f} s")
        return "\n".join(lines)

    def verdict(self) -> str:
        """One line: whether it fits, and why not."""
        if self.device_memory is None:
            return f"{self.title}: {self.peak_bytes / GiB:.2f} GiB per device (device memory unknown)"
        if self.fits:
            return (f"{self.title}: fits, {self.peak_bytes / GiB:.2f} of {self.device_memory / GiB:.1f} GiB "
                    f"per device on {self.platform}")
        if self.compiler_refused:
            return f"{self.title}: DOES NOT FIT: {self.compiler_refused}"
        largest = max(self.memory, key=self.memory.get)
        return (f"{self.title}: DOES NOT FIT: {self.peak_bytes / GiB:.2f} GiB per device > "
                f"{self.device_memory / GiB:.1f} GiB (largest part: {largest}, {self.memory[largest] / GiB:.2f} GiB)")

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out.update(num_devices=self.num_devices, fits=self.fits)
        out["collectives"] = self.collectives.as_dict() if self.collectives is not None else None
        return out


_HBM_OOM = re.compile(r"memory required for HLO temporaries \(([\d.]+)([KMGT])\)")


@dataclasses.dataclass
class CompilerOutOfMemory:
    """Stands in for a compiled program the TPU compiler refused for lack of HBM.

    The TPU compiler checks its own memory plan and fails with
    ``CompileTimeHbmOom`` when temporaries exceed the chip; that is a
    definite "does not fit", reported with the compiler's figure.
    """

    message: str
    argument_bytes: int
    temp_bytes: int

    def memory_analysis(self) -> "_Memory":
        return _Memory(self.argument_bytes, self.temp_bytes)

    def cost_analysis(self):
        return None

    def as_text(self) -> str:
        return ""


@dataclasses.dataclass
class _Memory:
    argument_size_in_bytes: int
    temp_size_in_bytes: int
    output_size_in_bytes: int = 0
    alias_size_in_bytes: int = 0
    generated_code_size_in_bytes: int = 0


def _compile(jitted, *args, **kwargs):
    """``(traced, compiled, lower_s, compile_s)`` of a jitted function on abstract arguments.

    ``compiled`` is a :class:`CompilerOutOfMemory` when the (TPU) compiler
    rejects the program for exceeding device memory.
    """
    t0 = time.perf_counter()
    traced = jitted.trace(*args, **kwargs)
    lowered = traced.lower()
    t1 = time.perf_counter()
    try:
        compiled = lowered.compile()
    except jax.errors.JaxRuntimeError as e:
        found = _HBM_OOM.search(str(e))
        if "CompileTimeHbmOom" not in str(e) or not found:
            raise
        scale = {"K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}[found.group(2)]
        first = next((line for line in str(e).splitlines() if "HbmOom" in line), str(e).splitlines()[0])
        arrays = [x for x in jax.tree_util.tree_leaves(args) if hasattr(x, "shape")]
        compiled = CompilerOutOfMemory(first.strip(), per_device_bytes(arrays), int(float(found.group(1)) * scale))
    return traced, compiled, t1 - t0, time.perf_counter() - t1


def _peak(compiled) -> tuple[int, int]:
    """``(peak bytes, temp bytes)`` per device from XLA's memory analysis."""
    m = compiled.memory_analysis()
    temp = int(m.temp_size_in_bytes)
    peak = int(m.argument_size_in_bytes + m.output_size_in_bytes - m.alias_size_in_bytes + temp
               + m.generated_code_size_in_bytes)
    return peak, temp


def refused(compiled) -> str | None:
    """The compiler's out-of-memory message if it refused the program, else None."""
    return compiled.message if isinstance(compiled, CompilerOutOfMemory) else None


def collectives_of(compiled, only_dynamic_loops: bool = False) -> hlo.CollectiveStats | None:
    """Per-device collectives of a compiled program (None where the backend gives no HLO text).

    libtpu 0.0.52 fails to re-serialise some v5p executables ("async-update
    instruction should have 1 operands"): those reports say so instead of
    listing collectives.
    """
    try:
        text = compiled.as_text()
    except Exception as e:  # noqa: BLE001 - some backends do not print their executables
        logging.warning("no HLO text from the compiled program (%s): collectives not counted", str(e)[:200])
        return None
    return hlo.collectives(text, only_dynamic_loops) if text else None


def fit_target(mesh: Mesh | str, topology: str | None, device_memory: int | None) -> tuple[Mesh, int | None]:
    """``(mesh, bytes per device)`` for a fit check: over a TPU topology's devices, or this host's.

    With ``topology`` (a Cloud TPU accelerator type such as ``v4-32``) the mesh
    spans that slice's devices in the pod's own order and the memory is the
    chip's HBM; the compile then runs the real TPU compiler.
    """
    if topology:
        from mathjax.parallel.topology import slice_type, topology_devices

        devices = topology_devices(topology)
        memory = device_memory if device_memory is not None else slice_type(topology).hbm_bytes
        return make_mesh(mesh, devices=devices), memory
    mesh = make_mesh(mesh)
    return mesh, device_memory if device_memory is not None else device_memory_limit()


def mesh_platform(mesh: Mesh) -> str:
    return mesh.devices.flat[0].platform


def cpu_caveats(dtype: str, attention: str | None = None, mesh: Mesh | None = None) -> list[str]:
    """What a CPU compile gets wrong about an accelerator's memory (empty on GPU/TPU)."""
    platform = mesh_platform(mesh) if mesh is not None else jax.default_backend()
    if platform != "cpu":
        return []
    notes = []
    if (mesh.size if mesh is not None else jax.device_count()) == 1:
        notes.append("one CPU device: pass --dry_run_devices=N (or set the mesh sizes) to emulate N devices")
    if attention == "xla":
        notes.append("CPU uses XLA attention, which holds [T, T] scores per layer that splash (TPU) and "
                     "cuDNN (GPU) never materialise: temporaries are an upper bound")
    if dtype == "bfloat16":
        notes.append("XLA:CPU runs bf16 matmuls in f32 and may keep f32 copies of bf16 operands (the "
                     "sampler's bf16 weights: up to 2x their size); run --dry_run on the target for exact figures")
    return [f"note: {n}" for n in notes]


# ---------------------------------------------------------------------------
# Training.


def _target_compute_dtype(name: str) -> str:
    # A fit check answers "does it fit on the accelerator": `auto` means bf16
    # there, even when the check itself runs on CPU (where training uses f32).
    return "bfloat16" if name == "auto" else name


def read_model_dir(path: str) -> ModelConfig | None:
    """The architecture of a local HF dir, mathjax checkpoint or training workdir (no weights read)."""
    from mathjax.model.checkpoint import is_mathjax_checkpoint, read_config
    from mathjax.model.config import read_hf_config
    from mathjax.train import checkpoint as ckpt

    if not path or not os.path.isdir(path):
        return None
    if ckpt.is_workdir(path):
        return ckpt.read_model_config(path)
    if is_mathjax_checkpoint(path):
        return read_config(path)
    if os.path.isfile(os.path.join(path, "config.json")):
        return read_hf_config(path)
    return None


def train_model_config(config) -> ModelConfig:
    """The ModelConfig a train config describes, without tokenizer or weights.

    ``init_from`` supplies the architecture when it is a local HF dir, mathjax
    checkpoint or training workdir; otherwise the ``config.model`` preset with
    its own vocabulary. Then ``model_overrides`` and the numerics.
    """
    from mathjax.train.trainer import model_overrides, numerics

    base = read_model_dir(config.get("init_from") or "")
    base = base or get_preset(config.model)
    return base.replace(**model_overrides(config), **numerics(config, _target_compute_dtype(config.compute_dtype)))


def train_fit_check(config, mesh: Mesh | str | None = None, device_memory: int | None = None,
                    topology: str | None = None) -> FitReport:
    """Compiles ``make_train_step`` for ``config`` on abstract state and batch; nothing is allocated.

    Args:
      config: a train config (``configs/*_sft.py``); data and tokenizer are not read.
      mesh: a Mesh or spec; default ``config.mesh`` over all devices (of ``topology`` when given).
      device_memory: bytes per device to compare against; default: what the backend
        reports, or the chip's HBM for a topology.
      topology: a Cloud TPU accelerator type (``v4-32``, ``v5litepod-64``, ...): compile
        with the TPU compiler for that slice (needs ``libtpu``; no TPU needed).
    """
    from mathjax.data.sft import BatchLayout
    from mathjax.model.attention import select_impl
    from mathjax.parallel.rules import activate
    from mathjax.train.optimizer import make_optimizer
    from mathjax.train.state import abstract_state
    from mathjax.train.step import make_train_step

    if isinstance(mesh, Mesh):
        device_memory = device_memory if device_memory is not None else device_memory_limit()
    else:
        mesh, device_memory = fit_target(config.mesh if mesh is None else mesh, topology, device_memory)
    model = train_model_config(config)
    steps = int(config.steps) if config.get("steps") else 1000  # the schedule's length changes neither memory nor FLOPs
    optimizer, schedule = make_optimizer(config.optimizer, model, steps)
    state = abstract_state(model, mesh, optimizer)
    layout = BatchLayout(mesh, config.batch_size, config.micro_batches, config.seq_len)
    batch = {k: jax.ShapeDtypeStruct(layout.global_shape, jnp.int32, sharding=layout.sharding)
             for k in ("tokens", "targets", "loss_mask", "segment_ids", "positions")}
    loss_chunk = int(config.get("loss_chunk", 0) or 0)
    step = make_train_step(model, optimizer, schedule, mesh, layout.sharding, loss_chunk)
    traced, compiled, lower_s, compile_s = _compile(step, state, batch)
    peak, temp = _peak(compiled)
    flops, _ = matmul_flops(traced.jaxpr)
    tokens = config.batch_size * config.seq_len
    rows = config.batch_size // config.micro_batches // (mesh.shape["data"] * mesh.shape["fsdp"])
    memory = {
        f"params ({model.param_dtype})": per_device_bytes(state.params),
        "optimizer state": per_device_bytes(state.opt_state),
        "batch": per_device_bytes(batch),
        "activations + temporaries": temp,
    }
    with activate(mesh):  # resolve `auto` for the target platform, not this host
        attention = select_impl(model.attention_impl)
    details = [
        f"model {config.model} ({model.num_params() / 1e9:.2f}B params), compute {model.dtype}, "
        f"remat {model.remat_policy}, attention {attention}, loss_chunk {loss_chunk}",
        f"batch {config.batch_size} x {config.seq_len} tokens = {config.micro_batches} micro-batch(es) of "
        f"{rows} row(s) per data shard",
    ] + cpu_caveats(model.dtype, attention, mesh)
    if topology:
        details.insert(0, f"topology {topology}: TPU compiler via libtpu; processes "
                          f"{sorted({d.process_index for d in mesh.devices.flat})[-1] + 1}")
    return FitReport(
        title=f"train {config.model}" + (f" on {topology}" if topology else ""), mesh=dict(mesh.shape),
        platform=mesh_platform(mesh),
        memory=memory, peak_bytes=peak, flops_per_step=flops, flops_per_device=flops / mesh.size,
        flops_note="per train step (counted, incl. remat)",
        xla_flops_per_device=_xla_flops(compiled), model_flops_per_step=model.flops_per_token(config.seq_len) * tokens,
        lower_seconds=lower_s, compile_seconds=compile_s,
        device_memory=device_memory, details=details, collectives=collectives_of(compiled),
        compiler_refused=refused(compiled),
    )


def print_verdicts_and_exit(reports: Sequence[FitReport]) -> None:
    """Prints the reports and one verdict line each; exits 1 when one does not fit (the scripts' --dry_run)."""
    import sys

    print_reports(reports)
    for report in reports:
        print(report.verdict(), flush=True)
    if any(report.fits is False for report in reports):
        sys.exit(1)


def print_reports(reports: Sequence[FitReport]) -> None:
    """Prints each report's table (stdout: it is the command's result)."""
    for report in reports:
        print(report.format(), flush=True)
