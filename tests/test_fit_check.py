"""Fit checks (``--dry_run``): LLaMA-2 7B/13B/70B train steps compiled on 8 emulated CPU devices.

Nothing is allocated (a 70B state is ~1 TB), so these only lower and compile;
the scanned layer stack keeps each compile to seconds whatever the depth.
"""

import importlib.util
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import pytest

from mathjax.model.config import get_preset
from mathjax.parallel.mesh import make_mesh
from mathjax.sample import fit_check as sample_fit_check
from mathjax.train import fit_check

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config(name: str):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "configs", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


@pytest.mark.parametrize("name,mesh", [
    ("llama2_7b", "data:1,fsdp:8,tensor:1"),
    ("llama2_13b", "data:1,fsdp:8,tensor:1"),
    ("llama2_70b", "data:1,fsdp:4,tensor:2"),
])
def test_train_fit_check_llama2(name, mesh):
    config = _config(f"{name}_sft")
    config.mesh = mesh
    report = fit_check.train_fit_check(config, device_memory=80 * fit_check.GiB)
    print("\n" + report.format())
    n = get_preset(name).num_params()
    assert report.num_devices == 8
    params = report.memory["params (float32)"]
    # fp32 params split 8 ways (norm scales are replicated: a few hundred KB).
    assert params == pytest.approx(4 * n / 8, rel=1e-3)
    assert report.memory["optimizer state"] == pytest.approx(2 * params, rel=1e-3)  # Adam: mu and nu
    assert report.memory["activations + temporaries"] > 0
    assert report.peak_bytes >= params * 3
    # Counted FLOPs: the 6N + attention model FLOPs, plus remat's recomputed forward.
    assert report.model_flops_per_step < report.flops_per_step < 1.6 * report.model_flops_per_step
    assert report.flops_per_device == pytest.approx(report.flops_per_step / 8)
    assert report.fits is (report.peak_bytes <= 80 * fit_check.GiB)


def test_matmul_flops_multiply_scans_and_count_while_once():
    def body(c, w):
        return c @ w, None

    def f(x, ws):
        y, _ = jax.lax.scan(body, x, ws)
        return jax.lax.while_loop(lambda c: c[0, 0] < 0, lambda c: c @ ws[0], y)

    x = jax.ShapeDtypeStruct((4, 8), jnp.float32)
    ws = jax.ShapeDtypeStruct((5, 8, 8), jnp.float32)
    flops, saw_while = fit_check.matmul_flops(jax.make_jaxpr(f)(x, ws))
    assert flops == 6 * 2 * 4 * 8 * 8
    assert saw_while


def test_sample_fit_check_kv_cache_and_params():
    config = get_preset("llama2_7b", dtype="bfloat16", param_dtype="bfloat16", num_layers=2)
    mesh = make_mesh("data:4,tensor:2")
    prefill, decode = sample_fit_check.sample_fit_check(config, mesh, batch_size=64, num_samples=16, prompt_len=100,
                                                 max_new_tokens=128, rows_per_prompt=16)
    print("\n" + prefill.format() + "\n" + decode.format())
    # bf16 weights over tensor:2 (embed dims are not fsdp-split here), KV heads over tensor:2.
    assert decode.memory["params (bfloat16)"] == pytest.approx(2 * config.num_params() / 2, rel=0.01)
    groups, rows = 64 // 16, 16
    per_token = 2 * config.num_layers * config.num_kv_heads * config.resolved_head_dim * 2  # k+v, bf16
    # Two prompt buffers of 128 (the bucket) per slot, 128-token tails per row.
    kv = (groups * 2 * 128 + groups * rows * 128) * per_token
    assert decode.memory["KV cache"] == pytest.approx(kv / 8)  # slots over data:4, heads over tensor:2
    # One decode step: 2 FLOPs per matmul weight (all but the embedding lookup) per row, plus attention.
    matmul_weights = config.num_params() - config.vocab_size * config.hidden_size
    assert 2 * matmul_weights * 64 < decode.flops_per_step < 1.2 * 2 * matmul_weights * 64
    assert prefill.flops_per_step > 0


def _run(args, tmp_path):
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_train_sft_dry_run_cli(tmp_path):
    workdir = tmp_path / "run"
    proc = _run(["scripts/train_sft.py", "--config=configs/llama2_7b_sft.py", f"--workdir={workdir}", "--dry_run",
                 "--dry_run_devices=8", "--device_memory_gib=80"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "fit check: train llama2_7b" in out and "data:1,fsdp:8,tensor:1" in out
    assert "params (float32)                        3.14" in out
    assert "fits" in out and "FLOPs per train step" in out
    assert not workdir.exists()  # no checkpoint dir, no data, no tokenizer


def test_sample_dry_run_cli(tmp_path):
    proc = _run(["scripts/sample.py", "--model=tiny", "--dry_run", "--dry_run_devices=8", "--mesh=data:8",
                 "--batch_size=16", "--num_samples=4", "--max_new_tokens=64", "--dry_run_prompt_len=32"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "fit check: sample prefill" in proc.stdout and "fit check: sample decode" in proc.stdout
    assert "KV cache" in proc.stdout
