"""Keeps a training job running on spot/preemptible TPUs: re-creates a preempted VM and re-runs the job.

    python scripts/tpu/babysit.py --name=sft --zone=us-central2-b --accelerator_type=v4-32 --spot \
        [--queued_resource] [--repo_url=URL] \
        --command='python scripts/train_sft.py --config=configs/llama2_7b_sft.py --workdir=gs://B/run1'

Every --poll_s seconds: read the VM (and queued resource) state and the job status
on every worker; PREEMPTED / TERMINATED / missing -> delete, create, install, run;
job absent or interrupted on a READY VM -> install, run (it resumes from the
workdir); job failed -> the same, at most --max_failures times; all workers exited
0 -> done (exit 0). Use a gs:// workdir: a re-created VM has fresh disks.
--dry_run prints the probe commands, then the re-create plan, then the launch plan.
"""

import sys

from absl import flags, logging

import common
from mathjax.launch import babysit

CREATE = common.define_create_flags()
INSTALL = common.define_install_flags()
JOB = common.define_job_flags()
POLL = flags.DEFINE_float("poll_s", 60.0, "Seconds between checks.")
MAX_FAILURES = flags.DEFINE_integer("max_failures", 3, "Relaunches allowed after the job itself fails.")
MAX_RECREATES = flags.DEFINE_integer("max_recreates", None, "Give up after this many re-creations (default: never).")
TIMEOUT = flags.DEFINE_float("command_timeout_s", 3600.0, "Time limit for each gcloud command.")

flags.adopt_module_key_flags(common)  # --help lists the shared flags too


def main(argv):
    del argv
    sitter = babysit.Babysitter(common.target(), CREATE(), INSTALL(), JOB(), common.runner(TIMEOUT.value),
                                poll_s=POLL.value, max_failures=MAX_FAILURES.value,
                                max_recreates=MAX_RECREATES.value)
    if common.DRY_RUN.value:
        run = common.runner()
        for argv_ in sitter.probe_commands() + sitter.recreate_plan() + sitter.launch_plan():
            run(argv_)
        return
    logging.info("babysitting %s (poll every %.0fs)", sitter.target.name, POLL.value)
    sys.exit(sitter.run())


if __name__ == "__main__":
    common.run(main)
