"""GRPO on LLaMA-2 7B after SFT (DeepSeekMath's recipe: G=64 per prompt, lr 1e-6, KL 0.04).

  python scripts/train_rl.py --config=configs/llama2_7b_grpo.py --workdir=gs://bucket/grpo7b \
      --config.init_from=gs://bucket/sft7b --config.data.train_files=gsm8k_math_train.jsonl \
      --config.data.eval_files=gsm8k_test.jsonl
"""

from mathjax.rl.config import base_rl_config


def get_config():
    c = base_rl_config()
    c.model = "llama2_7b"
    c.seq_len = 1536
    c.steps = 500
    c.optimizer.lr = 1e-6
    c.remat_policy = "full"
    c.rl.prompts_per_step = 16
    c.rl.group_size = 64
    c.rl.max_new_tokens = 1024
    c.rl.kl_coef = 0.04
    c.rl.updates_per_rollout = 16  # minibatches of 64 rows
    c.eval_every = 50
    c.rl.eval_max_questions = 500
    c.mesh = "data:1,fsdp:-1,tensor:1"
    return c
