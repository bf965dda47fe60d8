"""The RL dry run compiles the real GRPO programs (update and log-prob pass), on CPU devices and a TPU slice."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from mathjax.rl.fit_check import rl_fit_check

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HAS_LIBTPU = __import__("importlib.util").util.find_spec("libtpu") is not None


def _config(**rl):
    from mathjax.experiments.demo import load_config_file

    c = load_config_file(os.path.join(ROOT, "configs", "tiny_grpo.py"))
    c.rl.prompts_per_step, c.rl.group_size, c.rl.updates_per_rollout = 8, 4, 2
    c.seq_len = 128
    for k, v in rl.items():
        setattr(c.rl, k, v)
    return c


def test_update_and_logprob_reports_on_emulated_devices():
    reports = rl_fit_check(_config(), mesh="data:2,fsdp:4,tensor:1", device_memory=1 << 30)
    update, logprob = reports
    assert update.title.startswith("GRPO update") and logprob.title.startswith("GRPO log-probs")
    assert update.mesh == {"data": 2, "fsdp": 4, "tensor": 1}
    # The update holds a minibatch of 32 / 2 = 16 rows; its counted FLOPs exceed the forward-only pass's share
    assert "minibatch 16 of 32 rollout rows" in " ".join(update.details)
    assert update.flops_per_step > 0 and logprob.flops_per_step > 0
    assert update.flops_per_step > logprob.flops_per_step  # fwd + bwd (+ remat) of 16 rows > fwd of 32
    assert update.fits and logprob.fits
    with pytest.raises(ValueError, match="does not split into 3 minibatches"):
        rl_fit_check(_config(updates_per_rollout=3), mesh="data:2,fsdp:4,tensor:1")


def test_script_dry_run_exit_codes(tmp_path):
    cmd = [sys.executable, os.path.join(ROOT, "scripts", "train_rl.py"), "--config=configs/tiny_grpo.py",
           f"--workdir={tmp_path}", "--dry_run", "--dry_run_devices=4", "--config.rl.prompts_per_step=4",
           "--config.rl.group_size=4", "--config.seq_len=128", "--config.rl.max_new_tokens=32",
           "--dry_run_prompt_len=32"]
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    ok = subprocess.run(cmd + ["--device_memory_gib=4"], cwd=ROOT, env=env, capture_output=True, text=True,
                        timeout=600)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "GRPO update" in ok.stdout and "GRPO log-probs" in ok.stdout
    tight = subprocess.run(cmd + ["--device_memory_gib=0.001"], cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=600)
    assert tight.returncode == 1, tight.stdout[-2000:]


@pytest.mark.skipif(not HAS_LIBTPU, reason="pip install libtpu (the TPU compiler) for topology checks")
def test_grpo_programs_compile_for_a_tpu_slice():
    reports = rl_fit_check(_config(), mesh="data:1,fsdp:-1,tensor:1", topology="v5litepod-8")
    for r in reports:
        assert r.platform == "tpu" and r.mesh["fsdp"] == 8 and r.compiler_refused is None
        assert r.collectives is not None and r.collectives.total_bytes > 0  # fsdp gathers the weights


def test_process_supervision_compiles_per_token_advantages():
    # rl.process_coef > 0: advantages are [rows, seq_len]; the dry run compiles that update, not a per-sample one.
    from mathjax.parallel.mesh import make_mesh
    from mathjax.rl.fit_check import _batch

    mesh = make_mesh("data:2,fsdp:4,tensor:1")
    assert _batch(mesh, 16, 128, token_advantages=True)["advantages"].shape == (16, 128)
    assert _batch(mesh, 16, 128)["advantages"].shape == (16,)
    update, _ = rl_fit_check(_config(process_coef=1.0), mesh="data:2,fsdp:4,tensor:1", device_memory=1 << 30)
    assert update.fits and update.flops_per_step > 0
