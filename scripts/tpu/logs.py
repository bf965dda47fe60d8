"""Shows (or collects) the job log of every worker.

    python scripts/tpu/logs.py --name=sft --zone=us-central2-b [--job=train] [--lines=200 | --lines=0 (all)]
        [--follow] [--logs_dir=tpu_logs/sft] [--worker=all|0|1-3] [--status]

--logs_dir writes LOGS_DIR/<worker>.log (overwritten each time); --status prints one
`mathjax-job running|exited RC|interrupted RC|absent` line per worker instead.
"""

from absl import flags

import common
from mathjax.launch import tpu

JOB = flags.DEFINE_string("job", "train", "Job name given to run.py.")
LINES = flags.DEFINE_integer("lines", 200, "Last N lines of each log; 0 = the whole log.")
FOLLOW = flags.DEFINE_bool("follow", False, "Keep streaming (tail -F) until interrupted.")
LOGS_DIR = flags.DEFINE_string("logs_dir", None, "Local dir for one file per worker (<worker>.log).")
WORKER = flags.DEFINE_string("worker", "all", "Workers: all, an index, a list (0,2) or a range (1-3).")
STATUS = flags.DEFINE_bool("status", False, "Print the job's status on each worker instead of its log.")

flags.adopt_module_key_flags(common)  # --help lists the shared flags too


def main(argv):
    del argv
    target = common.target()
    if STATUS.value:
        common.execute([tpu.job_status_command(target, JOB.value)])
        return
    common.execute(tpu.logs_plan(target, JOB.value, LOGS_DIR.value, LINES.value, FOLLOW.value, WORKER.value))


if __name__ == "__main__":
    common.run(main)
