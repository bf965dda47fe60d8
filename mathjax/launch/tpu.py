"""Exact ``gcloud`` command lines for Cloud TPU VMs and queued resources (pure Python, no JAX).

Every function returns an argv list (``["gcloud", "compute", "tpus", ...]``)
or a list of them (a *plan*); :mod:`mathjax.launch.runner` prints or runs them.
Flag spellings follow the ``gcloud compute tpus`` reference (SDK 528): ``tpu-vm
create --version``, ``queued-resources create --runtime-version --node-id``,
``ssh/scp --worker=all``, ``ssh --command --output-directory``.

Multi-host slices (v4-32 = 16 chips on 4 hosts) run the same command on every
host (``--worker=all``); JAX finds its peers by itself, so nothing per-host is
passed. ``gcloud`` needs your SSH key in the agent for ``--worker=all``
(``ssh-add ~/.ssh/google_compute_engine``).
"""

from __future__ import annotations

import dataclasses
import os
import re

from mathjax.launch import remote
from mathjax.launch.runner import Argv

TPUS = ["gcloud", "compute", "tpus"]

# Runtime (software) versions Google recommends for JAX, by TPU generation
# (cloud.google.com/tpu/docs/runtimes).
RUNTIME_VERSIONS = {
    "v2": "tpu-ubuntu2204-base",
    "v3": "tpu-ubuntu2204-base",
    "v4": "tpu-ubuntu2204-base",
    "v5litepod": "v2-alpha-tpuv5-lite",
    "v5e": "v2-alpha-tpuv5-lite",
    "v5p": "v2-alpha-tpuv5",
    "v6e": "v2-alpha-tpuv6e",
}

# Files a local-tree tarball leaves out: VCS data, environments, caches, run outputs.
TARBALL_EXCLUDES = (".git", ".venv", "__pycache__", "*.pyc", "*.egg-info", ".pytest_cache",
                    "build", "dist", "workdir*", "runs", "bench_out", "demo_out", "tpu_logs", "slurm_logs")

_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def default_runtime_version(accelerator_type: str) -> str:
    """``v4-32`` -> ``tpu-ubuntu2204-base``, ``v5litepod-16`` -> ``v2-alpha-tpuv5-lite``, ..."""
    generation = accelerator_type.split("-", 1)[0]
    if generation not in RUNTIME_VERSIONS:
        raise ValueError(f"no default runtime version for accelerator type {accelerator_type!r}; pass --version")
    return RUNTIME_VERSIONS[generation]


@dataclasses.dataclass(frozen=True)
class TpuTarget:
    """Which TPU VM (and optionally which queued resource) the commands address."""

    name: str
    zone: str
    project: str | None = None
    queued_resource: str | None = None  # QR id when the VM is (re)created through a queued resource

    def __post_init__(self):
        for label, value in (("name", self.name), ("queued resource id", self.queued_resource)):
            if value is not None and not _NAME.match(value):
                raise ValueError(f"TPU {label} {value!r}: use lowercase letters, digits and '-', "
                                 "starting with a letter")
        if not self.zone:
            raise ValueError("a zone is required (e.g. --zone=us-central2-b)")

    def scope(self) -> Argv:
        """``--zone=Z [--project=P]``, appended to every command."""
        return [f"--zone={self.zone}"] + ([f"--project={self.project}"] if self.project else [])


# --------------------------------------------------------------------------- single commands


def create_vm(target: TpuTarget, accelerator_type: str, version: str | None = None,
              spot: bool = False, preemptible: bool = False) -> Argv:
    """``gcloud compute tpus tpu-vm create`` (returns when the VM is READY or failed)."""
    if spot and preemptible:
        raise ValueError("choose --spot or --preemptible, not both")
    return (TPUS + ["tpu-vm", "create", target.name, f"--zone={target.zone}",
                    f"--accelerator-type={accelerator_type}",
                    f"--version={version or default_runtime_version(accelerator_type)}"]
            + (["--spot"] if spot else []) + (["--preemptible"] if preemptible else [])
            + _project(target))


def create_queued_resource(target: TpuTarget, accelerator_type: str, version: str | None = None,
                           spot: bool = False, valid_until_duration: str | None = None) -> Argv:
    """``gcloud compute tpus queued-resources create QR --node-id=NAME`` (returns once queued).

    The request waits in the queue (``WAITING_FOR_RESOURCES``) until capacity
    frees up, then becomes ``ACTIVE`` with the VM ``READY``.
    """
    qr = _require_qr(target)
    return (TPUS + ["queued-resources", "create", qr, f"--node-id={target.name}", f"--zone={target.zone}",
                    f"--accelerator-type={accelerator_type}",
                    f"--runtime-version={version or default_runtime_version(accelerator_type)}"]
            + (["--spot"] if spot else [])
            + ([f"--valid-until-duration={valid_until_duration}"] if valid_until_duration else [])
            + _project(target))


def describe_vm_state(target: TpuTarget) -> Argv:
    """Prints the VM state (``READY``, ``PREEMPTED``, ...); fails with ``NOT_FOUND`` when there is none."""
    return TPUS + ["tpu-vm", "describe", target.name, *target.scope(), "--format=value(state)"]


def describe_queued_resource_state(target: TpuTarget) -> Argv:
    """Prints the queued resource state (``WAITING_FOR_RESOURCES``, ``ACTIVE``, ``SUSPENDED``, ...)."""
    return TPUS + ["queued-resources", "describe", _require_qr(target), *target.scope(),
                   "--format=value(state.state)"]


def ssh(target: TpuTarget, command: str, worker: str = "all", output_directory: str | None = None) -> Argv:
    """Runs ``command`` on the workers; with ``output_directory`` each worker's output goes to ``DIR/<worker>.log``."""
    return (TPUS + ["tpu-vm", "ssh", target.name, *target.scope(), f"--worker={worker}", f"--command={command}"]
            + ([f"--output-directory={output_directory}"] if output_directory else []))


def scp_to_workers(target: TpuTarget, local_path: str, remote_path: str, worker: str = "all",
                   recurse: bool = False) -> Argv:
    """Copies a local file (or dir with ``recurse``) to ``remote_path`` (relative to ``$HOME``) on the workers."""
    return (TPUS + ["tpu-vm", "scp", local_path, f"{target.name}:{remote_path}", *target.scope(), f"--worker={worker}"]
            + (["--recurse"] if recurse else []))


def stop_vm(target: TpuTarget) -> Argv:
    """``tpu-vm stop``. The TPU API only stops single-host VMs; for pod slices stop the job or delete."""
    return TPUS + ["tpu-vm", "stop", target.name, *target.scope()]


def delete_vm(target: TpuTarget) -> Argv:
    """``tpu-vm delete --quiet`` (no confirmation prompt)."""
    return TPUS + ["tpu-vm", "delete", target.name, *target.scope(), "--quiet"]


def delete_queued_resource(target: TpuTarget) -> Argv:
    """``queued-resources delete --force --quiet``: ``--force`` deletes its VM first."""
    return TPUS + ["queued-resources", "delete", _require_qr(target), *target.scope(), "--force", "--quiet"]


# --------------------------------------------------------------------------- plans


@dataclasses.dataclass(frozen=True)
class CreateSpec:
    """What to create: accelerator, runtime, provisioning model, and whether through a queued resource."""

    accelerator_type: str = "v4-32"
    version: str | None = None  # None: default_runtime_version(accelerator_type)
    spot: bool = False
    preemptible: bool = False
    queued: bool = False  # create through `queued-resources create` (needs target.queued_resource)
    valid_until_duration: str | None = None  # queued resources only, e.g. "6h"


def create_plan(target: TpuTarget, spec: CreateSpec) -> list[Argv]:
    """The one command that creates the VM (directly or as a queued resource)."""
    if spec.queued:
        if spec.preemptible:
            raise ValueError("queued resources take --spot, not --preemptible")
        return [create_queued_resource(target, spec.accelerator_type, spec.version, spec.spot,
                                       spec.valid_until_duration)]
    if spec.valid_until_duration:
        raise ValueError("--valid_until_duration applies to queued resources only")
    return [create_vm(target, spec.accelerator_type, spec.version, spec.spot, spec.preemptible)]


def delete_plan(target: TpuTarget) -> list[Argv]:
    """Deletes the queued resource (and its VM) when there is one, else the VM."""
    return [delete_queued_resource(target) if target.queued_resource else delete_vm(target)]


@dataclasses.dataclass(frozen=True)
class InstallSpec:
    """Where the code comes from and how the environment is built on the workers.

    ``repo_url`` set: every worker clones it and checks out ``ref``. Otherwise
    ``local_dir`` is packed with ``tar`` (minus :data:`TARBALL_EXCLUDES`),
    copied to every worker, and unpacked over ``remote_dir``.
    """

    repo_url: str | None = None
    ref: str = "main"
    local_dir: str = "."
    remote_dir: str = "mathjax"
    python_version: str = "3.11"
    extras: str = "tpu"
    tarball: str | None = None  # local path of the tarball; default: /tmp/mathjax-src-<name>.tar.gz


def install_plan(target: TpuTarget, spec: InstallSpec) -> list[Argv]:
    """[tar, scp,] ssh --worker=all: the project installed with ``pip install -e .[tpu]`` on every worker."""
    steps: list[Argv] = []
    if spec.repo_url:
        source: remote.GitSource | remote.TarballSource = remote.GitSource(spec.repo_url, spec.ref)
    else:
        source = remote.TarballSource()
        tarball = spec.tarball or os.path.join("/tmp", f"mathjax-src-{target.name}.tar.gz")
        steps.append(["tar", "-czf", tarball, "-C", spec.local_dir]
                     + [f"--exclude={pattern}" for pattern in TARBALL_EXCLUDES] + ["."])
        steps.append(scp_to_workers(target, tarball, source.remote_name))
    steps.append(ssh(target, remote.install_script(source, spec.remote_dir, spec.python_version, spec.extras)))
    return steps


@dataclasses.dataclass(frozen=True)
class JobSpec:
    """A command run from the project dir on every worker, inside its venv."""

    command: str
    name: str = "train"
    env: dict[str, str] = dataclasses.field(default_factory=dict)
    remote_dir: str = "mathjax"


def run_plan(target: TpuTarget, job: JobSpec, logs_dir: str | None = None, follow: bool = True) -> list[Argv]:
    """Launches ``job`` on all workers under ``nohup``; with ``logs_dir`` (and ``follow``) streams
    each worker's output into ``logs_dir/<worker>.log`` until the job ends."""
    script = remote.launch_script(job.name, job.command, job.remote_dir, job.env, follow=follow)
    if logs_dir and follow:
        return [["mkdir", "-p", logs_dir], ssh(target, script, output_directory=logs_dir)]
    return [ssh(target, script)]


def logs_plan(target: TpuTarget, job_name: str = "train", logs_dir: str | None = None,
              lines: int = 200, follow: bool = False, worker: str = "all") -> list[Argv]:
    """The last ``lines`` of the job log of every worker (into ``logs_dir/<worker>.log`` when given)."""
    command = remote.tail_script(job_name, lines, follow)
    if logs_dir:
        return [["mkdir", "-p", logs_dir], ssh(target, command, worker, output_directory=logs_dir)]
    return [ssh(target, command, worker)]


def job_status_command(target: TpuTarget, job_name: str = "train") -> Argv:
    """One ``mathjax-job ...`` line per worker (see :func:`remote.parse_status`)."""
    return ssh(target, remote.status_script(job_name))


def stop_job_plan(target: TpuTarget, job_name: str = "train", timeout_s: int = 180) -> list[Argv]:
    """SIGTERM (checkpoint and exit) to the job on every worker; SIGKILL after ``timeout_s``."""
    return [ssh(target, remote.stop_job_script(job_name, timeout_s))]


def _project(target: TpuTarget) -> Argv:
    return [f"--project={target.project}"] if target.project else []


def _require_qr(target: TpuTarget) -> str:
    if not target.queued_resource:
        raise ValueError("this command needs a queued resource id (--queued_resource)")
    return target.queued_resource
