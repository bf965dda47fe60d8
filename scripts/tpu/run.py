"""Runs one command on every worker under nohup, from the project dir and in its venv.

    python scripts/tpu/run.py --name=sft --zone=us-central2-b --logs_dir=tpu_logs/sft \
        --command='python scripts/train_sft.py --config=configs/llama2_7b_sft.py --workdir=gs://B/run1'

The job keeps running if this script (or your connection) stops; a running job of
the same --job name is stopped first (SIGTERM: checkpoint and exit). With
--logs_dir each worker's output is streamed into LOGS_DIR/<worker>.log until the
job ends; --nofollow returns as soon as it started (read logs with logs.py).
"""

from absl import flags

import common
from mathjax.launch import tpu

JOB = common.define_job_flags()
LOGS_DIR = flags.DEFINE_string("logs_dir", None, "Local dir for one log file per worker (<worker>.log); "
                               "default: all workers' output on this terminal.")
FOLLOW = flags.DEFINE_bool("follow", True, "Stream the output until the job ends (else return at once).")

flags.adopt_module_key_flags(common)  # --help lists the shared flags too


def main(argv):
    del argv
    common.execute(tpu.run_plan(common.target(), JOB(), LOGS_DIR.value, FOLLOW.value))


if __name__ == "__main__":
    common.run(main)
