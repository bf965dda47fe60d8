"""Flags shared by the scripts in scripts/tpu/, and their print-or-run step.

Each ``define_*`` function defines one group of absl flags and returns a
function that builds the matching :mod:`mathjax.launch.tpu` spec from them,
so a script shows only the flags it uses.
"""

from __future__ import annotations

import sys
from typing import Callable, Sequence

from absl import app, flags

from mathjax.launch import runner as runner_lib
from mathjax.launch import tpu, xla_flags
from mathjax.launch.remote import env_pairs

NAME = flags.DEFINE_string("name", None, "TPU VM name (lowercase letters, digits and '-').", required=True)
ZONE = flags.DEFINE_string("zone", None, "Zone, e.g. us-central2-b (v4), us-east5-b (v5p).", required=True)
PROJECT = flags.DEFINE_string("project", None, "GCP project (default: the one gcloud is configured with).")
QUEUED = flags.DEFINE_bool("queued_resource", False,
                           "The VM comes from a queued resource (create/delete/babysit go through it).")
QR_ID = flags.DEFINE_string("qr_id", None, "Queued resource id (default: NAME-qr).")
DRY_RUN = flags.DEFINE_bool("dry_run", False, "Print the exact commands, one per line, and run nothing.")
REMOTE_DIR = flags.DEFINE_string("remote_dir", "mathjax", "Project dir on the workers, relative to $HOME "
                                 "(used by install, run and babysit).")


def target() -> tpu.TpuTarget:
    qr = (QR_ID.value or f"{NAME.value}-qr") if QUEUED.value else None
    return tpu.TpuTarget(NAME.value, ZONE.value, PROJECT.value, qr)


def runner(timeout_s: float | None = None) -> runner_lib.Runner:
    return runner_lib.PrintRunner() if DRY_RUN.value else runner_lib.SubprocessRunner(timeout_s)


def execute(steps: Sequence[runner_lib.Argv]) -> None:
    """Prints (``--dry_run``) or runs ``steps`` in order, stopping at the first failure."""
    runner_lib.run_all(steps, runner())


def run(main: Callable[[list[str]], None]) -> None:
    """``app.run(main)``, with bad flag values and failed commands reported as one line and exit status 1."""

    def guarded(argv: list[str]) -> None:
        try:
            main(argv)
        except (ValueError, runner_lib.LaunchError) as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(1)

    app.run(guarded)


def define_create_flags() -> Callable[[], tpu.CreateSpec]:
    accel = flags.DEFINE_string("accelerator_type", "v4-32", "e.g. v4-32, v5litepod-16, v5p-8, v6e-8.")
    version = flags.DEFINE_string("version", None, "TPU runtime version (default: the one recommended for "
                                  "JAX on that generation, e.g. tpu-ubuntu2204-base for v4).")
    spot = flags.DEFINE_bool("spot", False, "Spot capacity: much cheaper, can be preempted at any time.")
    preemptible = flags.DEFINE_bool("preemptible", False, "Legacy preemptible VM (24 h limit); prefer --spot.")
    valid_until = flags.DEFINE_string("valid_until_duration", None,
                                      "Queued resources: drop the request if not granted within this, e.g. 6h.")
    return lambda: tpu.CreateSpec(accel.value, version.value, spot.value, preemptible.value,
                                  QUEUED.value, valid_until.value)


def define_install_flags() -> Callable[[], tpu.InstallSpec]:
    repo = flags.DEFINE_string("repo_url", None, "Git URL every worker clones (default: copy the local tree).")
    ref = flags.DEFINE_string("ref", "main", "Branch, tag or commit to check out with --repo_url.")
    local = flags.DEFINE_string("local_dir", ".", "Local project dir to tar and copy when no --repo_url.")
    python = flags.DEFINE_string("python_version", "3.11", "Python for the workers' venv (uv fetches it).")
    extras = flags.DEFINE_string("extras", "tpu", "pip extras to install (pip install -e .[EXTRAS]).")
    return lambda: tpu.InstallSpec(repo.value, ref.value, local.value, REMOTE_DIR.value, python.value,
                                   extras.value)


def define_job_flags(command_required: bool = True) -> Callable[[], tpu.JobSpec]:
    command = flags.DEFINE_string("command", None, "Command run from the project dir in its venv on every "
                                  "worker, e.g. 'python scripts/train_sft.py --config=... --workdir=gs://...'.",
                                  required=command_required)
    job = flags.DEFINE_string("job", "train", "Job name: its log is ~/mathjax_logs/JOB.log on each worker.")
    env = flags.DEFINE_multi_string("env", [], "NAME=VALUE exported for the job (repeatable).")
    perf = flags.DEFINE_bool("xla_perf_flags", False, "Export LIBTPU_INIT_ARGS with the async-collective "
                             "flags of mathjax.launch.xla_flags (overlap FSDP gathers with compute).")

    def build() -> tpu.JobSpec:
        job_env = {}
        if perf.value:
            job_env["LIBTPU_INIT_ARGS"] = xla_flags.join(xla_flags.TPU_COLLECTIVE_OVERLAP)
        job_env.update(env_pairs(env.value))
        return tpu.JobSpec(command.value or "", job.value, job_env, REMOTE_DIR.value)

    return build
