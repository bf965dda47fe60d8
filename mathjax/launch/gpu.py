"""Launch commands for GPU hosts: one 8-GPU node, several nodes by hand, or a SLURM batch script.

Process layout matters with JAX on GPUs:

- **One node**: one process drives all its GPUs; no distributed set-up at all.
- **SLURM**: one process *per GPU* (``--ntasks-per-node=G``). ``jax.distributed.initialize()``
  reads ``SLURM_NTASKS``/``SLURM_PROCID`` and hands process ``SLURM_LOCALID`` the
  GPU with that index, so every task must see all GPUs of its node: the script
  asks for ``--gpus-per-node`` and never ``--gpus-per-task`` (which would leave
  each task one GPU, numbered 0). JAX does this even when the coordinator flags
  are passed explicitly, so one process per node does not work under SLURM.
- **Several nodes without SLURM**: one process per node with explicit
  ``--coordinator_address/--num_processes/--process_id``; each sees all its GPUs.
"""

from __future__ import annotations

import dataclasses
import shlex
from typing import Mapping, Sequence

from mathjax.launch import xla_flags

TRAIN_SCRIPT = "scripts/train_sft.py"


def gpu_env(mem_fraction: float = 0.9, flags: str | None = None,
            extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for a GPU run: XLA may take ``mem_fraction`` of each GPU (JAX's default is 0.75)."""
    env = {"XLA_PYTHON_CLIENT_MEM_FRACTION": f"{mem_fraction:g}",
           "XLA_FLAGS": xla_flags.join(xla_flags.GPU_DEFAULT) if flags is None else flags}
    if not env["XLA_FLAGS"]:
        del env["XLA_FLAGS"]
    env.update(extra or {})
    return env


def train_argv(config: str, workdir: str, mesh: str | None = None, init_from: str | None = None,
               extra: Sequence[str] = (), python: str = "python", script: str = TRAIN_SCRIPT) -> list[str]:
    """``python scripts/train_sft.py --config=... --workdir=... [--config.mesh=...] [--config.init_from=...]``."""
    argv = [python, script, f"--config={config}", f"--workdir={workdir}"]
    if mesh:
        argv.append(f"--config.mesh={mesh}")
    if init_from:
        argv.append(f"--config.init_from={init_from}")
    return argv + list(extra)


def _exports(env: Mapping[str, str]) -> list[str]:
    return [f"export {key}={shlex.quote(value)}" for key, value in env.items()]


def single_node_command(argv: Sequence[str], env: Mapping[str, str]) -> str:
    """One process on one node using all its GPUs: ``ENV=... python scripts/train_sft.py ...``."""
    return " ".join([f"{key}={shlex.quote(value)}" for key, value in env.items()] + [shlex.join(argv)])


def host_commands(hosts: Sequence[str], argv: Sequence[str], env: Mapping[str, str],
                  port: int = 12345) -> list[str]:
    """Several nodes without SLURM: the command to start on each host (host 0 is the coordinator)."""
    if not hosts:
        raise ValueError("need at least one host")
    coordinator = f"{hosts[0]}:{port}"
    return [single_node_command(list(argv) + [f"--coordinator_address={coordinator}",
                                              f"--num_processes={len(hosts)}", f"--process_id={i}"], env)
            for i in range(len(hosts))]


@dataclasses.dataclass(frozen=True)
class SlurmSpec:
    """The ``#SBATCH`` side of a run: N nodes x G GPUs, one process per GPU."""

    nodes: int = 1
    gpus_per_node: int = 8
    job_name: str = "mathjax-sft"
    time: str = "24:00:00"
    partition: str | None = None
    account: str | None = None
    cpus_per_task: int | None = None
    repo_dir: str = "."  # the project checkout on the cluster's shared filesystem
    venv: str = ".venv"  # relative to repo_dir, or absolute
    log_dir: str = "slurm_logs"  # relative to the submit dir; must exist before sbatch
    requeue: bool = True  # let SLURM requeue after a node failure/preemption; the workdir resumes
    signal_s: int = 300  # SIGTERM this long before the time limit: the trainer checkpoints and exits
    explicit_coordinator: bool = False  # pass --coordinator_address/--num_processes/--process_id
    coordinator_port: int = 12345

    def __post_init__(self):
        if self.nodes < 1 or self.gpus_per_node < 1:
            raise ValueError("nodes and gpus_per_node must be >= 1")


def slurm_script(spec: SlurmSpec, argv: Sequence[str], env: Mapping[str, str]) -> str:
    """An ``sbatch`` script that runs ``argv`` as ``nodes x gpus_per_node`` JAX processes."""
    n = spec.nodes * spec.gpus_per_node
    sbatch = [
        f"--job-name={spec.job_name}",
        f"--nodes={spec.nodes}",
        f"--ntasks-per-node={spec.gpus_per_node}",
        f"--gpus-per-node={spec.gpus_per_node}",
    ]
    if spec.cpus_per_task:
        sbatch.append(f"--cpus-per-task={spec.cpus_per_task}")
    sbatch += ["--exclusive", "--mem=0", f"--time={spec.time}"]
    if spec.partition:
        sbatch.append(f"--partition={spec.partition}")
    if spec.account:
        sbatch.append(f"--account={spec.account}")
    sbatch += [f"--output={spec.log_dir}/%x-%j.out", "--open-mode=append"]
    if spec.requeue:
        sbatch.append("--requeue")
    if spec.signal_s > 0:
        sbatch.append(f"--signal=TERM@{spec.signal_s}")

    run = shlex.join(argv)
    if spec.explicit_coordinator:
        # Evaluated per task (single quotes keep $SLURM_PROCID for the task's own shell).
        run = ("bash -c " + shlex.quote(
            f'exec {run} --coordinator_address="$HEAD:{spec.coordinator_port}" '
            '--num_processes="$SLURM_NTASKS" --process_id="$SLURM_PROCID"'))
    lines = [
        "#!/bin/bash",
        f"# mathjax: {spec.nodes} node(s) x {spec.gpus_per_node} GPU(s) = {n} JAX processes, one per GPU.",
        "# jax.distributed.initialize() reads SLURM_NTASKS / SLURM_PROCID / SLURM_LOCALID and gives",
        "# process SLURM_LOCALID the GPU of that index: every task must see all GPUs of its node.",
        *[f"#SBATCH {opt}" for opt in sbatch],
        "",
        "set -euo pipefail",
        f"cd {shlex.quote(spec.repo_dir)}",
        f"source {shlex.quote(spec.venv)}/bin/activate",
        *_exports(env),
    ]
    if spec.explicit_coordinator:
        lines.append('export HEAD="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"')
    lines += [
        'echo "job $SLURM_JOB_ID on $SLURM_JOB_NODELIST (restart ${SLURM_RESTART_COUNT:-0})"',
        # --kill-on-bad-exit: one crashed process ends the step instead of leaving the rest hung.
        f"srun --kill-on-bad-exit=1 {run}",
        "",
    ]
    return "\n".join(lines)
