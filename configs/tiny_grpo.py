"""CPU GRPO config: the `tiny` preset continued from an SFT workdir on procedural problems, in minutes.

  python scripts/train_rl.py --config=configs/tiny_grpo.py --workdir=/tmp/grpo \
      --config.init_from=/tmp/tiny_sft --config.data.train_files=train.jsonl \
      --config.data.eval_files=test.jsonl --config.steps=30
"""

from mathjax.rl.config import base_rl_config


def get_config():
    c = base_rl_config()
    c.model = "tiny"
    c.seq_len = 256
    c.steps = 30
    c.data.template = "plain"  # as configs/tiny.py trains
    c.optimizer.lr = 2e-4
    c.rl.prompts_per_step = 8
    c.rl.group_size = 8
    c.rl.temperature = 1.0
    c.rl.max_new_tokens = 96
    c.rl.eval_samples = 8
    c.rl.eval_max_questions = 64
    c.checkpoint_every = 10
    c.keep_checkpoints = 2
    c.mesh = "data:-1,fsdp:1,tensor:1"
    c.tensorboard = False
    return c
