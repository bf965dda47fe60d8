"""The per-step accuracy fit (hand-computed cases), the report.json reader, and the scaling tables on made-up rows."""

from __future__ import annotations

import json
import math
import os

import pytest

from mathjax.experiments.complexity import fit_step_accuracy, fit_within_and_beyond, read_step_accuracy


def test_fit_exact_geometric_accuracies():
    fit = fit_step_accuracy({1: 0.9, 2: 0.81, 3: 0.729})
    assert fit["acc_step"] == pytest.approx(0.9, abs=1e-12)
    assert fit["residual_rmse"] == pytest.approx(0.0, abs=1e-12)
    assert fit["clipped_steps"] == []
    assert [p["predicted"] for p in fit["points"]] == pytest.approx([0.9, 0.81, 0.729])


def test_fit_weighted_by_hand():
    # log a = (10*1*ln .8 + 30*2*ln .5) / (10*1 + 30*4)
    fit = fit_step_accuracy({1: 0.8, 2: 0.5}, {1: 10, 2: 30})
    a = math.exp((10 * math.log(0.8) + 60 * math.log(0.5)) / 130)
    assert fit["acc_step"] == pytest.approx(a, rel=1e-12)
    rmse = math.sqrt((10 * (a - 0.8) ** 2 + 30 * (a * a - 0.5) ** 2) / 40)
    assert fit["residual_rmse"] == pytest.approx(rmse, rel=1e-12)
    # Weights matter: the unweighted fit differs.
    assert fit_step_accuracy({1: 0.8, 2: 0.5})["acc_step"] == pytest.approx(
        math.exp((math.log(0.8) + 2 * math.log(0.5)) / 5), rel=1e-12)


def test_fit_clips_zero_accuracy_at_half_a_count():
    fit = fit_step_accuracy({1: 0.5, 2: 0.0}, {1: 4, 2: 5})
    assert fit["clipped_steps"] == [2]
    a = math.exp((4 * math.log(0.5) + 5 * 2 * math.log(0.1)) / (4 + 5 * 4))
    assert fit["acc_step"] == pytest.approx(a, rel=1e-12)
    p2 = fit["points"][1]
    assert p2["accuracy"] == 0.0 and p2["fitted_on"] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="weights"):  # no count to clip against
        fit_step_accuracy({1: 0.5, 2: 0.0})


def test_fit_rejects_bad_input():
    with pytest.raises(ValueError, match="no .*points"):
        fit_step_accuracy({})
    with pytest.raises(ValueError, match="steps"):
        fit_step_accuracy({0: 0.5})
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fit_step_accuracy({1: 1.5})
    with pytest.raises(ValueError, match="weight 0"):
        fit_step_accuracy({1: 0.5}, {1: 0})


def _report(accs: dict, counts: dict, pooled: bool = False) -> dict:
    buckets = [{"steps": str(s), "questions": counts[s], "pass_ratio": a, "first_sample": a, "accuracy": a}
               for s, a in accs.items()]
    if pooled:
        buckets.append({"steps": "12+", "questions": 3, "pass_ratio": 0.1, "first_sample": 0.0, "accuracy": 0.1})
    return {"accuracy_by_steps": {"source": "question", "buckets": buckets}}


def test_read_step_accuracy_from_dict_file_and_dir(tmp_path):
    report = _report({1: 0.9, 2: 0.8}, {1: 5, 2: 7}, pooled=True)
    (tmp_path / "report.json").write_text(json.dumps(report))
    for src in (report, str(tmp_path / "report.json"), str(tmp_path)):
        got = read_step_accuracy(src)
        assert got == {"source": "question", "accuracy": {1: 0.9, 2: 0.8}, "counts": {1: 5, 2: 7}, "skipped": ["12+"]}
    assert read_step_accuracy({})["accuracy"] == {}


def test_fit_within_training_predicts_beyond():
    steps = read_step_accuracy(_report({1: 0.9, 2: 0.81, 3: 0.5}, {1: 4, 2: 4, 3: 4}))
    out = fit_within_and_beyond(steps, train_max_steps=2)
    assert out["fit"]["acc_step"] == pytest.approx(0.9) and out["error"] is None
    assert [p["steps"] for p in out["fit"]["points"]] == [1, 2]  # step 3 is not fitted on
    assert out["beyond"] == [{"steps": 3, "count": 4, "measured": 0.5, "predicted": pytest.approx(0.729)}]
    zeros = fit_within_and_beyond(read_step_accuracy(_report({1: 0.0, 2: 0.0, 3: 0.5}, {1: 2, 2: 3, 3: 1})), 2)
    assert zeros["fit"] is None and "every step" in zeros["error"]  # all clipped: no estimate, not an artefact
    none = fit_within_and_beyond(read_step_accuracy(_report({3: 0.5}, {3: 2})), train_max_steps=2)
    assert none["fit"] is None and "no" in none["error"] and none["beyond"][0]["predicted"] is None


def _row(n: int, accs: dict, control: bool = True) -> dict:
    row = {"num_examples": n, "greedy_accuracy": 0.5, "pass_ratio": 0.4, "pass_at_n": 0.9, "n": 8,
           "correct_reasons": {"correct_samples": 10, "all_equations_right": 7, "wrong_equation": 3,
                               "no_equation": 0, "all_equations_right_share": 0.7, "wrong_equation_share": 0.3},
           "accuracy_by_steps": _report(accs, {s: 6 for s in accs})["accuracy_by_steps"],
           "first_wrong_equation": {"samples": 4, "bins": [{"from": i / 5, "to": (i + 1) / 5, "samples": c,
                                                             "share": c / 4} for i, c in enumerate([2, 1, 1, 0, 0])]}}
    if control:
        row.update(control_pass_at_n=0.25, control_pass_ratio=0.05)
    return row


def test_write_scaling_tables_and_plots(tmp_path):
    from mathjax.experiments.scaling import write_scaling

    rows = [_row(1500, {1: 0.9, 2: 0.81, 3: 0.0}), _row(500, {1: 0.8, 2: 0.0, 3: 0.2}, control=False)]
    out = write_scaling(rows, str(tmp_path), train_max_steps=2)
    assert [r["num_examples"] for r in out["rows"]] == [500, 1500]
    md = open(out["markdown"]).read()
    assert "| SFT examples | greedy | PassRatio@N | Pass@N | control PassRatio@N | control Pass@N " in md
    assert "| 1500 | 50.0 | 40.0 | 90.0 | 5.0 | 25.0 | 70.0 | 0.900 |" in md
    a500 = math.exp((6 * math.log(0.8) + 6 * 2 * math.log(0.5 / 6)) / (6 + 24))
    assert f"| 500 | 50.0 | 40.0 | 90.0 | - | - | 70.0 | {a500:.3f} |" in md
    assert "| steps | 500 | 1500 |" in md
    assert "| **3 (beyond training)** | 20.0 (n=6) | 0.0 (n=6) |" in md
    assert "accuracy 0 at steps [2] clipped" in md
    # Beyond training: measured vs a**3 of the fit on steps 1..2.
    assert "| 1500 | 3 | 6 | 0.0 | 72.9 | -72.9 |" in md
    assert f"| 500 | 3 | 6 | 20.0 | {100 * a500 ** 3:.1f} |" in md
    assert "| [0.0, 0.2) | 50.0 | 50.0 |" in md and "| samples with a wrong equation | 4 | 4 |" in md
    rows[0]["first_wrong_equation"] = {"samples": 0, "bins": [dict(b, samples=0, share=0.0)
                                                              for b in rows[0]["first_wrong_equation"]["bins"]]}
    md = open(write_scaling(rows, str(tmp_path), train_max_steps=2)["markdown"]).read()
    assert "| [0.0, 0.2) | 50.0 | - |" in md  # no wrong equation at 1500: no shares, not zeros
    saved = json.load(open(tmp_path / "scaling.json"))
    assert saved[1]["steps_fit"]["fit"]["acc_step"] == pytest.approx(0.9)
    assert "control_pass_at_n" not in saved[0] and saved[1]["control_pass_at_n"] == 0.25
    for path in out["plots"].values():
        assert os.path.getsize(path) > 0, path
    assert not [f for f in os.listdir(tmp_path) if ".tmp" in f]
