"""The demo's stage markers: reuse when inputs match, resume when killed, start fresh when settings change."""

import json
import os

from mathjax.experiments.demo import _Stages


def _stage(tmp_path, log):
    out = tmp_path / "run"

    def train():
        os.makedirs(out, exist_ok=True)
        (out / "ckpt").write_text(str(len(list(out.iterdir()))))  # what a resumed run would see
        return {"seen": sorted(p.name for p in out.iterdir())}

    return out, train


def test_changed_settings_remove_the_old_outputs(tmp_path):
    logs = []
    stages = _Stages(str(tmp_path), logs.append)
    out, train = _stage(tmp_path, logs)
    assert stages.run("grpo", train, {"lr": 1}, (str(out),)) == {"seen": ["ckpt"]}
    (out / "old_checkpoint").write_text("from lr 1")
    # Same inputs: reused, nothing run.
    assert stages.run("grpo", lambda: 1 / 0, {"lr": 1}, (str(out),)) == {"seen": ["ckpt"]}
    # Changed inputs: the old workdir (its checkpoints) is gone before the new run starts.
    assert stages.run("grpo", train, {"lr": 2}, (str(out),)) == {"seen": ["ckpt"]}
    assert not (out / "old_checkpoint").exists()
    assert any("from scratch" in line for line in logs)


def test_a_killed_stage_keeps_its_outputs_with_the_same_settings(tmp_path):
    stages = _Stages(str(tmp_path), lambda _: None)
    out, train = _stage(tmp_path, None)

    def killed():
        os.makedirs(out, exist_ok=True)
        (out / "partial").write_text("half")
        raise KeyboardInterrupt

    try:
        stages.run("sft", killed, {"steps": 3}, (str(out),))
    except KeyboardInterrupt:
        pass
    assert json.load(open(tmp_path / "stages" / "sft.started.json")) == {"inputs": {"steps": 3}}
    # Restarted with the same settings: the partial output is still there to resume from.
    assert "partial" in stages.run("sft", train, {"steps": 3}, (str(out),))["seen"]
    assert not (tmp_path / "stages" / "sft.started.json").exists()
    # Killed, then restarted with other settings: the partial output of the old settings is removed.
    try:
        stages.run("sft", killed, {"steps": 4}, (str(out),))
    except KeyboardInterrupt:
        pass
    (out / "stale").write_text("x")
    assert stages.run("sft", train, {"steps": 5}, (str(out),)) == {"seen": ["ckpt"]}


def test_a_finished_result_is_not_reused_after_a_killed_run_of_other_settings(tmp_path):
    stages = _Stages(str(tmp_path), lambda _: None)
    out, train = _stage(tmp_path, None)
    stages.run("grpo", train, {"lr": 1}, (str(out),))

    def killed():
        raise KeyboardInterrupt

    try:
        stages.run("grpo", killed, {"lr": 2}, (str(out),))  # removes lr 1's outputs, then dies
    except KeyboardInterrupt:
        pass
    # Back to lr 1: its outputs are gone, so it must run again rather than return the stale marker.
    ran = []
    assert stages.run("grpo", lambda: ran.append(1) or {"again": True}, {"lr": 1}, (str(out),)) == {"again": True}
    assert ran == [1]
