"""Stops the job on every worker (default), or the VM itself.

    python scripts/tpu/stop.py --name=sft --zone=us-central2-b [--job=train] [--timeout_s=180]
    python scripts/tpu/stop.py --name=sft --zone=us-central2-b --target=vm

--target=job sends SIGTERM (the trainer saves a checkpoint and exits), then SIGKILL
after --timeout_s. --target=vm runs `gcloud compute tpus tpu-vm stop`, which the TPU
API supports for single-host VMs only (v4-8, v5litepod-8, ...); delete pod slices instead.
"""

from absl import flags

import common
from mathjax.launch import tpu

TARGET = flags.DEFINE_enum("target", "job", ["job", "vm"], "What to stop.")
JOB = flags.DEFINE_string("job", "train", "Job name given to run.py.")
TIMEOUT = flags.DEFINE_integer("timeout_s", 180, "Seconds between SIGTERM and SIGKILL.")

flags.adopt_module_key_flags(common)  # --help lists the shared flags too


def main(argv):
    del argv
    target = common.target()
    if TARGET.value == "vm":
        common.execute([tpu.stop_vm(target)])
    else:
        common.execute(tpu.stop_job_plan(target, JOB.value, TIMEOUT.value))


if __name__ == "__main__":
    common.run(main)
