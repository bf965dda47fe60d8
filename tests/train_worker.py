"""Runs ``mathjax.train.trainer.train`` in a subprocess for the trainer tests (e.g. to SIGKILL it).

  python tests/train_worker.py WORKDIR CONFIG_JSON [--kill_at_step=N --wait_for_checkpoint=C]

CONFIG_JSON maps dotted config keys to values, applied over
``sft_fixtures.tiny_config``. With ``--kill_at_step`` the process SIGKILLs
itself when step N is logged, once checkpoint C is complete on disk.
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("workdir")
    parser.add_argument("config_json")
    parser.add_argument("--kill_at_step", type=int, default=0)
    parser.add_argument("--wait_for_checkpoint", type=int, default=0)
    args = parser.parse_args()

    from sft_fixtures import tiny_config

    from mathjax.train.trainer import train

    overrides = json.loads(args.config_json)
    config = tiny_config(overrides.pop("data.train_files"), overrides.pop("tokenizer"), **overrides)

    def kill(step: int, metrics: dict) -> None:
        del metrics
        if step != args.kill_at_step:
            return
        if args.wait_for_checkpoint:
            done = os.path.join(args.workdir, "checkpoints", str(args.wait_for_checkpoint))
            deadline = time.time() + 120
            while not os.path.isdir(done) and time.time() < deadline:
                time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGKILL)

    train(config, args.workdir, callbacks=[kill] if args.kill_at_step else [])


if __name__ == "__main__":
    main()
