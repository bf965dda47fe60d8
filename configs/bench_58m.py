"""The throughput benchmark's setting: the 58M-param `bench_58m` preset (LLaMA-2 vocabulary), fp32, batch 8 x 512.

  python benchmarks/train_throughput.py --config=configs/bench_58m.py
"""

from mathjax.train.config import base_config


def get_config():
    c = base_config()
    c.model = "bench_58m"
    c.seq_len = 512
    c.batch_size = 8
    c.micro_batches = 1
    c.compute_dtype = "float32"
    c.param_dtype = "float32"
    c.remat_policy = "none"
    c.loss_chunk = 128
    c.mesh = "data:1,fsdp:-1,tensor:1"
    c.optimizer.lr = 1e-4
    c.optimizer.weight_decay = 0.0
    c.optimizer.clip_norm = 1.0
    return c
