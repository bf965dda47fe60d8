"""The SFT config schema: every key with its default (``configs/*.py`` start from here).

Any key can be overridden on the command line as ``--config.key=value``
(``ml_collections.config_flags``), e.g. ``--config.optimizer.lr=1e-5`` or
``--config.model_overrides.num_layers=2``. Lists of files are comma-separated
strings so that they override like any other string.
"""

from __future__ import annotations

import math
import os
import re

import ml_collections
from ml_collections import config_dict

# ModelConfig fields that can be overridden from flags (typed placeholders: unset = None).
_MODEL_FIELDS = {
    "vocab_size": int, "hidden_size": int, "intermediate_size": int, "num_layers": int, "num_heads": int,
    "num_kv_heads": int, "head_dim": int, "rope_theta": float, "rms_norm_eps": float,
    "max_position_embeddings": int, "tie_word_embeddings": bool, "sliding_window": int,
    "initializer_range": float,
}


def model_overrides_placeholders() -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict({k: config_dict.placeholder(t) for k, t in _MODEL_FIELDS.items()})


def base_config() -> ml_collections.ConfigDict:
    """Defaults shared by every SFT config (the paper's recipe where it gives one)."""
    c = ml_collections.ConfigDict()
    # Model: a preset from mathjax.model.config.PRESETS (from scratch) or init_from a checkpoint.
    c.model = "tiny"
    c.model_overrides = model_overrides_placeholders()
    c.init_from = ""  # HF model dir, mathjax checkpoint or training workdir; "" = random init
    c.tokenizer = ""  # HF tokenizer dir or SentencePiece .model; "" = init_from's
    # Numerics: float32 params and optimizer state; compute dtype auto = bf16 on GPU/TPU, f32 on CPU.
    c.param_dtype = "float32"
    c.compute_dtype = "auto"
    c.remat_policy = "none"  # none | full | dots | dots_no_batch | save_qkv_proj
    c.attention_impl = ""  # "" = the model's (auto); xla | blockwise | cudnn | splash
    c.loss_chunk = 0  # >0: cross-entropy over sequence chunks of this size (saves [B,T,V] logits memory)
    # Parallelism: mesh axes data, fsdp, tensor; -1 takes the remaining devices.
    c.mesh = "data:1,fsdp:-1,tensor:1"
    # Schedule.
    c.seed = 0
    c.steps = 0  # 0 = derive from epochs
    c.epochs = 3.0
    c.batch_size = 64  # global rows per step
    c.micro_batches = 1  # gradient accumulation: batch_size / micro_batches rows per forward pass
    c.seq_len = 2048  # row length in tokens
    # Data.
    c.data = ml_collections.ConfigDict()
    c.data.train_files = ""  # comma-separated JSONL (or .json/.parquet/.csv) files
    c.data.eval_files = ""  # held-out file(s) for the periodic eval loss
    c.data.hf_dataset = ""  # hub id or local dataset dir (read with `datasets`)
    c.data.hf_config = ""
    c.data.hf_split = "train"
    c.data.dataset = ""  # field preset: gsm8k | math | procedural | "" (use the fields below)
    c.data.question_field = "question"
    c.data.answer_field = "answer"
    c.data.template = "xwin_math"  # xwin_math | alpaca | plain | none (mathjax.data.templates)
    c.data.add_bos = True
    c.data.pack = True  # several examples per row (segment_ids, per-example positions)
    c.data.truncate = True  # over-long examples: True = truncate, False = drop (counted either way)
    c.data.skip_bad_lines = False  # True = skip and count malformed records instead of failing
    c.data.cache = True  # cache tokenized rows in workdir/data_cache, keyed by content (restarts skip tokenizing)
    # Optimizer.
    c.optimizer = ml_collections.ConfigDict()
    c.optimizer.name = "adamw"  # adamw | adam | sgd
    c.optimizer.lr = 2e-5
    c.optimizer.schedule = "cosine"  # cosine | linear | constant (after linear warmup)
    c.optimizer.warmup_ratio = 0.04
    c.optimizer.warmup_steps = 0  # > 0 overrides warmup_ratio
    c.optimizer.final_lr_ratio = 0.0
    c.optimizer.weight_decay = 0.0
    c.optimizer.b1 = 0.9
    c.optimizer.b2 = 0.999
    c.optimizer.eps = 1e-8
    c.optimizer.clip_norm = 1.0  # 0 = no clipping
    # Checkpoints, logs, eval, export.
    c.checkpoint_every = 500
    c.keep_checkpoints = 3
    c.async_checkpoint = True
    c.log_every = 10
    c.eval_every = 0  # 0 = only at the end (when eval_files is set)
    c.eval_batches = 0  # 0 = the whole eval set
    c.tensorboard = True
    c.export_hf_dir = ""  # write a Hugging Face model here at the end
    c.export_dtype = "bfloat16"
    c.peak_flops_cpu = 0.0  # the host's peak FLOP/s, for MFU on CPU (0 = not reported)
    c.compilation_cache_dir = ""  # JAX persistent compilation cache (a trusted dir): restarts skip recompiling
    return c


def fixed_mesh_devices(mesh_spec: str) -> int:
    """Devices a mesh spec needs at least: the product of its explicit sizes (-1 axes count as 1)."""
    sizes = [int(v) for v in re.findall(r":\s*(-?\d+)", mesh_spec or "")]
    return math.prod(s for s in sizes if s > 0) if sizes else 1


def request_host_devices(mesh_spec: str, num_processes: int = 1) -> None:
    """Makes XLA's CPU platform expose enough devices for ``mesh_spec`` (call before JAX starts).

    ``--config.mesh=data:2,fsdp:2,tensor:2`` then runs on one CPU host as on 8
    chips. The flag only affects the CPU platform, so it is harmless on GPU/TPU
    hosts, and an explicit ``--xla_force_host_platform_device_count`` wins.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" in flags:
        return
    per_process = -(-fixed_mesh_devices(mesh_spec) // max(1, num_processes))
    if per_process > 1:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={per_process}".strip()
