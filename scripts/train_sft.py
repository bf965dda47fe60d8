"""Supervised fine-tuning (or from-scratch training) of a LLaMA-family model on math Q/A data.

  python scripts/train_sft.py --config=configs/tiny.py --workdir=/tmp/run \
      --config.data.train_files=train.jsonl --config.tokenizer=tokenizer_dir \
      [--config.steps=300 --config.mesh=data:1,fsdp:-1,tensor:1 --config.init_from=HF_DIR] \
      [--coordinator_address=HOST:PORT --num_processes=P --process_id=I]

  # Fit check: compile the train step on abstract params (nothing allocated, no data
  # or tokenizer read) and print per-device memory and FLOPs per step, then exit.
  python scripts/train_sft.py --config=configs/llama2_7b_sft.py --workdir=/tmp/unused --dry_run \
      --dry_run_devices=8 [--config.mesh=data:1,fsdp:4,tensor:2 --device_memory_gib=80]

  # The same for a Cloud TPU slice, compiled by the real TPU compiler on this host
  # (pip install libtpu; no TPU needed): memory against the chip's HBM, and the
  # collectives of one step from the compiled HLO. Exit 0 fits, 1 does not.
  python scripts/train_sft.py --config=configs/llama2_7b_sft.py --workdir=/tmp/unused --dry_run \
      --dry_run_topology=v4-32 [--config.mesh=data:1,fsdp:-1,tensor:1]

Any config key is overridable as --config.key=value. Re-running with the same
workdir resumes from its latest checkpoint. Exits with status 143 after saving
a checkpoint on SIGTERM (preemption). See mathjax/train/trainer.py.
"""

import sys

from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "ml_collections config file (configs/*.py).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Checkpoints, metrics, resolved config.", required=True)
_COORDINATOR = flags.DEFINE_string("coordinator_address", None, "host:port of process 0 (multi-process GPU/CPU).")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Number of processes (multi-process GPU/CPU).")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index (multi-process GPU/CPU).")
_PROGRESS = flags.DEFINE_bool("progress", None, "tqdm progress bar (default: when stderr is a terminal).")
_DRY_RUN = flags.DEFINE_bool("dry_run", False, "Fit check: compile on abstract params, print memory and FLOPs, exit.")
_DRY_RUN_DEVICES = flags.DEFINE_integer("dry_run_devices", None, "With --dry_run on CPU: emulate this many devices.")
_DRY_RUN_TOPOLOGY = flags.DEFINE_string("dry_run_topology", None, "With --dry_run: a Cloud TPU accelerator type "
                                        "(v4-32, v5litepod-64, v5p-128, v6e-16, ...) to compile for.")
_DEVICE_MEMORY_GIB = flags.DEFINE_float("device_memory_gib", None, "With --dry_run: memory per device to compare "
                                        "against (default: what the backend reports; CPU reports none).")


def main(argv):
    del argv
    from mathjax.parallel.mesh import initialize_distributed
    from mathjax.train.config import request_host_devices

    if _CONFIG.value is None:
        raise app.UsageError("--config is required (e.g. --config=configs/tiny.py)")
    if _DRY_RUN.value and _DRY_RUN_TOPOLOGY.value:
        _dry_run_topology()
        return
    if _DRY_RUN.value:
        from mathjax.train.fit_check import emulate_devices

        emulate_devices(_DRY_RUN_DEVICES.value)
    # On CPU hosts, emulate as many devices as the mesh names (no-op elsewhere).
    request_host_devices(_CONFIG.value.mesh, _NUM_PROCESSES.value or 1)

    # Before anything touches a JAX backend.
    initialize_distributed(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
    import jax

    from mathjax.train.trainer import quiet_dependency_logs, train

    quiet_dependency_logs()
    if jax.process_index() != 0:
        logging.set_verbosity(logging.WARNING)
    if _DRY_RUN.value:
        from mathjax.train.fit_check import GiB, print_reports, train_fit_check

        memory = int(_DEVICE_MEMORY_GIB.value * GiB) if _DEVICE_MEMORY_GIB.value else None
        report = train_fit_check(_CONFIG.value, device_memory=memory)
        print_reports([report])
        print(report.verdict(), flush=True)
        if report.fits is False:
            sys.exit(1)
        return
    result = train(_CONFIG.value, _WORKDIR.value, progress=_PROGRESS.value)
    if result.preempted:
        sys.exit(143)


def _dry_run_topology():
    """Compiles for a whole TPU slice from this host: no distributed start-up, no local accelerator."""
    import os

    # The host's own backend is irrelevant (and on a non-TPU host with libtpu
    # installed, probing for a TPU only prints errors).
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    from mathjax.train.fit_check import GiB, print_reports, train_fit_check

    memory = int(_DEVICE_MEMORY_GIB.value * GiB) if _DEVICE_MEMORY_GIB.value else None
    try:
        report = train_fit_check(_CONFIG.value, device_memory=memory, topology=_DRY_RUN_TOPOLOGY.value)
    except (RuntimeError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        sys.exit(2)
    print_reports([report])
    print(report.verdict(), flush=True)
    if not report.fits:
        sys.exit(1)


if __name__ == "__main__":
    app.run(main)
