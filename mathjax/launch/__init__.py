"""Launching mathjax jobs on Cloud TPU VMs and GPU hosts (pure Python; never imports JAX).

- :mod:`~mathjax.launch.tpu`: exact ``gcloud compute tpus`` command lines and plans
  (create / queued resource / install / run on all workers / logs / stop / delete).
- :mod:`~mathjax.launch.remote`: the bash one-liners those plans run on each worker
  (install with ``uv``, ``nohup`` job with pid/exit-status files, status, stop).
- :mod:`~mathjax.launch.babysit`: re-create a preempted VM and re-run the job, which
  resumes from its workdir's latest checkpoint.
- :mod:`~mathjax.launch.gpu`: single-node, multi-host and SLURM launch commands.
- :mod:`~mathjax.launch.xla_flags`: the compiler flags worth setting, with what they do.
- :mod:`~mathjax.launch.runner`: prints (dry run) or runs the command lines.

The scripts under ``scripts/tpu`` and ``scripts/gpu`` only parse flags and call these.
"""

from mathjax.launch.runner import LaunchError, PrintRunner, Result, SubprocessRunner, quote, run_all
from mathjax.launch.tpu import CreateSpec, InstallSpec, JobSpec, TpuTarget

__all__ = [
    "CreateSpec",
    "InstallSpec",
    "JobSpec",
    "LaunchError",
    "PrintRunner",
    "Result",
    "SubprocessRunner",
    "TpuTarget",
    "quote",
    "run_all",
]
