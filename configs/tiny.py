"""CPU development config: the `tiny` preset from scratch on small arithmetic data, in minutes.

  python scripts/train_sft.py --config=configs/tiny.py --workdir=/tmp/tiny \
      --config.data.train_files=data/proc/train.jsonl --config.tokenizer=data/proc/tokenizer

The vocabulary comes from the tokenizer. Logs every step.
"""

from mathjax.train.config import base_config


def get_config():
    c = base_config()
    c.model = "tiny"
    c.seq_len = 256
    c.batch_size = 16
    c.steps = 300
    c.epochs = 0.0
    c.data.template = "plain"  # short prompts: most of each row is trained on
    c.data.dataset = ""  # question/answer fields, answers as is (procedural data already ends with "The answer is: N.")
    c.optimizer.lr = 1e-3
    c.optimizer.warmup_ratio = 0.04
    c.optimizer.weight_decay = 0.0
    c.optimizer.final_lr_ratio = 0.1
    c.checkpoint_every = 100
    c.keep_checkpoints = 2
    c.log_every = 1
    c.mesh = "data:1,fsdp:-1,tensor:1"
    c.peak_flops_cpu = 0.0
    return c
