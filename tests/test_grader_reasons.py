"""Right for the right reasons: the arithmetic profile of a sample, correct samples split by it,
and where the first wrong equation sits (hand-counted cases, and through a real grading run)."""

import json

import pytest

from mathjax import grader
from mathjax.grader.analysis import correct_reasons, first_wrong_positions
from mathjax.grader.arithmetic import arithmetic_profile, slip_flags
from mathjax.grader.bulk import QuestionResult


@pytest.mark.parametrize("text,slip,equations,first_wrong", [
    ("He has 3 + 4 = 7 apples.\nThen 7 * 2 = 14.\nThe answer is: 14.", False, 2, None),
    ("He has 3 + 4 = 8 apples.\nThen 8 * 2 = 16.\nThe answer is: 16.", True, 2, 0),
    ("3 + 4 = 7. Then 7 * 2 = 15. So 15 - 1 = 14.", True, 3, 1),
    ("10 / 3 = 3.33 and 3.33 + 1 = 4.33", True, 2, 0),  # exact slip, right when rounded
    ("The answer is 12.", False, 0, None),
])
def test_arithmetic_profile(text, slip, equations, first_wrong):
    p = arithmetic_profile(text)
    assert (p.slip, p.equations, p.first_wrong) == (slip, equations, first_wrong)
    assert slip_flags(text) == (p.slip, p.slip_rounding)


def test_rounding_is_reported_separately():
    assert arithmetic_profile("10 / 3 = 3.33").slip_rounding is False
    assert arithmetic_profile("10 / 3 = 3.5").slip_rounding is True


def _q(correct, slips, equations, first_wrong):
    return QuestionResult(index=0, id=None, gold="1", correct=correct, clusters=[0] * len(correct),
                          answers=["1"] * len(correct), slips=slips, slips_rounding=slips, equations=equations,
                          first_wrong=first_wrong)


def test_correct_reasons_and_first_wrong_by_hand():
    results = [
        # correct & right; correct by luck (equation 1 of 2 wrong); wrong (equation 0 of 4 wrong)
        _q([True, True, False], [False, True, True], [2, 2, 4], [None, 1, 0]),
        # correct with no equation; correct & right; wrong with equation 3 of 4 wrong
        _q([True, True, False], [False, False, True], [0, 3, 4], [None, None, 3]),
    ]
    why = correct_reasons(results)
    assert why == {"correct_samples": 4, "all_equations_right": 2, "wrong_equation": 1, "no_equation": 1,
                   "all_equations_right_share": 0.5, "wrong_equation_share": 0.25}
    first = first_wrong_positions(results)
    # positions 1/2 -> bin 2 ([0.4, 0.6)); 0/4 -> bin 0; 3/4 -> bin 3 ([0.6, 0.8))
    assert first["samples"] == 3
    assert [b["samples"] for b in first["bins"]] == [1, 0, 1, 1, 0]
    # analyses off: nothing counted
    off = QuestionResult(index=0, id=None, gold="1", correct=[True], clusters=[0], answers=["1"])
    assert correct_reasons([off])["correct_samples"] == 0 and first_wrong_positions([off])["samples"] == 0


def test_report_carries_the_counts(tmp_path):
    samples = tmp_path / "s.jsonl"
    texts = ["3 + 4 = 7.\nThe answer is: 7.", "3 + 4 = 8.\n8 - 1 = 7.\nThe answer is: 7.", "3 + 3 = 6.\nThe answer is: 6."]
    samples.write_text(json.dumps({"id": "a", "question": "q", "answer": "7",
                                   "samples": [{"text": t} for t in texts]}) + "\n")
    report = grader.evaluate(str(samples), str(tmp_path / "out"), workers=0, progress=False)
    assert report["correct_reasons"]["all_equations_right"] == 1
    assert report["correct_reasons"]["wrong_equation"] == 1  # 7 reached through 3 + 4 = 8
    assert report["first_wrong_equation"]["samples"] == 1
    md = (tmp_path / "out" / "report.md").read_text()
    assert "right by luck" in md and "first wrong equation" in md
