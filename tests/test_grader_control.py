"""The question-blind control: guesser metrics against hand computation, loader errors, reports."""

import itertools
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from mathjax import grader
from mathjax.grader.bulk import QuestionResult
from mathjax.grader.control import AnswerDistributionError, AnswerGuesser, _maj_at_k, control_metrics
from mathjax.grader.control import load_answer_distribution
from mathjax.grader.metrics import compute_metrics

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLES = os.path.join(ROOT, "tests", "fixtures", "grader", "samples.jsonl")


# ---- figures against hand computation ------------------------------------------------


def test_two_answers_hand_computed():
    # Guesser: "4" with 3/4, "5" with 1/4. Golds 4, 5 and 7 (never guessed).
    g = AnswerGuesser({"4": 3, "5": 1}, workers=0)
    assert [g.probability(x) for x in ("4", "5", "7")] == [0.75, 0.25, 0.0]
    # maj@2, gold 4: (4,4) 9/16 wins; (4,5) or (5,4) 6/16 is a 1-1 tie worth 1/2 -> 9/16 + 3/16.
    assert g.maj_at_k("4", 2) == pytest.approx((0.75, 0.0), abs=1e-14)
    # maj@3, gold 4: two or three 4s of 3: 27/64 + 27/64 = 54/64. Gold 5: 1/64 + 9/64 = 10/64.
    assert g.maj_at_k("4", 3)[0] == pytest.approx(0.84375, abs=1e-14)
    assert g.maj_at_k("5", 3)[0] == pytest.approx(0.15625, abs=1e-14)
    # maj@4, gold 5: four 5s 1/256, three 12/256, two (a 2-2 tie, 1/2) 54/256 -> 40/256.
    assert g.maj_at_k("5", 4)[0] == pytest.approx(0.15625, abs=1e-14)
    assert g.maj_at_k("7", 4) == (0.0, 0.0)

    c = control_metrics(["4", "5", "7"], {"4": 3, "5": 1}, [1, 2, 4], workers=0)
    # Pass@k = mean of 1-(1-p)^k: k=2: (15/16 + 7/16 + 0)/3; k=4: (255/256 + 175/256 + 0)/3.
    assert c["pass_at_k"] == pytest.approx({"1": 0.3333333333333333, "2": 0.4583333333333333, "4": 0.5598958333333334})
    assert c["pass_ratio"] == pytest.approx(0.3333333333333333)
    assert c["first_sample_accuracy"] == pytest.approx(0.3333333333333333)
    assert c["pass_ratio_at_k"] == pytest.approx({"1": 1 / 3, "2": 1 / 3, "4": 1 / 3})
    # maj@4: (216/256 + 40/256 + 0) / 3; with two answers the guess shares always sum to 1.
    assert c["maj_at_k"] == pytest.approx({"1": 1 / 3, "2": 1 / 3, "4": 1 / 3}, abs=1e-14)
    assert c["maj_at_k_error_bound"] == {"1": 0.0, "2": 0.0, "4": 0.0}
    assert c["num_questions"] == 3 and c["questions_with_gold_in_distribution"] == 2
    assert c["distribution"] == {"answers": 4, "distinct_answers": 2, "answer_groups": 2}


def test_three_way_tie_hand_computed():
    # "1" with 1/2, "2" and "3" with 1/4 each.
    g = AnswerGuesser({"1": 2, "2": 1, "3": 1}, workers=0)
    # maj@2, gold 1: (1,1) 1/4 wins; one 1 and one other, 1/2, is a tie worth 1/2 -> 1/2.
    assert g.maj_at_k("1", 2)[0] == pytest.approx(0.5, abs=1e-14)
    # maj@3, gold 2: three 2s 1/64; two 2s 9/64; one each of 1, 2, 3 (3! * 1/2*1/4*1/4 = 12/64)
    # is a three-way tie worth 1/3 -> 1/64 + 9/64 + 4/64 = 14/64.
    assert g.maj_at_k("2", 3)[0] == pytest.approx(0.21875, abs=1e-14)
    # gold 1: 1/8 + 3/8 + (3/16)/3 = 9/16.
    assert g.maj_at_k("1", 3)[0] == pytest.approx(0.5625, abs=1e-14)
    c = control_metrics(["1", "2"], g, [3])
    assert c["pass_at_k"]["3"] == pytest.approx((0.875 + 0.578125) / 2)  # 1 - 1/8, 1 - 27/64


def test_equivalent_answers_pool():
    counts = {"0.5": 2, "1/2": 1, "3": 1}
    g = AnswerGuesser(counts, workers=0)
    assert g.probability("\\frac{1}{2}") == pytest.approx(0.75)
    assert g.equal_answers("\\frac{1}{2}") == {"0.5", "1/2"}
    # pooled, "1/2" is a 3/4 answer: maj@2 = 9/16 + (6/16)/2 as for "4" above.
    assert g.maj_at_k("\\frac{1}{2}", 2)[0] == pytest.approx(0.75, abs=1e-14)
    c = control_metrics(["\\frac{1}{2}", "3"], counts, [1, 2], workers=0)
    assert c["pass_at_k"]["1"] == pytest.approx(0.5)
    assert c["pass_at_k"]["2"] == pytest.approx((0.9375 + 0.4375) / 2)
    assert c["distribution"] == {"answers": 4, "distinct_answers": 3, "answer_groups": 2}


def _brute_maj(probs, k):
    """Enumerate every sequence of k draws (probs[0] is the gold's group)."""
    total = 0.0
    for seq in itertools.product(range(len(probs)), repeat=k):
        counts = [seq.count(i) for i in range(len(probs))]
        top = max(counts)
        if counts[0] == top:
            total += math.prod(probs[i] for i in seq) / counts.count(top)
    return total


@pytest.mark.parametrize("weights,k", [([1, 1], 5), ([2, 3, 1, 1], 6), ([1, 5, 2, 2, 1], 5), ([3, 1, 1, 1, 1], 7)])
def test_maj_dp_matches_enumeration(weights, k):
    probs = [w / sum(weights) for w in weights]
    value, bound = _maj_at_k(probs[0], np.array(probs[1:]), k, tol=0.0)
    assert bound == 0.0 and value == pytest.approx(_brute_maj(probs, k), abs=1e-12)


def test_maj_truncation_stays_within_its_bound():
    # 300 equally likely answers: by symmetry each is the (tie-shared) plurality 1/300 of the time.
    r = np.full(300, 1 / 300)
    value, bound = _maj_at_k(r[0], r[1:], 64)
    assert 0 < bound <= 1e-9 and abs(value - 1 / 300) <= bound + 1e-13


def test_groups_by_level_and_subject():
    c = control_metrics(["4", "5", "7"], {"4": 3, "5": 1}, [1, 2], levels=["Level 1", "Level 1", None],
                        subjects=["A", "B", "B"], group_k=2, workers=0)
    assert c["by_level"] == {"Level 1": pytest.approx(
        {"questions": 2, "pass_at_1": 0.5, "pass_at_2": 0.6875, "pass_ratio": 0.5, "maj_at_2": 0.5,
         "first_sample_accuracy": 0.5})}
    assert c["by_subject"]["B"]["pass_at_2"] == pytest.approx(0.21875)  # (7/16 + 0) / 2


# ---- the loader ---------------------------------------------------------------------------


def test_load_jsonl_uses_gold_answer_extraction(tmp_path):
    path = tmp_path / "train.jsonl"
    recs = [
        {"question": "q", "answer": "Half of 4 is 4/2 = 2.\n#### 2"},
        {"answer": "so it is $\\boxed{\\frac12}$"},
        {"final_answer": "36", "answer": "3 * 12 = 36\nThe answer is: 36."},
        {"solution": "Thus $\\boxed{7}$."},
        {"answer": "2"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in recs) + "\n\n")
    assert load_answer_distribution(path) == {"2": 2, "\\frac12": 1, "36": 1, "7": 1}


def test_load_table(tmp_path):
    (tmp_path / "t.json").write_text('{\n  "4": 3,\n  "5": 1.5\n}\n')
    assert load_answer_distribution(tmp_path / "t.json") == {"4": 3, "5": 1.5}
    (tmp_path / "t.txt").write_text('{"4": 3, "5": 1}')  # sniffed: an object of numbers
    assert load_answer_distribution(tmp_path / "t.txt") == {"4": 3, "5": 1}


@pytest.mark.parametrize(
    "name,text,line,words",
    [
        ("a.jsonl", '{"answer": "1"}\n{"answer": \n', 2, "not valid JSON"),
        ("a.jsonl", '{"answer": "1"}\n\n{"question": "no answer"}\n', 3, "no final answer"),
        ("a.jsonl", '{"answer": "1"}\n[1, 2]\n', 2, "JSON object"),
        ("a.json", '{\n  "4": 3,\n  "5": -1\n}\n', 3, "number >= 0"),
        ("a.json", '{\n  "4": 3,\n  "5": "many"\n}\n', 3, "number >= 0"),
        ("a.json", '{\n  "4": 3,\n  "4": 1\n}\n', 2, "twice"),
        ("a.json", '{\n  "4": 3,\n  "5" 1\n}\n', 3, "not valid JSON"),
        ("a.json", "[1, 2]", 1, "JSON object"),
    ],
)
def test_bad_input_names_file_and_line(tmp_path, name, text, line, words):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(AnswerDistributionError, match=words) as e:
        load_answer_distribution(path)
    assert f"{path}:{line}:" in str(e.value)


def test_empty_distribution_is_an_error(tmp_path):
    for name, text in (("e.jsonl", "\n"), ("e.json", '{"4": 0}')):
        (tmp_path / name).write_text(text)
        with pytest.raises(AnswerDistributionError, match="no answers") as e:
            load_answer_distribution(tmp_path / name)
        assert str(tmp_path / name) in str(e.value)


# ---- reports --------------------------------------------------------------------------------


def _results():
    def q(gold, correct, level):
        return QuestionResult(index=0, id=None, gold=gold, level=level, correct=correct,
                              clusters=[0 if c else 1 for c in correct], answers=["x"] * len(correct))

    return [q("4", [True, False, True, True], "Level 1"), q("5", [False] * 4, "Level 2"), q("7", [True] * 4, "Level 2")]


def test_write_report_carries_the_control(tmp_path):
    results = _results()
    m = compute_metrics(results, bootstrap=30)
    ctl = control_metrics([r.gold for r in results], {"4": 3, "5": 1}, m["ks"], levels=[r.level for r in results],
                          group_k=4, bootstrap=30, source="train.jsonl", workers=0)
    rep = grader.write_report(m, tmp_path, control=ctl)
    data = json.loads((tmp_path / "report.json").read_text())
    assert data == rep and data["control"]["source"] == "train.jsonl"
    for key in ("pass_at_k", "pass_ratio", "maj_at_k", "pass_ratio_at_k", "first_sample_accuracy", "pass_at_k_ci",
                "maj_at_k_ci", "by_level"):
        assert key in data and key in data["control"], key
    assert set(data["control"]["pass_at_k"]) == set(data["pass_at_k"]) == {"1", "2", "4"}
    assert set(data["control"]["by_level"]["Level 2"]) == set(data["by_level"]["Level 2"])
    md = (tmp_path / "report.md").read_text()
    assert "question-blind control" in md and "control Pass@k (%)" in md and "control maj@k (%)" in md
    row4 = next(line for line in md.splitlines() if line.startswith("| 4 |"))
    assert row4.rstrip().endswith("| 56.0 | 33.3 | 33.3 |")  # Pass@4 430/768, PassRatio 1/3, maj@4 1/3
    assert "## By level: question-blind control" in md
    assert (tmp_path / "pass_at_k.png").read_bytes()[:4] == b"\x89PNG"
    # No control: the report is as before.
    plain = grader.write_report(m, tmp_path / "plain", plot=False)
    assert "control" not in plain and "control" not in (tmp_path / "plain" / "report.md").read_text()


def _train_file(tmp_path):
    path = tmp_path / "train.jsonl"
    recs = [{"answer": "#### 72"}, {"answer": "72"}, {"answer": "0.75"}, {"solution": "$\\boxed{\\sqrt{8}}$"}]
    path.write_text("\n".join(json.dumps(r) for r in recs + [{"answer": "5"}] * 4) + "\n")
    return path


def test_evaluate_with_control_answers(tmp_path):
    train = _train_file(tmp_path)
    data = grader.evaluate(SAMPLES, tmp_path / "out", workers=0, bootstrap=20, progress=False, details=False,
                           control_answers=train)
    ctl = data["control"]
    # 5 questions with samples; golds 72 (2/8 of the guesses), 3/4 ("0.75", 1/8), 2\sqrt{2}
    # ("\sqrt{8}", 1/8), an interval and 1 (never guessed): PassRatio (2 + 1 + 1) / 8 / 5.
    assert ctl["num_questions"] == 5 and ctl["ks"] == data["ks"]
    assert ctl["pass_ratio"] == pytest.approx(0.1) and ctl["questions_with_gold_in_distribution"] == 3
    assert ctl["source"] == str(train) and "by_level" in ctl and "by_subject" in ctl
    assert json.loads((tmp_path / "out" / "report.json").read_text())["control"] == ctl


def test_script_control_flag(tmp_path):
    train = _train_file(tmp_path)
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    base = [sys.executable, os.path.join(ROOT, "scripts", "grade.py"), f"--samples={SAMPLES}", "--workers=0",
            "--bootstrap=0", "--noprogress"]
    proc = subprocess.run(base + [f"--output_dir={tmp_path / 'rep'}", f"--control_answers={train}"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert data["control"]["pass_ratio"] == pytest.approx(0.1)
    assert "question-blind control" in (tmp_path / "rep" / "report.md").read_text()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"answer": "1"}\n{"answer": "2"\n')
    proc = subprocess.run(base + [f"--output_dir={tmp_path / 'bad'}", f"--control_answers={bad}"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode != 0 and f"{bad}:2:" in proc.stderr
    assert not (tmp_path / "bad").exists()  # it failed before grading
