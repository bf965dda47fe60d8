"""LLaMA-2 7B SFT, the paper's recipe: AdamW, cosine, 4% warmup, peak LR 2e-5, 3 epochs, length 2048.

  python scripts/train_sft.py --config=configs/llama2_7b_sft.py --workdir=gs://.../7b \
      --config.init_from=/models/Llama-2-7b-hf \
      --config.data.train_files=gsm8k_train.jsonl,math_train.jsonl

Batch size is not given in the paper: 64 packed rows of 2048 tokens (~130k
tokens, a few hundred GSM8K/MATH examples) per step. FSDP over all devices
(8x H100 80GB or a v4-32/v5p-16 slice hold params + Adam state in fp32).
"""

from mathjax.train.config import base_config


def get_config():
    c = base_config()
    c.model = "llama2_7b"
    c.init_from = ""  # set to the HF Llama-2-7b dir
    c.seq_len = 2048
    c.batch_size = 64
    c.micro_batches = 1
    c.epochs = 3.0
    c.remat_policy = "full"
    c.loss_chunk = 512
    c.mesh = "data:1,fsdp:-1,tensor:1"
    c.data.template = "xwin_math"
    c.optimizer.name = "adamw"
    c.optimizer.lr = 2e-5
    c.optimizer.schedule = "cosine"
    c.optimizer.warmup_ratio = 0.04
    c.optimizer.weight_decay = 0.0
    c.checkpoint_every = 500
    c.log_every = 10
    c.export_dtype = "bfloat16"
    return c
