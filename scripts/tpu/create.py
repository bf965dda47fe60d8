"""Creates a TPU VM (or a queued resource that will create it).

    python scripts/tpu/create.py --name=sft --zone=us-central2-b --accelerator_type=v4-32 [--spot]
        [--queued_resource [--qr_id=ID] [--valid_until_duration=6h]] [--project=P] [--version=V] [--dry_run]
"""

from absl import flags

import common
from mathjax.launch import tpu

CREATE = common.define_create_flags()

flags.adopt_module_key_flags(common)  # --help lists the shared flags too


def main(argv):
    del argv
    common.execute(tpu.create_plan(common.target(), CREATE()))


if __name__ == "__main__":
    common.run(main)
