"""GRPO: advantages and the clipped loss against hand computations; a toy run whose reward rises;
exact resume after SIGKILL; two processes equal one."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import jax.numpy as jnp
import numpy as np
import pytest

from mathjax.rl import grpo
from sft_fixtures import save_copy_task_models, write_jsonl

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_group_advantages_by_hand():
    # Group [1, 0, 0, 0]: mean 0.25, centred [0.75, -0.25, -0.25, -0.25]; sample std (ddof 1)
    # sqrt((0.5625 + 3 * 0.0625) / 3) = 0.5.  Group [1, 1, 1, 1]: all equal, advantage 0.
    rewards = [1, 0, 0, 0, 1, 1, 1, 1]
    np.testing.assert_allclose(grpo.group_advantages(rewards, 4, "grpo"), [1.5, -0.5, -0.5, -0.5, 0, 0, 0, 0],
                               atol=1e-5)
    np.testing.assert_allclose(grpo.group_advantages(rewards, 4, "drgrpo"), [0.75, -0.25, -0.25, -0.25, 0, 0, 0, 0])
    assert grpo.equal_reward_groups(rewards, 4).tolist() == [False, True]
    with pytest.raises(ValueError, match="groups of 3"):
        grpo.group_advantages(rewards, 3)
    # DAPO overlong: max 10 new tokens, buffer 4: no penalty up to 6, -0.5 at 8, -1 at 10.
    np.testing.assert_allclose(grpo.overlong_penalty([5, 6, 8, 10], 10, 4), [0, 0, -0.5, -1])


# Two samples. Sample 0: A = +1, two response tokens with ratios 1 and 1.5. Sample 1: A = -2,
# three tokens with ratios 0.5, 1 and 1.25. With clip 0.2 (ratio clipped to [0.8, 1.2]):
#   s0: -min(1, 1) = -1;  -min(1.5, 1.2) = -1.2                       -> mean -1.1
#   s1: -min(-1, -1.6) = 1.6;  -min(-2, -2) = 2;  -min(-2.5, -2.4) = 2.5  -> mean 6.1 / 3
# sequence: (-1.1 + 6.1/3) / 2 = 0.466667; token: 3.9 / 5 = 0.78; constant (max_new 4): 3.9 / 8.
# Clipped branch active on s0 token 1 and s1 token 0: 2 of 5 tokens.
LOGP = jnp.log(jnp.asarray([[1.0, 1.5, 1.0], [0.5, 1.0, 1.25]]))
OLD = jnp.zeros((2, 3))
ADV = jnp.asarray([1.0, -2.0])
MASK = jnp.asarray([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])


@pytest.mark.parametrize("aggregation,expected", [("sequence", 0.466667), ("token", 0.78), ("constant", 0.4875)])
def test_clipped_loss_by_hand(aggregation, expected):
    loss, m = grpo.policy_loss(LOGP, OLD, ADV, MASK, jnp.ones(2), aggregation=aggregation, max_new_tokens=4)
    assert float(loss) == pytest.approx(expected, abs=1e-5)
    assert float(m["clip_fraction"]) == pytest.approx(0.4)
    assert float(m["kl"]) == 0.0


def test_clip_higher_weight_and_kl_by_hand():
    # clip_high 0.28: s0 token 1 becomes -1.28 -> s0 mean -1.14; s1 unchanged (its clipping is below 1).
    loss, _ = grpo.policy_loss(LOGP, OLD, ADV, MASK, jnp.ones(2), clip_high=0.28)
    assert float(loss) == pytest.approx((-1.14 + 6.1 / 3) / 2, abs=1e-5)
    # A zero-weight sample (a dropped group) is neither in the sum nor in the count.
    loss, _ = grpo.policy_loss(LOGP, OLD, ADV, MASK, jnp.asarray([1.0, 0.0]))
    assert float(loss) == pytest.approx(-1.1, abs=1e-5)
    # k3 with ref - logp = ln 2 on every token: 2 - ln 2 - 1 = 0.306853; coefficient 0.1 adds 0.0306853.
    ref = LOGP + jnp.log(2.0)
    loss, m = grpo.policy_loss(LOGP, OLD, ADV, MASK, jnp.ones(2), ref_logp=ref, kl_coef=0.1)
    assert float(m["kl"]) == pytest.approx(0.306853, abs=1e-5)
    assert float(loss) == pytest.approx(0.466667 + 0.0306853, abs=1e-5)


def test_token_logprobs_and_entropy_by_hand():
    # Logits [0, ln 3] at temperature 1: p = [1/4, 3/4]; entropy -(1/4 ln 1/4 + 3/4 ln 3/4) = 0.562335.
    logits = jnp.log(jnp.asarray([[[1.0, 3.0]]]))
    logp, entropy = grpo.token_logprobs(logits, jnp.asarray([[1]]))
    assert float(logp[0, 0]) == pytest.approx(np.log(0.75), abs=1e-6)
    assert float(entropy[0, 0]) == pytest.approx(0.562335, abs=1e-5)
    # Temperature 0.5 squares the odds: p = [1/10, 9/10].
    logp, _ = grpo.token_logprobs(logits, jnp.asarray([[0]]), temperature=0.5)
    assert float(logp[0, 0]) == pytest.approx(np.log(0.1), abs=1e-6)


# ----- end to end on a toy task: every gold answer is 1 -----


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("grpo")
    save_copy_task_models(str(root), {"model": 0}, "The answer is: 1. 0 1 2 3 4 5 6 7 8 9", _env(1))
    write_jsonl(str(root / "train.jsonl"), [{"question": f"Say one {i}.", "answer": "The answer is: 1"}
                                            for i in range(40)])
    write_jsonl(str(root / "eval.jsonl"), [{"question": f"Now say one {i}.", "answer": "#### 1"} for i in range(6)])
    return root


def _env(devices: int) -> dict:
    return {**os.environ, "PYTHONPATH": ROOT, "JAX_PLATFORMS": "cpu",
            "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}


def _cmd(toy, workdir, steps, *extra):
    return [sys.executable, "scripts/train_rl.py", "--config=configs/tiny_grpo.py", f"--workdir={workdir}",
            f"--config.init_from={toy / 'model'}", f"--config.data.train_files={toy / 'train.jsonl'}",
            f"--config.steps={steps}", "--config.seed=3", "--config.seq_len=64", "--config.rl.max_new_tokens=12",
            "--config.rl.prompts_per_step=4", "--config.rl.group_size=8", "--config.optimizer.lr=1e-2",
            "--config.rl.updates_per_rollout=2", "--config.data.template=plain", *extra]


def _metrics(workdir):
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


TIMING = ("seconds", "tokens_per_sec", "eta")


def _no_timing(row):
    return {k: v for k, v in row.items() if not any(t in k for t in TIMING)}


@pytest.fixture(scope="module")
def uninterrupted(toy, tmp_path_factory):
    """24 steps, evals at 12 and 24. Constant lr: its first steps are also a shorter run's."""
    workdir = tmp_path_factory.mktemp("grpo_run") / "run"
    done = subprocess.run(_cmd(toy, workdir, 24, f"--config.data.eval_files={toy / 'eval.jsonl'}",
                               "--config.eval_every=12", "--config.rl.eval_at_start=True", "--config.mesh=data:1"),
                          cwd=ROOT, env=_env(1), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    return _metrics(workdir)


def test_reward_rises_and_eval_lines(uninterrupted):
    start, rows = uninterrupted[0], uninterrupted[1:]
    # eval_at_start: a step-0 line holds the starting policy's eval and nothing else.
    assert start["step"] == 0 and "eval_greedy_accuracy" in start and "reward_mean" not in start
    assert [r["step"] for r in rows] == list(range(1, 25))
    first, last = np.mean([r["reward_mean"] for r in rows[:4]]), np.mean([r["reward_mean"] for r in rows[-4:]])
    print("reward", first, "->", last)
    assert first < 0.2 and last > first + 0.3  # the policy learns to answer 1
    evals = [r for r in rows if "eval_greedy_accuracy" in r]
    assert [r["step"] for r in evals] == [12, 24] and "eval_pass_at_8" in evals[-1]
    # The toy policy learns to say 1 on prompts it never trained on: the sampled pass ratio (what the
    # RL objective raises) climbs from the starting line. Greedy is not asserted: from a random model
    # the argmax can stay on another token while sampling already finds 1 most of the time.
    assert evals[-1]["eval_pass_ratio"] > start["eval_pass_ratio"] + 0.3
    assert 0.0 <= evals[-1]["eval_greedy_accuracy"] <= 1.0
    for key in ("clip_fraction", "kl", "entropy", "logprob_gap", "response_length", "tokens_per_sec", "grad_norm"):
        assert key in rows[-1]
    assert rows[-1]["logprob_gap"] < 1e-3  # sampler and trainer agree on what was sampled
    assert any(r["clip_fraction"] > 0 for r in rows)  # the second minibatch update is clipped


def test_resume_after_sigkill_reproduces_the_uninterrupted_run(toy, uninterrupted, tmp_path):
    """Killed after its step-4 checkpoint, restarted: the 8 steps equal the uninterrupted run's first 8."""
    common = ("--config.checkpoint_every=2", "--config.mesh=data:1")
    run_dir = tmp_path / "killed"
    proc = subprocess.Popen(_cmd(toy, run_dir, 8, *common), cwd=ROOT, env=_env(1), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    metrics = run_dir / "metrics.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 5:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = len(metrics.read_text().splitlines())
    again = subprocess.run(_cmd(toy, run_dir, 8, *common), cwd=ROOT, env=_env(1), capture_output=True, text=True,
                           timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    got = _metrics(run_dir)
    assert 5 <= killed_at < 8 and "resumed from" in again.stderr
    assert [r["step"] for r in got] == list(range(1, 9))  # nothing lost, nothing duplicated
    assert [_no_timing(r) for r in got] == [_no_timing(r) for r in uninterrupted[1:9]]  # [0] is the step-0 eval


def test_two_processes_equal_one(toy, tmp_path):
    # The step-0 and final evals run on both processes too (each samples its share, the grader decides).
    evals = (f"--config.data.eval_files={toy / 'eval.jsonl'}", "--config.rl.eval_at_start=True")
    one = subprocess.run(_cmd(toy, tmp_path / "one", 2, "--config.mesh=data:2", *evals), cwd=ROOT, env=_env(2),
                         capture_output=True, text=True, timeout=600)
    assert one.returncode == 0, one.stderr[-3000:]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = [subprocess.Popen(_cmd(toy, tmp_path / "two", 2, "--config.mesh=data:2", *evals,
                                   f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2", f"--process_id={i}"),
                              cwd=ROOT, env=_env(1), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for i in range(2)]
    for p in procs:
        out, _ = p.communicate(timeout=600)
        assert p.returncode == 0, out[-4000:]
    got, want = _metrics(tmp_path / "two"), _metrics(tmp_path / "one")
    assert [r["step"] for r in got] == [0, 1, 2]
    for key in ("eval_greedy_accuracy", "eval_pass_at_8", "eval_pass_ratio"):
        assert got[0][key] == want[0][key] and got[-1][key] == want[-1][key], key
    got, want = got[1:], want[1:]
    for g, w in zip(got, want):
        for key in ("reward_mean", "pass_rate", "response_length"):
            assert g[key] == w[key], key
        for key in ("loss", "grad_norm", "entropy"):
            assert g[key] == pytest.approx(w[key], rel=1e-4, abs=1e-6), key


def test_kl_to_the_frozen_reference_runs_and_grows(toy, tmp_path):
    """kl_coef > 0: the reference (the initial model) feeds the trainer's log-prob pass; KL is 0 until the
    policy moves, then grows. (A per-layer sampler view passed there once crashed the first step.)"""
    done = subprocess.run(_cmd(toy, tmp_path / "kl", 3, "--config.rl.kl_coef=0.1", "--config.mesh=data:1"),
                          cwd=ROOT, env=_env(1), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = _metrics(tmp_path / "kl")
    # Step 1 averages its 2 minibatches: the first at the reference (KL 0), the second one update away.
    assert 0 < rows[0]["kl"] < rows[-1]["kl"]  # the policy keeps leaving the reference at lr 1e-2
