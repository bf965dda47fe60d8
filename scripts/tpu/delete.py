"""Deletes the TPU VM (with --queued_resource: the queued resource and its VM). No prompt.

    python scripts/tpu/delete.py --name=sft --zone=us-central2-b [--queued_resource [--qr_id=ID]] [--dry_run]

The boot disks go with the VM; checkpoints in a gs:// workdir stay.
"""

from absl import flags

import common
from mathjax.launch import tpu

flags.adopt_module_key_flags(common)  # --help lists the shared flags too


def main(argv):
    del argv
    common.execute(tpu.delete_plan(common.target()))


if __name__ == "__main__":
    common.run(main)
