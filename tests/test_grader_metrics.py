"""Pass@k, PassRatio, maj@k, bootstrap and reports against hand-computed values."""

import json
import math
import os

import pytest

from mathjax import grader
from mathjax.grader.analysis import accuracy_by_steps, count_steps, error_breakdown
from mathjax.grader.bulk import QuestionResult
from mathjax.grader.metrics import compute_metrics, default_ks, maj_at_k, pass_at_k


def q(correct, clusters=None, **kw):
    clusters = clusters if clusters is not None else [0 if c else 1 for c in correct]
    return QuestionResult(
        index=kw.pop("index", 0), id=kw.pop("id", None), gold="1", correct=list(correct), clusters=clusters,
        answers=kw.pop("answers", ["x"] * len(correct)), **kw
    )


@pytest.mark.parametrize(
    "n,c,k,expected",
    [
        (4, 1, 1, 0.25),
        (4, 1, 2, 0.5),  # 1 - C(3,2)/C(4,2) = 1 - 3/6
        (5, 2, 2, 0.7),  # 1 - C(3,2)/C(5,2) = 1 - 3/10
        (10, 3, 5, 1 - 21 / 252),  # 1 - C(7,5)/C(10,5)
        (8, 0, 4, 0.0),
        (8, 8, 1, 1.0),
        (8, 5, 4, 1.0),  # n - c < k
        (256, 1, 256, 1.0),
        (256, 1, 1, 1 / 256),
        (256, 10, 16, 1 - math.comb(246, 16) / math.comb(256, 16)),
    ],
)
def test_pass_at_k(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected, rel=1e-12)


def test_pass_at_k_rejects_bad_input():
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)
    with pytest.raises(ValueError):
        pass_at_k(4, 1, 5)


def test_default_ks():
    assert default_ks(256) == [1, 2, 4, 8, 16, 32, 64, 128, 256]
    assert default_ks(6) == [1, 2, 4, 6]
    assert default_ks(1) == [1]


def test_maj_at_k_hand_computed():
    # clusters: 0 = right answer, -1 = no answer.
    assert maj_at_k([0, 0, 1, 2], 4) == 1.0  # 0 has 2 votes
    assert maj_at_k([1, 1, 0, 2], 4) == 0.0
    assert maj_at_k([0, 1, 2, 3], 4) == 0.25  # four-way tie
    assert maj_at_k([0, 0, 1, 1], 4) == 0.5  # two-way tie
    assert maj_at_k([-1, -1, -1, 0], 4) == 1.0  # missing answers do not vote
    assert maj_at_k([-1, -1], 2) == 0.0
    # blocks of k: [0,1] tie -> 0.5, [1,1] -> 0, average 0.25
    assert maj_at_k([0, 1, 1, 1], 2) == 0.25
    assert maj_at_k([0, 1, 0, 0], 1) == 0.75
    assert maj_at_k([0], 2) == 0.0


def test_compute_metrics_hand_computed():
    results = [
        q([True, False, False, False], [0, 1, 1, 2], level="Level 1", subject="Algebra"),
        q([False, False, False, False], [1, 1, 2, 3], level="Level 1", subject="Geometry"),
        q([True, True, True, False], [0, 0, 0, 1], level="Level 5", subject="Algebra"),
        q([False, True, False, True], [1, 0, 2, 0], level="Level 5", subject="Algebra"),
    ]
    m = compute_metrics(results, bootstrap=200, seed=1)
    assert m["num_questions"] == 4 and m["num_samples"] == 16
    assert m["ks"] == [1, 2, 4]
    # c = 1, 0, 3, 2 of n = 4
    assert m["pass_at_k"]["1"] == pytest.approx((1 + 0 + 3 + 2) / 16)
    p2 = [pass_at_k(4, c, 2) for c in (1, 0, 3, 2)]  # 0.5, 0, 1, 5/6
    assert m["pass_at_k"]["2"] == pytest.approx(sum(p2) / 4)
    assert m["pass_at_k"]["4"] == pytest.approx(3 / 4)
    assert m["pass_ratio"] == pytest.approx(6 / 16)
    assert m["first_sample_accuracy"] == pytest.approx(2 / 4)
    # maj@4: q1 cluster 1 wins (2 votes) -> 0; q2 -> 0; q3 -> 1; q4 tie (0:2, 1:1, 2:1) -> 0 wins -> 1
    assert m["maj_at_k"]["4"] == pytest.approx(0.5)
    # maj@1 equals the mean correctness over all samples
    assert m["maj_at_k"]["1"] == pytest.approx(6 / 16)
    # PassRatio@k on first-k prefixes
    assert m["pass_ratio_at_k"]["2"] == pytest.approx((0.5 + 0 + 1 + 0.5) / 4)
    lo, hi = m["pass_at_k_ci"]["4"]
    assert 0 <= lo <= m["pass_at_k"]["4"] <= hi <= 1
    assert set(m["by_level"]) == {"Level 1", "Level 5"}
    assert m["by_level"]["Level 5"]["questions"] == 2
    assert m["by_level"]["Level 5"]["pass_ratio"] == pytest.approx(5 / 8)
    assert m["by_subject"]["Algebra"]["pass_at_4"] == pytest.approx(1.0)
    assert m["by_subject"]["Geometry"]["pass_at_4"] == pytest.approx(0.0)


def test_bootstrap_is_deterministic_and_degenerate_when_constant():
    results = [q([True, True]) for _ in range(5)]
    m = compute_metrics(results, bootstrap=100)
    assert m["pass_at_k_ci"]["1"] == [1.0, 1.0]
    r2 = [q([i % 2 == 0, False], index=i) for i in range(20)]
    a = compute_metrics(r2, bootstrap=300, seed=3)
    b = compute_metrics(r2, bootstrap=300, seed=3)
    assert a["pass_at_k_ci"] == b["pass_at_k_ci"]
    lo, hi = a["first_sample_accuracy_ci"]
    assert lo < 0.5 < hi


def test_empty_and_sampleless_questions():
    m = compute_metrics([])
    assert m["num_questions"] == 0 and m["pass_at_k"] == {}
    m = compute_metrics([q([True]), q([])], bootstrap=0)
    assert m["questions_without_samples"] == 1
    assert m["pass_at_k"] == {"1": 1.0}


def test_count_steps():
    assert count_steps("She has 3 + 4 = 7 apples.\nThen 7 * 2 = 14.\nThe answer is: 14") == 2
    assert count_steps("First, x = 2. Then y = 3. So the sum is 5.") == 3
    assert count_steps("Let me think.\n#### 5") == 0
    assert count_steps("") == 0


def test_accuracy_by_steps_and_errors():
    results = [
        q([True, False], steps=2, sample_steps=[2, 2], slips=[False, True], slips_rounding=[False, False]),
        q([False, False], steps=5, sample_steps=[5, 4], slips=[False, False], slips_rounding=[False, False],
          answers=["x", None]),
    ]
    s = accuracy_by_steps(results)
    assert s["source"] == "question"
    assert [(b["steps"], b["questions"], b["accuracy"]) for b in s["buckets"]] == [("2", 1, 0.5), ("5", 1, 0.0)]
    for r in results:
        r.steps = None
    s = accuracy_by_steps(results)
    assert s["source"] == "sample"
    assert [(b["steps"], b["samples"], b["accuracy"]) for b in s["buckets"]] == [("2", 2, 0.5), ("4", 1, 0.0), ("5", 1, 0.0)]
    e = error_breakdown(results)
    assert e["wrong_samples"] == 3
    assert e["wrong_with_arithmetic_slip"] == 1
    assert e["arithmetic_share"] == pytest.approx(1 / 3)
    assert e["other_share"] == pytest.approx(2 / 3)
    assert e["arithmetic_share_rounding"] == 0.0
    assert e["wrong_without_answer"] == 1


def test_write_report_files_and_extra_keys(tmp_path):
    results = [q([True, False, True, True], index=i, level="Level 2") for i in range(3)]
    m = compute_metrics(results, bootstrap=50)
    rep = grader.write_report(m, tmp_path, extra={"greedy_accuracy": 0.42, "model": "tiny"})
    for name in ("report.json", "report.md", "pass_at_k.png"):
        assert (tmp_path / name).exists() and (tmp_path / name).stat().st_size > 0
    data = json.loads((tmp_path / "report.json").read_text())
    assert data == rep
    for key in ("num_questions", "num_samples", "pass_at_k", "pass_ratio", "maj_at_k"):
        assert key in data
    assert data["greedy_accuracy"] == 0.42 and data["model"] == "tiny"
    assert set(data["pass_at_k"]) == {"1", "2", "4"}
    md = (tmp_path / "report.md").read_text()
    assert "Pass@k" in md and "greedy accuracy: 42.0%" in md and "Level 2" in md
    png = (tmp_path / "pass_at_k.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_write_report_without_plot(tmp_path):
    grader.write_report({"num_questions": 0, "num_samples": 0, "pass_at_k": {}}, tmp_path, plot=False)
    assert (tmp_path / "report.json").exists() and not (tmp_path / "pass_at_k.png").exists()
    assert os.path.getsize(tmp_path / "report.md") > 0
