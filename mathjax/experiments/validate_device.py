"""Measures whatever accelerator is present: matmul peak, train-step MFU, sampler tokens/s,
and the fused attention kernel against the XLA path, on ``llama2_7b`` shapes (fewer
layers when memory is short). One table, printed and returned.
"""

from __future__ import annotations

import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def _best_time(fn, repeats: int) -> float:
    fn()  # compile / warm up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def matmul_peak(n: int = 8192, dtype: str = "bfloat16", repeats: int = 5) -> float:
    """Best FLOP/s of an n x n x n matmul under jit."""
    a = jnp.asarray(np.random.default_rng(0).standard_normal((n, n)), jnp.dtype(dtype))
    f = jax.jit(lambda x: x @ x)
    return 2 * n**3 / _best_time(lambda: f(a).block_until_ready(), repeats)


def attention_check(dtype: str = "bfloat16", batch: int = 4, length: int = 2048) -> dict[str, Any]:
    """cuDNN/splash (when available) vs the XLA path on packed rows: max |diff| and speed."""
    from mathjax.model import attention as attn

    rng = np.random.default_rng(0)
    h, k, d = 32, 8, 128
    q = jnp.asarray(rng.standard_normal((batch, length, h, d)), jnp.dtype(dtype))
    kk = jnp.asarray(rng.standard_normal((batch, length, k, d)), jnp.dtype(dtype))
    v = jnp.asarray(rng.standard_normal((batch, length, k, d)), jnp.dtype(dtype))
    seg = np.ones((batch, length), np.int32)
    seg[:, length // 3 :] = 2  # two packed examples per row
    seg[:, -16:] = 0  # and padding
    pos = np.concatenate([np.arange(length // 3), np.arange(length - length // 3)])
    pos = jnp.asarray(np.broadcast_to(pos, (batch, length)), jnp.int32)
    ctx = attn.SegmentContext(jnp.asarray(seg))
    out: dict[str, Any] = {}
    ref_fn = jax.jit(lambda q, k, v: attn.segment_attention(q, k, v, ctx, pos, None, "xla"))
    ref = ref_fn(q, kk, v)
    out["xla_ms"] = 1e3 * _best_time(lambda: ref_fn(q, kk, v).block_until_ready(), 5)
    fused = "cudnn" if jax.default_backend() == "gpu" else "splash" if jax.default_backend() == "tpu" else None
    if fused:
        try:
            fn = jax.jit(lambda q, k, v: attn.segment_attention(q, k, v, ctx, pos, None, fused))
            got = fn(q, kk, v)
            valid = np.asarray(seg) > 0
            diff = np.abs(np.asarray(got, np.float32) - np.asarray(ref, np.float32))[valid]
            out.update({f"{fused}_ms": 1e3 * _best_time(lambda: fn(q, kk, v).block_until_ready(), 5),
                        f"{fused}_max_abs_diff": float(diff.max())})
        except Exception as e:  # report, do not hide
            out[f"{fused}_error"] = f"{type(e).__name__}: {e}"[:300]
    return out


def train_mfu(num_layers: int, batch: int, seq_len: int, dtype: str = "bfloat16", remat: str = "dots_no_batch",
              attention_impl: str = "auto", steps: int = 3) -> dict[str, Any]:
    """Tokens/s and MFU of the real jitted train step on llama2_7b shapes with ``num_layers`` layers."""
    from mathjax.data.sft import BatchLayout
    from mathjax.model.config import get_preset
    from mathjax.parallel.mesh import make_mesh
    from mathjax.train import metrics as metrics_lib
    from mathjax.train.optimizer import make_optimizer
    from mathjax.train.state import create_state
    from mathjax.train.step import make_train_step
    import ml_collections

    mesh = make_mesh("fsdp:-1")
    config = get_preset("llama2_7b", num_layers=num_layers, dtype=dtype, remat_policy=remat,
                        attention_impl=attention_impl)
    opt = ml_collections.ConfigDict({"name": "adamw", "lr": 2e-5, "warmup_ratio": 0.04, "schedule": "cosine",
                                     "final_lr_ratio": 0.0, "weight_decay": 0.0, "b1": 0.9, "b2": 0.95,
                                     "eps": 1e-8, "clip_norm": 1.0})
    optimizer, schedule = make_optimizer(opt, config, total_steps=100)
    state = create_state(config, mesh, optimizer, 0)
    layout = BatchLayout(mesh, batch, 1, seq_len)
    step = make_train_step(config, optimizer, schedule, mesh, layout.sharding)
    rng = np.random.default_rng(0)
    tokens = rng.integers(3, config.vocab_size, size=(batch, seq_len + 1)).astype(np.int32)
    host = {"tokens": tokens[:, :-1], "targets": tokens[:, 1:], "loss_mask": np.ones((batch, seq_len), np.int32),
            "segment_ids": np.ones((batch, seq_len), np.int32),
            "positions": np.broadcast_to(np.arange(seq_len, dtype=np.int32), (batch, seq_len)).copy()}
    data = {k: jax.device_put(v.reshape(layout.global_shape), layout.sharding) for k, v in host.items()}
    holder = {"state": state}

    def run():
        holder["state"], m = step(holder["state"], data)
        return float(m["loss"])

    seconds = _best_time(run, steps)
    tps = batch * seq_len / seconds
    peak = metrics_lib.peak_flops_per_device(jax.devices()[0], dtype)
    mfu = metrics_lib.mfu(config.flops_per_token(seq_len), tps, peak, mesh.size)
    return {"layers": num_layers, "batch": f"{batch}x{seq_len}", "step_s": seconds, "tokens_per_s": tps,
            "mfu": mfu, "attention": attention_impl, "remat": remat}


def sampler_speed(num_layers: int, num_samples: int = 256, prompt_len: int = 64, new_tokens: int = 128,
                  dtype: str = "bfloat16") -> dict[str, Any]:
    """Tokens/s of 256 samples x 128 new tokens from one 64-token prompt (EOS ignored)."""
    import mathjax
    from mathjax.model.config import get_preset
    from mathjax.sample.sampler import Sampler
    from mathjax.sample.sampling import SamplingRules

    config = get_preset("llama2_7b", num_layers=num_layers, dtype=dtype, param_dtype=dtype)
    model = mathjax.from_random(config)
    prompt = list(np.random.default_rng(0).integers(3, config.vocab_size, size=prompt_len))
    sampler = Sampler(model, None, SamplingRules(temperature=0.7), batch_size=num_samples,
                      max_new_tokens=new_tokens, ignore_eos=True)
    seconds = _best_time(lambda: sampler.sample([prompt], num_samples=num_samples, seed=0), 2)
    tokens = num_samples * new_tokens
    return {"layers": num_layers, "samples": f"{num_samples}x{new_tokens}", "seconds": seconds,
            "tokens_per_s": tokens / seconds, "kv_shared_bytes": sampler.stats.summary()}


def validate(train_layers: int = 8, sample_layers: int = 32, train_batch: int = 8, seq_len: int = 2048) -> dict:
    """Runs every measurement; each failure is recorded instead of stopping the rest."""
    results: dict[str, Any] = {"device": jax.devices()[0].device_kind, "backend": jax.default_backend(),
                               "count": jax.device_count()}
    for name, fn in [
        ("matmul_bf16_tflops", lambda: matmul_peak() / 1e12),
        ("attention", attention_check),
        ("train_xla", lambda: train_mfu(train_layers, train_batch, seq_len, attention_impl="xla")),
        ("train_fused", lambda: train_mfu(train_layers, train_batch, seq_len, attention_impl="cudnn"
                                          if jax.default_backend() == "gpu" else "auto")),
        ("sampler", lambda: sampler_speed(sample_layers)),
    ]:
        try:
            results[name] = fn()
        except Exception as e:
            results[name] = {"error": f"{type(e).__name__}: {e}"[:400]}
        print(name, results[name], flush=True)
    return results
