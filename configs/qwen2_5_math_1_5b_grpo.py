"""GRPO on Qwen2.5-Math-1.5B, Dr. GRPO / DAPO style (no KL, no std, constant normaliser, clip-higher).

  python scripts/train_rl.py --config=configs/qwen2_5_math_1_5b_grpo.py --workdir=DIR \
      --config.init_from=Qwen2.5-Math-1.5B_DIR --config.data.train_files=math_train.jsonl
"""

from mathjax.rl.config import base_rl_config


def get_config():
    c = base_rl_config()
    c.model = "qwen2_5_math_1_5b"  # the shapes; init_from's config.json wins
    c.seq_len = 3072
    c.steps = 400
    c.optimizer.lr = 1e-6
    c.remat_policy = "full"
    c.data.template = "plain"
    c.rl.prompts_per_step = 32
    c.rl.group_size = 8
    c.rl.max_new_tokens = 2560
    c.rl.advantage = "drgrpo"
    c.rl.loss_aggregation = "constant"
    c.rl.clip_high = 0.28
    c.rl.kl_coef = 0.0
    c.rl.drop_equal_groups = True
    c.rl.overlong_buffer = 512
    c.rl.updates_per_rollout = 4
    c.eval_every = 25
    c.rl.eval_max_questions = 500
    c.mesh = "data:1,fsdp:-1,tensor:1"
    return c
