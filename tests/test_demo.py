"""The demo pipeline in miniature: every stage runs, the report has the grader's keys, re-runs reuse stages."""

from __future__ import annotations

import json
import os

import pytest

pytestmark = pytest.mark.slow


def test_miniature_demo_runs_every_stage_and_resumes(tmp_path):
    from mathjax.experiments.demo import DemoOptions, run_demo

    opts = DemoOptions(workdir=str(tmp_path / "demo"), num_train=300, num_test=6, train_max_steps=2,
                       test_max_steps=3, vocab_size=400, train_steps=12, batch_size=8, seq_len=128,
                       num_samples=4, max_new_tokens=24, sample_batch_size=8, scales=(100,),
                       scale_num_samples=2, workers=0, progress=False)
    lines: list[str] = []
    summary = run_demo(opts, log=lines.append)

    report_dir = summary["report"]["report_dir"]
    report = json.load(open(os.path.join(report_dir, "report.json")))
    assert report["num_questions"] == 6 and report["num_samples"] == 24
    assert set(report["pass_at_k"]) == {"1", "2", "4"}
    assert "pass_ratio" in report and "maj_at_k" in report
    assert 0.0 <= report["greedy_accuracy"] <= 1.0
    # Pass@N is an upper bound of PassRatio@N (the estimator, not a fit).
    assert report["pass_at_k"]["4"] >= report["pass_ratio"] - 1e-12
    for name in ("report.md", "pass_at_k.png", "accuracy_vs_steps.png"):
        assert os.path.getsize(os.path.join(report_dir, name)) > 0, name
    assert summary["export"]["checked"] and summary["export"]["ok"]
    assert summary["scaling"]["rows"][0]["num_examples"] == 100
    for path in [summary["scaling"]["markdown"], *summary["scaling"]["plots"].values()]:
        assert os.path.getsize(path) > 0, path
    # The headline is over questions with the steps training saw; the longer ones are reported apart.
    within, beyond = summary["report"]["within_training"], summary["report"]["beyond_training"]
    assert within["questions"] + beyond["questions"] == 6 and beyond["questions"] >= 1
    assert "control_pass_at_n" in within and "correct_reasons" in summary["report"]
    assert summary["sft"]["step"] == 12
    samples = [json.loads(line) for line in open(os.path.join(opts.workdir, "samples.jsonl"))]
    assert len(samples) == 6 and all(len(s["samples"]) == 4 for s in samples)

    # A second run finds every stage done and recomputes nothing.
    lines.clear()
    again = run_demo(opts, log=lines.append)
    assert again["report"] == summary["report"]
    assert lines and all("already done" in line for line in lines), lines


def test_miniature_rl_demo_reports_grpo_and_rft_beside_sft(tmp_path):
    """--rl: GRPO and RFT continue the SFT model; each gets the same report, with the guessing control.

    From scratch (``base_model=""``: the tiny preset and a tokenizer trained on the SFT data), the
    other start the demo offers."""
    from mathjax.experiments.demo import DemoOptions, run_demo

    opts = DemoOptions(workdir=str(tmp_path / "demo"), num_train=300, num_test=4, train_max_steps=2,
                       test_max_steps=3, vocab_size=400, train_steps=8, batch_size=8, seq_len=128,
                       num_samples=4, max_new_tokens=24, sample_batch_size=16, check_export=False, workers=0,
                       progress=False, rl=True, rl_steps=2, rl_prompts=4, rft_questions=8, rft_samples=4,
                       rft_sft_steps=2, rl_compare_questions=5, rl_compare_samples=2, base_model="")
    summary = run_demo(opts, log=lambda line: None)
    for name in ("grpo", "rft", "gold_sft"):  # gold_sft: RFT's control, the same SFT steps on gold solutions
        report = json.load(open(os.path.join(summary["rl"][name]["report"]["report_dir"], "report.json")))
        assert report["num_questions"] == 4 and report["num_samples"] == 16
        assert "control" in report and "greedy_accuracy" in report
    grpo = [json.loads(line) for line in open(os.path.join(opts.workdir, "grpo", "metrics.jsonl"))]
    assert [r["step"] for r in grpo] == [1, 2] and all("reward_mean" in r for r in grpo)
    assert summary["rl"]["rft"]["train"]["kept_paths"] >= 1  # at least the gold solutions
    assert os.path.getsize(summary["rl"]["plot"]) > 0
    # The paired comparison: every model against the SFT model on 5 other held-out problems.
    compare = summary["rl"]["compare"]
    assert compare["questions"] == 5 and compare["control"] == "SFT"
    assert set(compare["vs_control"]) == {"GRPO", "RFT", "RFT control (SFT on gold only)"}
    assert "| GRPO |" in open(compare["files"]["markdown"]).read()
    # Its questions are written beside it (for scripts/compare_models.py), and none is a report question.
    asked = [json.loads(line)["question"] for line in open(compare["files"]["questions"])]
    reported = {json.loads(line)["question"] for line in open(os.path.join(opts.workdir, "data", "test.jsonl"))}
    assert len(asked) == 5 and not set(asked) & reported
    sft_report = json.load(open(os.path.join(summary["report"]["report_dir"], "report.json")))
    assert sft_report["control"]["pass_at_k"]["4"] >= sft_report["control"]["pass_ratio"]
