"""Writes (and submits) a SLURM batch script that runs scripts/train_sft.py on N nodes x G GPUs.

    python scripts/gpu/launch_slurm.py --nodes=2 --gpus_per_node=8 --partition=gpu \
        --repo_dir=/shared/mathjax --config=configs/llama2_7b_sft.py --workdir=/shared/runs/sft7b \
        --init_from=/shared/models/Llama-2-7b-hf [--extra=--config.micro_batches=2] [--dry_run]

One JAX process per GPU; jax.distributed.initialize() configures itself from the
SLURM environment (--explicit_coordinator passes --coordinator_address /
--num_processes / --process_id instead). --dry_run prints the script and submits
nothing; otherwise it is written to --script_path and, with --submit, passed to sbatch.
For one 8-GPU node without SLURM, --single_node prints the plain command instead.
"""

import os
import sys

from absl import app, flags

from mathjax.launch import gpu
from mathjax.launch.remote import env_pairs
from mathjax.launch.runner import LaunchError, SubprocessRunner, run_all

CONFIG = flags.DEFINE_string("config", "configs/llama2_7b_sft.py", "Training config file.")
WORKDIR = flags.DEFINE_string("workdir", None, "Run dir on shared storage (resumes from its checkpoints).",
                              required=True)
MESH = flags.DEFINE_string("mesh", None, "Mesh override, e.g. data:1,fsdp:-1,tensor:1.")
INIT_FROM = flags.DEFINE_string("init_from", None, "Hugging Face dir (or checkpoint) to start from.")
EXTRA = flags.DEFINE_multi_string("extra", [], "Extra argument for train_sft.py (repeatable), "
                                  "e.g. --extra=--config.micro_batches=2.")
NODES = flags.DEFINE_integer("nodes", 1, "Number of nodes.")
GPUS = flags.DEFINE_integer("gpus_per_node", 8, "GPUs per node (= processes per node).")
JOB_NAME = flags.DEFINE_string("job_name", "mathjax-sft", "SLURM job name.")
TIME = flags.DEFINE_string("time", "24:00:00", "SLURM time limit.")
PARTITION = flags.DEFINE_string("partition", None, "SLURM partition.")
ACCOUNT = flags.DEFINE_string("account", None, "SLURM account.")
CPUS = flags.DEFINE_integer("cpus_per_task", None, "CPUs per process (data loading, grading).")
REPO_DIR = flags.DEFINE_string("repo_dir", os.getcwd(), "Project checkout on the cluster (shared filesystem).")
VENV = flags.DEFINE_string("venv", ".venv", "Virtualenv with `pip install -e .[cuda]` (relative to repo_dir).")
LOG_DIR = flags.DEFINE_string("slurm_log_dir", "slurm_logs", "Where SLURM writes JOB-ID.out (created here).")
REQUEUE = flags.DEFINE_bool("requeue", True, "Allow SLURM to requeue the job; it resumes from the workdir.")
SIGNAL_S = flags.DEFINE_integer("signal_s", 300, "Send SIGTERM this many seconds before the time limit "
                                "(the trainer checkpoints and exits); 0 = off.")
EXPLICIT = flags.DEFINE_bool("explicit_coordinator", False,
                             "Pass --coordinator_address/--num_processes/--process_id explicitly.")
PORT = flags.DEFINE_integer("coordinator_port", 12345, "Coordinator port with --explicit_coordinator.")
XLA = flags.DEFINE_string("xla_flags", None, "XLA_FLAGS (default: mathjax.launch.xla_flags.GPU_DEFAULT).")
MEM = flags.DEFINE_float("mem_fraction", 0.9, "XLA_PYTHON_CLIENT_MEM_FRACTION (JAX's default is 0.75).")
ENV = flags.DEFINE_multi_string("env", [], "NAME=VALUE exported in the script (repeatable).")
SCRIPT = flags.DEFINE_string("script_path", "slurm_logs/mathjax_sft.sbatch", "Where to write the script.")
SUBMIT = flags.DEFINE_bool("submit", True, "Run `sbatch SCRIPT` after writing it.")
SINGLE = flags.DEFINE_bool("single_node", False, "Print the command for one node without SLURM and exit.")
DRY_RUN = flags.DEFINE_bool("dry_run", False, "Print the script (or command); write and submit nothing.")


def main(argv):
    del argv
    train = gpu.train_argv(CONFIG.value, WORKDIR.value, MESH.value, INIT_FROM.value, EXTRA.value)
    env = gpu.gpu_env(MEM.value, XLA.value, env_pairs(ENV.value))
    if SINGLE.value:
        print(gpu.single_node_command(train, env))
        return
    spec = gpu.SlurmSpec(NODES.value, GPUS.value, JOB_NAME.value, TIME.value, PARTITION.value, ACCOUNT.value,
                         CPUS.value, REPO_DIR.value, VENV.value, LOG_DIR.value, REQUEUE.value, SIGNAL_S.value,
                         EXPLICIT.value, PORT.value)
    script = gpu.slurm_script(spec, train, env)
    if DRY_RUN.value:
        print(script, end="")
        return
    os.makedirs(LOG_DIR.value, exist_ok=True)  # SLURM does not create the --output dir
    os.makedirs(os.path.dirname(SCRIPT.value) or ".", exist_ok=True)
    with open(SCRIPT.value, "w", encoding="utf-8") as f:
        f.write(script)
    print(f"wrote {SCRIPT.value}", file=sys.stderr)
    if SUBMIT.value:
        run_all([["sbatch", SCRIPT.value]], SubprocessRunner())


def guarded_main(argv):
    try:
        main(argv)
    except (ValueError, LaunchError) as e:  # bad flag values, sbatch missing or failing
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    app.run(guarded_main)
