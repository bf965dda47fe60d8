"""GRPO steps with and without the zero-advantage rows in the update, in one run, same settings.

  python benchmarks/rl_skip_rows.py --demo_dir=DEMO_WORKDIR [--steps=6] [--out_dir=/tmp/rl_skip_rows]

``DEMO_WORKDIR`` is a finished ``scripts/demo.py`` workdir (its ``sft/`` model and
``data/train.jsonl``). Both runs are the demo's GRPO settings (32 prompts x 8
samples of up to 96 tokens at temperature 0.7, lr 5e-5, one update per rollout,
seed 0), one after the other, so nothing else should share the host. Printed:
mean seconds per step, update and rollout over steps 2..N (step 1 compiles), the
ratio, and whether the two runs' rewards and gradient norms agree (the skipped
rows carry no gradient, so they must, up to float summation order).
"""

import json
import os
import subprocess
import sys

from absl import app, flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_DEMO = flags.DEFINE_string("demo_dir", None, "A finished scripts/demo.py workdir.", required=True)
_STEPS = flags.DEFINE_integer("steps", 6, "GRPO steps per run.")
_OUT = flags.DEFINE_string("out_dir", "/tmp/rl_skip_rows", "Where the two run workdirs go (replaced).")
_SKIP_FIRST = flags.DEFINE_bool("skip_first", False, "Run the informative-rows run first (order effects).")


def _run(workdir: str, skip: bool) -> list[dict]:
    import shutil

    shutil.rmtree(workdir, ignore_errors=True)
    cmd = [sys.executable, os.path.join(ROOT, "scripts", "train_rl.py"), "--config=configs/tiny_grpo.py",
           f"--workdir={workdir}", f"--config.init_from={os.path.join(_DEMO.value, 'sft')}",
           f"--config.data.train_files={os.path.join(_DEMO.value, 'data', 'train.jsonl')}",
           "--config.seed=0", "--config.seq_len=256", "--config.rl.max_new_tokens=96", "--config.checkpoint_every=0",
           f"--config.steps={_STEPS.value}", "--config.optimizer.lr=5e-5", "--config.rl.prompts_per_step=32",
           "--config.rl.temperature=0.7", f"--config.rl.skip_zero_advantage_rows={skip}"]
    env = {**os.environ, "PYTHONPATH": ROOT, "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu")}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"train_rl failed ({'skip' if skip else 'full'}):\n{done.stderr[-3000:]}")
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]


def _mean(rows: list[dict], key: str) -> float:
    later = rows[1:] or rows
    return sum(r[key] for r in later) / len(later)


def main(_):
    if _STEPS.value < 2:
        raise SystemExit("--steps must be at least 2 (step 1 compiles)")
    runs = {}
    for skip in ((True, False) if _SKIP_FIRST.value else (False, True)):
        runs[skip] = _run(os.path.join(_OUT.value, "skip" if skip else "full"), skip=skip)
    full, skip = runs[False], runs[True]
    print(f"{_STEPS.value} steps each; means over steps 2..{_STEPS.value}")
    print("| update | s/step | update s | rollout s | rows trained |")
    print("|---|---:|---:|---:|---:|")
    for name, rows in (("all rows (skip_zero_advantage_rows=False)", full), ("informative rows only", skip)):
        frac = _mean(rows, "update_row_fraction")
        print(f"| {name} | {_mean(rows, 'step_seconds'):.1f} | {_mean(rows, 'update_seconds'):.1f} | "
              f"{_mean(rows, 'rollout_seconds'):.1f} | {frac:.0%} |")
    print(f"ratio (all / informative): step {_mean(full, 'step_seconds') / _mean(skip, 'step_seconds'):.2f}x, "
          f"update {_mean(full, 'update_seconds') / _mean(skip, 'update_seconds'):.2f}x")
    same_rewards = [a["reward_mean"] for a in full] == [b["reward_mean"] for b in skip]
    gap = max(abs(a["grad_norm"] - b["grad_norm"]) / max(abs(a["grad_norm"]), 1e-12) for a, b in zip(full, skip))
    print(f"rewards identical at every step: {same_rewards}; largest relative grad-norm difference {gap:.1e}")


if __name__ == "__main__":
    app.run(main)
