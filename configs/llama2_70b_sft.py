"""LLaMA-2 70B (GQA) SFT, the paper's recipe (see llama2_7b_sft.py).

fp32 params + Adam state are ~840 GB: run on a pod slice (v4-128, v5p-64, or
several GPU nodes). FSDP over the slice with 8-way tensor parallelism inside
a host keeps the all-gathers on fast links; adjust --config.mesh to the slice.
"""

from mathjax.train.config import base_config


def get_config():
    c = base_config()
    c.model = "llama2_70b"
    c.init_from = ""  # set to the HF Llama-2-70b dir
    c.seq_len = 2048
    c.batch_size = 64
    c.micro_batches = 4
    c.epochs = 3.0
    c.remat_policy = "full"
    c.loss_chunk = 512
    c.mesh = "data:1,fsdp:-1,tensor:8"
    c.data.template = "xwin_math"
    c.optimizer.lr = 2e-5
    c.optimizer.schedule = "cosine"
    c.optimizer.warmup_ratio = 0.04
    c.checkpoint_every = 200
    return c
