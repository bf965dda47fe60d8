"""The trainer end to end on CPU: learning, workdir contents, init_from/export, exact resume, 2 processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest

from sft_fixtures import REPO, TINY_MODEL, arithmetic_records, make_tokenizer, read_metrics, tiny_config, write_jsonl

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("sft")
    return {
        "tokenizer": make_tokenizer(str(root)),
        "train": write_jsonl(root / "train.jsonl", arithmetic_records(240)),
        "eval": write_jsonl(root / "eval.jsonl", arithmetic_records(16, seed=99, start_id=1000)),
    }


@pytest.fixture(scope="module")
def compile_cache(tmp_path_factory):
    """A persistent compilation cache for this module's runs (in-process and subprocesses), removed after."""
    import jax
    from jax.experimental.compilation_cache import compilation_cache

    previous = jax.config.jax_compilation_cache_dir
    yield str(tmp_path_factory.mktemp("jax_cache"))
    compilation_cache.set_cache_dir(previous)
    compilation_cache.reset_cache()


def _env(devices: int = 8) -> dict:
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO, env.get("PYTHONPATH")) if p)
    return env


def _losses(workdir: str) -> list[tuple[int, float, float]]:
    return [(m["step"], m["loss"], m["grad_norm"]) for m in read_metrics(workdir)]


def test_short_run_learns_and_workdir_is_self_describing(data, tmp_path, compile_cache):
    from mathjax.train.trainer import train

    workdir, hf_dir = str(tmp_path / "run"), str(tmp_path / "hf")
    config = tiny_config(data["train"], data["tokenizer"], steps=24, checkpoint_every=12, export_hf_dir=hf_dir,
                         export_dtype="float32", compilation_cache_dir=compile_cache, **{"data.eval_files": data["eval"], "eval_every": 12})
    result = train(config, workdir)
    metrics = read_metrics(workdir)
    assert [m["step"] for m in metrics] == list(range(1, 25))
    first, last = metrics[0]["loss"], metrics[-1]["loss"]
    assert last < 0.5 * first, (first, last)
    assert "eval_loss" in metrics[11] and "eval_loss" in metrics[-1]
    assert metrics[-1]["eval_loss"] < metrics[11]["eval_loss"]
    assert result.step == 24 and not result.preempted and result.data_stats["examples"] == 240
    # Self-describing workdir: resolved config, model config, tokenizer copy; mathjax.load reads it.
    resolved = json.load(open(os.path.join(workdir, "train_config.json")))
    assert resolved["resolved"]["steps"] == 24 and resolved["seq_len"] == 128
    from mathjax.api import Model
    from mathjax.data.tokenizer import load_tokenizer
    from mathjax.parallel.mesh import make_mesh
    from mathjax.train.checkpoint import load_workdir_params

    mesh = make_mesh("fsdp:-1")
    config_, params, tok_path = load_workdir_params(workdir, mesh, dtype="bfloat16")
    assert config_.vocab_size == 400 and config_.hidden_size == TINY_MODEL["hidden_size"]
    assert config_.dtype == config_.param_dtype == "bfloat16" and params["embed"]["embedding"].dtype.name == "bfloat16"
    assert load_tokenizer(tok_path).vocab_size == 400
    model = Model(config_, params, mesh)
    assert np.isfinite(model.logits(np.asarray([[1, 20, 30, 40]]))).all()
    # init_from the exported HF model: training continues from the learned weights.
    assert os.path.exists(os.path.join(hf_dir, "config.json"))
    again = tiny_config(data["train"], "", steps=1, init_from=hf_dir, compilation_cache_dir=compile_cache)
    train(again, str(tmp_path / "again"))
    assert read_metrics(str(tmp_path / "again"))[0]["loss"] < 0.6 * first
    # init_from the training workdir itself (as GRPO and RFT rounds start from an SFT run): the
    # compute dtype is the new run's, the params the workdir's (once, a TypeError: dtype given twice).
    from mathjax.train.checkpoint import load_initial_model

    config_, params, _ = load_initial_model(workdir, mesh, "float32", {"dtype": "bfloat16", "param_dtype": "float32",
                                                                       "remat_policy": "none"})
    assert (config_.dtype, config_.param_dtype) == ("bfloat16", "float32")
    assert params["embed"]["embedding"].dtype.name == "float32"


def test_resume_after_sigterm_and_sigkill_reproduces_losses(data, tmp_path, compile_cache):
    from mathjax.train.trainer import train

    overrides = {"steps": 9, "checkpoint_every": 3, "seed": 5, "compilation_cache_dir": compile_cache}
    straight = str(tmp_path / "straight")
    train(tiny_config(data["train"], data["tokenizer"], **overrides), straight)

    interrupted = str(tmp_path / "interrupted")

    def sigterm_at_2(step, metrics):
        if step == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    result = train(tiny_config(data["train"], data["tokenizer"], **overrides), interrupted, callbacks=[sigterm_at_2])
    assert result.preempted and result.step == 3
    assert sorted(os.listdir(os.path.join(interrupted, "checkpoints"))) == ["3"]
    # Resume in a subprocess and SIGKILL it at step 7 (checkpoint 6 complete, step 8 in flight).
    spec = json.dumps({"data.train_files": data["train"], "tokenizer": data["tokenizer"], **overrides})
    proc = subprocess.run([sys.executable, os.path.join(REPO, "tests", "train_worker.py"), interrupted, spec,
                           "--kill_at_step=7", "--wait_for_checkpoint=6"], env=_env(), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    assert [m["step"] for m in read_metrics(interrupted)][-1] == 7
    result = train(tiny_config(data["train"], data["tokenizer"], **overrides), interrupted)
    assert result.step == 9
    assert _losses(interrupted) == _losses(straight)  # exact, and no step twice


def test_two_processes_match_one(data, tmp_path):
    from mathjax.train.trainer import train

    flags = {"data.train_files": data["train"], "tokenizer": data["tokenizer"], "steps": 3,
             "checkpoint_every": 2, "mesh": "data:2,fsdp:2,tensor:2", "seed": 7, "seq_len": 128,
             "batch_size": 8, "optimizer.lr": 3e-3, "tensorboard": False,
             **{f"model_overrides.{k}": v for k, v in TINY_MODEL.items()}}
    single = str(tmp_path / "single")
    train(tiny_config(data["train"], data["tokenizer"], **{k: v for k, v in flags.items()
                                                           if k not in ("data.train_files", "tokenizer")}), single)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    multi = str(tmp_path / "multi")
    cmd = [sys.executable, os.path.join(REPO, "scripts", "train_sft.py"), f"--config={REPO}/configs/tiny.py",
           f"--workdir={multi}", *[f"--config.{k}={v}" for k, v in flags.items()],
           f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2"]
    procs = [subprocess.Popen(cmd + [f"--process_id={i}"], env=_env(devices=4), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for i in range(2)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out[-3000:]
    assert "step 3/3" in outputs[0] and "step 3/3" not in outputs[1]  # only process 0 logs
    one, two = _losses(single), _losses(multi)
    assert [s for s, _, _ in one] == [s for s, _, _ in two] == [1, 2, 3]
    np.testing.assert_allclose([l for _, l, _ in two], [l for _, l, _ in one], rtol=1e-5)
    np.testing.assert_allclose([g for _, _, g in two], [g for _, _, g in one], rtol=1e-4)
