"""RL from the model's own verified samples: GRPO / Dr. GRPO / DAPO options, the grader as the reward.

  python scripts/train_rl.py --config=configs/tiny_grpo.py --workdir=DIR \
      --config.init_from=SFT_WORKDIR_OR_MODEL_DIR --config.data.train_files=A.jsonl \
      --config.data.eval_files=B.jsonl --config.steps=N --config.seed=S \
      [--coordinator_address=HOST:PORT --num_processes=P --process_id=I]

  # Fit check: the GRPO update, the log-prob pass over the rollout batch and the rollout sampler
  # compiled on abstract params for the config's mesh and shapes; memory and collectives per
  # device, then exit (1 if something does not fit). On emulated CPU devices, or a whole Cloud
  # TPU slice with the TPU compiler (libtpu, no TPU needed):
  python scripts/train_rl.py --config=configs/llama2_7b_grpo.py --workdir=/tmp/unused --dry_run \
      --dry_run_devices=8 --device_memory_gib=80
  python scripts/train_rl.py --config=configs/qwen2_5_math_1_5b_grpo.py --workdir=/tmp/unused --dry_run \
      --dry_run_topology=v5litepod-8

DIR/metrics.jsonl gets one line per rollout step (reward_mean, pass_rate, clip_fraction,
kl, entropy, logprob_gap, response_length, tokens_per_sec, ...) and eval lines
(eval_greedy_accuracy, eval_pass_at_k). Re-running with the same workdir resumes; SIGTERM
saves and exits 143. See mathjax/rl/.
"""

import sys

from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "ml_collections config file (configs/*_grpo.py).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Checkpoints, metrics, resolved config.", required=True)
_COORDINATOR = flags.DEFINE_string("coordinator_address", None, "host:port of process 0 (multi-process GPU/CPU).")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Number of processes (multi-process GPU/CPU).")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index (multi-process GPU/CPU).")
_DRY_RUN = flags.DEFINE_bool("dry_run", False, "Fit check of the update step and the rollout sampler, then exit.")
_DRY_RUN_DEVICES = flags.DEFINE_integer("dry_run_devices", None, "With --dry_run on CPU: emulate this many devices.")
_DEVICE_MEMORY_GIB = flags.DEFINE_float("device_memory_gib", None, "With --dry_run: memory per device.")
_DRY_RUN_TOPOLOGY = flags.DEFINE_string("dry_run_topology", None, "With --dry_run: a Cloud TPU accelerator type "
                                         "(v4-32, v5litepod-16, ...) to compile for with the TPU compiler.")
_DRY_RUN_PROMPT_LEN = flags.DEFINE_integer("dry_run_prompt_len", 256, "With --dry_run: longest prompt, in tokens.")


def main(argv):
    del argv
    from mathjax.parallel.mesh import initialize_distributed
    from mathjax.train.config import request_host_devices

    if _CONFIG.value is None:
        raise app.UsageError("--config is required (e.g. --config=configs/tiny_grpo.py)")
    if _DRY_RUN.value:
        import os

        from mathjax.train.fit_check import emulate_devices

        if _DRY_RUN_TOPOLOGY.value:  # the host's own backend is irrelevant (and probing for a TPU only prints errors)
            os.environ.setdefault("JAX_PLATFORMS", "cpu")
        else:
            emulate_devices(_DRY_RUN_DEVICES.value)
        _dry_run()
        return
    request_host_devices(_CONFIG.value.mesh, _NUM_PROCESSES.value or 1)
    initialize_distributed(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
    import jax

    from mathjax.rl.trainer import train_rl
    from mathjax.train.trainer import quiet_dependency_logs

    quiet_dependency_logs()
    if jax.process_index() != 0:
        logging.set_verbosity(logging.WARNING)
    result = train_rl(_CONFIG.value, _WORKDIR.value)
    if result.preempted:
        sys.exit(143)


def _dry_run():
    from mathjax.rl.fit_check import rl_fit_check
    from mathjax.sample import SamplingRules
    from mathjax.sample.fit_check import sample_fit_check
    from mathjax.train.fit_check import GiB, print_verdicts_and_exit, train_model_config

    config = _CONFIG.value
    rl = config.rl
    memory = int(_DEVICE_MEMORY_GIB.value * GiB) if _DEVICE_MEMORY_GIB.value else None
    topology = _DRY_RUN_TOPOLOGY.value
    rows = rl.prompts_per_step * rl.group_size
    try:
        reports = rl_fit_check(config, device_memory=memory, topology=topology)
        reports += sample_fit_check(
            train_model_config(config), config.mesh, batch_size=rl.rollout_batch_size or rows,
            num_samples=rl.group_size, prompt_len=_DRY_RUN_PROMPT_LEN.value, max_new_tokens=rl.max_new_tokens,
            rules=SamplingRules(temperature=rl.temperature, top_p=rl.top_p, top_k=rl.top_k), device_memory=memory,
            topology=topology)
    except (RuntimeError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        sys.exit(2)
    print_verdicts_and_exit(reports)


if __name__ == "__main__":
    app.run(main)
