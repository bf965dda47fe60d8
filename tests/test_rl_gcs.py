"""gs:// paths for the RL scripts, against the GCS emulator of tests/test_gcs_paths.py.

GRPO (scripts/train_rl.py): workdir, init_from (an HF model dir), train and eval files all in the
bucket; SIGKILLed after its first checkpoint, resumed by a fresh process, its metrics.jsonl equals
the same uninterrupted run on local paths. RFT (scripts/rft.py): model, input and output in the
bucket; rft.jsonl and the sample files equal the local run's. Neither writes to its working
directory or TMPDIR (no ./gs:/ tree, no temporary leftovers).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from mathjax.io import paths
from test_gcs_paths import ROOT, _local_files, gcs  # noqa: F401  (gcs: the emulator fixture)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

GRPO_TRAIN = [{"question": f"Say one {i}.", "answer": "The answer is: 1"} for i in range(16)]
GRPO_EVAL = [{"question": f"Now say one {i}.", "answer": "#### 1"} for i in range(2)]
RFT_TRAIN = [
    {"id": "q0", "question": "Tom has 3 boxes of 4 apples and eats 2. How many are left?",
     "answer": "He has 3 * 4 = <<3*4=12>>12 apples.\nHe has 12 - 2 = <<12-2=10>>10 left.\n#### 10"},
    {"id": "q1", "question": "A farm has 7019 cows and buys 300. How many now?",
     "answer": "7019 + 300 = 7319 cows.\nThe answer is: 7319."},
    {"id": "q2", "question": "What is 9043 minus 0?", "answer": "9043 - 0 = 9043.\n#### 9043"},
]

# Runs scripts/train_rl.py, but stops (sleeps) right after step HOLD's metrics line: past the first
# checkpoint's save, before the run's end, so the SIGKILL never races the last step.
HOLDING_RUNNER = """
import os, runpy, sys, time
from mathjax.train import metrics
hold, write = int(os.environ["RL_GCS_HOLD_AT_STEP"]), metrics.MetricsWriter.write
def held(self, step, m):
    write(self, step, m)
    if step == hold:
        print("HOLDING", flush=True)
        while True:
            time.sleep(60)
metrics.MetricsWriter.write = held
script = os.path.join(os.environ["PYTHONPATH"].split(os.pathsep)[0], "scripts", "train_rl.py")
sys.argv = [script, *sys.argv[1:]]
runpy.run_path(script, run_name="__main__")
"""


def _write_jsonl(path, rows) -> str:
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    return str(path)


def _grpo_model(root) -> str:
    """tests/test_rl_grpo.py's toy policy: random, but its tokenizer makes "The answer is: 1" likely enough
    that some groups are rewarded in the first steps (so the updates, and the state a resume restores,
    are not zero)."""
    import mathjax
    from mathjax.data.tokenizer import train_tokenizer
    from mathjax.model.config import get_preset

    texts = ([f"Question: Copy the number {i}.\nAnswer: {i % 10}" for i in range(200)]
             + ["The answer is: 1. 0 1 2 3 4 5 6 7 8 9"] * 20)
    tok = train_tokenizer(texts, root / "tok", vocab_size=300)
    config = get_preset("tiny", vocab_size=320, hidden_size=64, intermediate_size=128, num_layers=2, num_heads=4,
                        num_kv_heads=2, eos_token_id=tok.eos_id, bos_token_id=tok.bos_id, max_position_embeddings=128)
    model = mathjax.from_random(config, seed=0)
    model.tokenizer_path = str(root / "tok")
    model.save_hf(str(root / "model"))
    return str(root / "model")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Two tiny random HF models with their own tokenizers and the data files, local (copied to the bucket
    by bucket_inputs)."""
    from sample_fixtures import tiny_model_dir

    src = tmp_path_factory.mktemp("rl_gcs_src")
    (src / "grpo").mkdir()
    (src / "rft").mkdir()
    texts = [r["question"] for r in RFT_TRAIN] + [r["answer"] for r in RFT_TRAIN]
    local = {"grpo_model": _grpo_model(src / "grpo"), "rft_model": tiny_model_dir(src / "rft", texts),
             "grpo_train": _write_jsonl(src / "grpo_train.jsonl", GRPO_TRAIN),
             "grpo_eval": _write_jsonl(src / "grpo_eval.jsonl", GRPO_EVAL),
             "rft_train": _write_jsonl(src / "rft_train.jsonl", RFT_TRAIN)}
    return src, local


@pytest.fixture
def bucket_inputs(gcs, inputs):
    _, local = inputs
    remote = {k: f"{ROOT}/rl/in/{k}" + ("" if k.endswith("model") else ".jsonl") for k in local}
    if not paths.exists(remote["grpo_train"]):
        for k in ("grpo_model", "rft_model"):
            paths.copy_tree(local[k], remote[k])
        for k in ("grpo_train", "grpo_eval", "rft_train"):
            paths.copy_file(local[k], remote[k])
    return remote


@pytest.fixture
def local_dirs(gcs, tmp_path):
    """Each run's cwd and TMPDIR (to stay empty), JAX's compilation cache, and the env of the runs."""
    cwd, tmp, cache = tmp_path / "cwd", tmp_path / "tmp", tmp_path / "jax_cache"
    for d in (cwd, tmp, cache):
        d.mkdir()
    env = {**os.environ, **gcs.env, "PYTHONPATH": REPO, "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": "--xla_force_host_platform_device_count=1", "TMPDIR": str(tmp),
           # metrics lines reach the bucket as they are written, so the killed run leaves a step past
           # its checkpoint there for the resumed run to replace
           "MATHJAX_REMOTE_APPEND_SECONDS": "0",
           "JAX_COMPILATION_CACHE_DIR": str(cache), "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
           "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}
    yield cwd, tmp, env
    # Nothing of any run on local disk: no ./gs:/ tree, no temporary copies left behind.
    assert _local_files(str(cwd), str(tmp)) == []
    assert not os.path.exists(os.path.join(REPO, "gs:"))


# ---------------------------------------------------------------------------
# GRPO


def _grpo_args(workdir: str, d: dict) -> list[str]:
    return [f"--config={REPO}/configs/tiny_grpo.py", f"--workdir={workdir}", f"--config.init_from={d['grpo_model']}",
            f"--config.data.train_files={d['grpo_train']}", f"--config.data.eval_files={d['grpo_eval']}",
            "--config.steps=4", "--config.checkpoint_every=2", "--config.seed=3", "--config.seq_len=64",
            "--config.rl.max_new_tokens=12", "--config.rl.prompts_per_step=4", "--config.rl.group_size=8",
            "--config.rl.eval_samples=2", "--config.optimizer.lr=1e-2", "--config.mesh=data:1"]


def _run(cmd, cwd, env, timeout=300) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-4000:]
    return done


def _no_timing(row: dict) -> dict:
    return {k: v for k, v in row.items() if not any(t in k for t in ("seconds", "tokens_per_sec", "eta"))}


def _metrics(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


@pytest.mark.slow
def test_grpo_in_the_bucket_resumes_after_sigkill(gcs, inputs, bucket_inputs, local_dirs):
    src, local = inputs
    cwd, _, env = local_dirs
    train_rl = [sys.executable, os.path.join(REPO, "scripts", "train_rl.py")]

    reference = src / "grpo_local"  # the same run on local paths, uninterrupted
    _run(train_rl + _grpo_args(str(reference), local), cwd, env)
    want = _metrics((reference / "metrics.jsonl").read_text())
    assert [r["step"] for r in want] == [1, 2, 3, 4] and "eval_greedy_accuracy" in want[-1]
    # Updates before and after the checkpoint: a resume must restore the trained params and Adam's moments.
    assert max(r["grad_norm"] for r in want[:2]) > 0 and max(r["grad_norm"] for r in want[2:]) > 0

    workdir = f"{ROOT}/rl/grpo"
    log = src / "grpo_killed.log"  # outside cwd and TMPDIR
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-c", HOLDING_RUNNER, *_grpo_args(workdir, bucket_inputs)],
                                cwd=cwd, env={**env, "RL_GCS_HOLD_AT_STEP": "3"}, stdout=out,
                                stderr=subprocess.STDOUT)
    committed = f"{workdir}/checkpoints/2/commit_success.txt"
    try:
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None:
            text = log.read_text()
            if ("HOLDING" in text and paths.exists(committed)) or "Failed to run" in text:  # orbax: save failed
                break
            time.sleep(0.2)
        assert proc.poll() is None, "the run ended before it could be killed:\n" + log.read_text()[-4000:]
        assert paths.exists(committed), "no checkpoint 2 in the bucket:\n" + log.read_text()[-4000:]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    killed = _metrics(paths.read_text(f"{workdir}/metrics.jsonl"))
    assert [r["step"] for r in killed] == [1, 2, 3]  # step 3 is past the checkpoint: replayed on resume
    assert paths.listdir(f"{workdir}/checkpoints") == ["2"]

    again = _run(train_rl + _grpo_args(workdir, bucket_inputs), cwd, env)
    assert "resumed from" in again.stderr
    got = _metrics(paths.read_text(f"{workdir}/metrics.jsonl"))
    assert [r["step"] for r in got] == [1, 2, 3, 4]  # nothing lost, nothing twice
    assert [_no_timing(r) for r in got] == [_no_timing(r) for r in want]
    assert [_no_timing(r) for r in killed] == [_no_timing(r) for r in want[:3]]
    names = paths.walk_files(workdir)
    assert {"train_config.json", "mathjax_config.json", "metrics.jsonl", "checkpoints/2/commit_success.txt",
            "checkpoints/4/commit_success.txt"} <= set(names)
    assert any(n.startswith("tokenizer/") for n in names)
    assert not [n for n in names if ".tmp" in n or ".append-" in n]
    saved = json.loads(paths.read_text(f"{workdir}/train_config.json"))
    assert saved["init_from"] == bucket_inputs["grpo_model"]
    assert saved["data"]["train_files"] == bucket_inputs["grpo_train"]


# ---------------------------------------------------------------------------
# RFT


def _rft_args(model: str, train: str, out: str) -> list[str]:
    return [sys.executable, os.path.join(REPO, "scripts", "rft.py"), f"--model={model}", f"--input={train}",
            f"--output={out}", "--num_samples=2", "--max_new_tokens=12", "--batch_size=8", "--grade_workers=0",
            "--mesh=data:1", "--noprogress"]


@pytest.mark.slow
def test_rft_in_the_bucket_equals_the_local_run(gcs, inputs, bucket_inputs, local_dirs):
    src, local = inputs
    cwd, _, env = local_dirs
    local_out = src / "rft_local"
    _run(_rft_args(local["rft_model"], local["rft_train"], str(local_out)), cwd, env)
    out = f"{ROOT}/rl/rft"
    # An explicit --tokenizer in the bucket too (the model dir holds one): read through load_tokenizer_from.
    done = _run(_rft_args(bucket_inputs["rft_model"], bucket_inputs["rft_train"], out)
                + [f"--tokenizer={bucket_inputs['rft_model']}"], cwd, env)
    assert "round 1: 3 questions, 6 samples" in done.stdout and f"-> {out}/rft.jsonl" in done.stdout

    want = (local_out / "rft.jsonl").read_text()
    assert [json.loads(line)["id"] for line in want.splitlines()][:3] == ["q0/gold", "q1/gold", "q2/gold"]
    assert paths.read_text(f"{out}/rft.jsonl") == want
    assert paths.read_text(f"{out}/round_1/rft.jsonl") == want
    # The samples themselves (texts, tokens, log-probs): the bucket's model sampled what the local one did.
    samples = "round_1/samples/pass0_n2.jsonl"
    assert paths.read_text(f"{out}/{samples}") == (local_out / samples).read_text()
    assert len(paths.read_text(f"{out}/{samples}").splitlines()) == 3

    def stats(text):
        s = _no_timing(json.loads(text))
        assert s.pop("model") in (local["rft_model"], bucket_inputs["rft_model"])  # the only path in it
        return s

    assert stats(paths.read_text(f"{out}/stats.json")) == stats((local_out / "stats.json").read_text())
    names = paths.walk_files(out)
    assert {"settings.json", "rft.jsonl", "stats.json", "round_1/rft.jsonl", samples} <= set(names)
    assert not [n for n in names if ".tmp" in n or ".append-" in n]
