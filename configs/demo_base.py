"""Pretraining of the demo's miniature base model on the procedural corpus (mathjax.data.base_corpus).

  python scripts/pretrain_base.py            # corpus -> tokenizer -> this config -> assets/demo_base

The `tiny` preset from scratch, every token trained on (dataset preset `text`, template `none`).
"""

from mathjax.train.config import base_config


def get_config():
    c = base_config()
    c.model = "tiny"
    c.seq_len = 256
    c.batch_size = 16
    c.steps = 3000
    c.epochs = 0.0
    c.data.dataset = "text"
    c.data.template = "none"
    c.optimizer.lr = 2e-3
    c.optimizer.warmup_ratio = 0.03
    c.optimizer.weight_decay = 0.0
    c.optimizer.final_lr_ratio = 0.05
    c.checkpoint_every = 250
    c.keep_checkpoints = 2
    c.log_every = 25
    c.mesh = "data:1,fsdp:-1,tensor:1"
    c.peak_flops_cpu = 0.0
    return c
