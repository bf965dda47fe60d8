"""Runs ``mathjax.train.trainer.train`` in a subprocess for the trainer tests (e.g. to SIGKILL it).

  python tests/train_worker.py WORKDIR CONFIG_JSON [--kill_at_step=N --wait_for_checkpoint=C]
      [--coordinator_address=127.0.0.1:PORT --num_processes=2 --process_id=I]
      [--sigterm_at_step=N] [--hold_at_step=N --wait_for_checkpoint=C]

CONFIG_JSON maps dotted config keys to values, applied over
``sft_fixtures.tiny_config``. With ``--kill_at_step`` the process SIGKILLs
itself when step N is logged, once checkpoint C is complete (WORKDIR may be a
``gs://`` URI). ``--hold_at_step`` instead prints ``HOLDING step N`` and
blocks there, for a parent that SIGKILLs several processes at one point.
``--sigterm_at_step`` sends this process a SIGTERM when step N is logged (a
preemption notice). The coordinator flags start ``jax.distributed`` first,
as ``scripts/train_sft.py`` does. Prints ``RESULT {json}`` at the end and
exits 143 when the run stopped for a preemption (as ``train_sft.py``);
prints ``FIRST_STEP n`` when the first step is logged.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def checkpoint_complete(workdir: str, step: int) -> bool:
    """Whether orbax finished checkpoint ``step``: renamed into place locally, a commit file on GCS."""
    from mathjax.io import paths

    directory = paths.join(workdir, "checkpoints", str(step))
    if paths.is_remote(workdir):
        return paths.exists(paths.join(directory, "commit_success.txt"))
    return paths.isdir(directory)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("workdir")
    parser.add_argument("config_json")
    parser.add_argument("--kill_at_step", type=int, default=0)
    parser.add_argument("--hold_at_step", type=int, default=0)
    parser.add_argument("--wait_for_checkpoint", type=int, default=0)
    parser.add_argument("--sigterm_at_step", type=int, default=0)
    parser.add_argument("--coordinator_address", default=None)
    parser.add_argument("--num_processes", type=int, default=None)
    parser.add_argument("--process_id", type=int, default=None)
    args = parser.parse_args()

    from mathjax.parallel.mesh import initialize_distributed

    initialize_distributed(args.coordinator_address, args.num_processes, args.process_id)

    from sft_fixtures import tiny_config

    from mathjax.train.trainer import train

    overrides = json.loads(args.config_json)
    config = tiny_config(overrides.pop("data.train_files"), overrides.pop("tokenizer"), **overrides)

    def wait_for_checkpoint() -> None:
        if args.wait_for_checkpoint:
            deadline = time.time() + 120
            while not checkpoint_complete(args.workdir, args.wait_for_checkpoint) and time.time() < deadline:
                time.sleep(0.05)

    first = []

    def hooks(step: int, metrics: dict) -> None:
        del metrics
        if not first:
            first.append(step)
            print(f"FIRST_STEP {step}", flush=True)  # where this run started (a resumed one: checkpoint + 1)
        if step == args.sigterm_at_step:
            os.kill(os.getpid(), signal.SIGTERM)
        if step == args.kill_at_step:
            wait_for_checkpoint()
            os.kill(os.getpid(), signal.SIGKILL)
        if step == args.hold_at_step:
            wait_for_checkpoint()
            print(f"HOLDING step {step}", flush=True)
            time.sleep(600)

    result = train(config, args.workdir, callbacks=[hooks])
    print("RESULT " + json.dumps({"step": result.step, "preempted": result.preempted}), flush=True)
    if result.preempted:
        sys.exit(143)


if __name__ == "__main__":
    main()
