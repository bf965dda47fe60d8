"""GRPO on Qwen3-1.7B (DAPO options: token-level loss, clip-higher, dynamic sampling, overlong penalty).

  python scripts/train_rl.py --config=configs/qwen3_1_7b_grpo.py --workdir=DIR \
      --config.init_from=Qwen3-1.7B_DIR --config.data.train_files=math_train.jsonl
"""

from mathjax.rl.config import base_rl_config


def get_config():
    c = base_rl_config()
    c.model = "qwen3_1_7b"
    c.seq_len = 4096
    c.steps = 400
    c.optimizer.lr = 1e-6
    c.remat_policy = "full"
    c.data.template = "plain"
    c.rl.prompts_per_step = 32
    c.rl.group_size = 16
    c.rl.max_new_tokens = 3584
    c.rl.loss_aggregation = "token"
    c.rl.clip_high = 0.28
    c.rl.drop_equal_groups = True
    c.rl.overlong_buffer = 512
    c.rl.updates_per_rollout = 8
    c.eval_every = 25
    c.rl.eval_max_questions = 500
    c.mesh = "data:1,fsdp:-1,tensor:1"
    return c
