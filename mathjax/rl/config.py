"""The RL config schema: the SFT schema (model, mesh, optimizer, checkpoints) plus ``rl.*``.

``configs/*_grpo.py`` start from :func:`base_rl_config`; any key is
overridable as ``--config.rl.group_size=16`` etc.
"""

from __future__ import annotations

import ml_collections

from mathjax.train.config import base_config


def base_rl_config() -> ml_collections.ConfigDict:
    c = base_config()
    c.steps = 100  # rollout steps (each: sample, grade, `updates_per_rollout` optimizer updates)
    c.epochs = 0.0
    c.batch_size = 0  # unused: rows per update = prompts_per_step x group_size / updates_per_rollout
    c.seq_len = 1024  # prompt + response tokens per training row
    c.optimizer.lr = 1e-6
    c.optimizer.schedule = "constant"
    c.optimizer.warmup_steps = 0
    c.optimizer.warmup_ratio = 0.0
    c.optimizer.weight_decay = 0.0
    c.optimizer.clip_norm = 1.0
    c.checkpoint_every = 50
    c.log_every = 1
    c.eval_every = 0  # 0: only at the end (when data.eval_files is set)
    c.data.template = "xwin_math"
    c.rl = ml_collections.ConfigDict()
    c.rl.prompts_per_step = 32
    c.rl.group_size = 8  # G samples per prompt (one shared prompt KV in the sampler)
    c.rl.temperature = 1.0
    c.rl.top_p = 1.0
    c.rl.top_k = 0
    c.rl.max_new_tokens = 512
    c.rl.rollout_batch_size = 0  # sampler rows; 0 = prompts_per_step x group_size
    c.rl.rewards = "correct:1"  # name:weight,... (mathjax.rl.rewards; `format` = explicit final-answer marker)
    c.rl.advantage = "grpo"  # grpo (mean/std) | drgrpo (mean only)
    c.rl.loss_aggregation = "sequence"  # sequence (GRPO) | token (DAPO) | constant (Dr. GRPO)
    c.rl.clip_low = 0.2
    c.rl.clip_high = 0.2  # > clip_low: DAPO clip-higher (0.28)
    c.rl.kl_coef = 0.0  # > 0: k3 KL to the frozen initial model (kept in memory as compute-dtype params)
    c.rl.drop_equal_groups = False  # DAPO: groups whose rewards are all equal get no weight
    c.rl.overlong_buffer = 0  # DAPO soft overlong penalty over the last N tokens before max_new_tokens
    c.rl.overlong_factor = 1.0
    c.rl.process_coef = 0.0  # > 0: + coef x grader-checked step credit per token (mathjax.rl.process; GRPO+PS)
    # Leave rows whose advantage is 0 everywhere (groups of equal rewards) out of the update: the same
    # loss and gradient for less compute; needs kl_coef = 0 (mathjax.rl.compact).
    c.rl.skip_zero_advantage_rows = True
    c.rl.updates_per_rollout = 1  # minibatches (optimizer updates) per rollout batch
    c.rl.eval_samples = 8  # Pass@k on eval_files with k = this many samples at rl.temperature
    c.rl.eval_max_questions = 0  # 0 = all
    c.rl.trim_padding = True  # train at the narrowest doubling bucket (>= 64) that holds the rollout, not seq_len
    c.rl.eval_at_start = False  # True: an eval line at step 0 (the starting policy), before any update
    return c
