"""LLaMA-2 13B SFT, the paper's recipe (see llama2_7b_sft.py); FSDP with full remat."""

from mathjax.train.config import base_config


def get_config():
    c = base_config()
    c.model = "llama2_13b"
    c.init_from = ""  # set to the HF Llama-2-13b dir
    c.seq_len = 2048
    c.batch_size = 64
    c.micro_batches = 2
    c.epochs = 3.0
    c.remat_policy = "full"
    c.loss_chunk = 512
    c.mesh = "data:1,fsdp:-1,tensor:1"
    c.data.template = "xwin_math"
    c.optimizer.lr = 2e-5
    c.optimizer.schedule = "cosine"
    c.optimizer.warmup_ratio = 0.04
    c.checkpoint_every = 500
    return c
