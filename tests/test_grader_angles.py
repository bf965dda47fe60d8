"""Policies as options: angle units (degrees vs radians), segment/angle names, x^2 < 4 vs intervals."""

import pytest

from mathjax import grader
from mathjax.grader import Verdict, compare
from mathjax.grader.api import slow_compare_job

# ---- angles="degrees" (default) and angles="convert" ----------------------------------------

# Equal under both policies: the degree sign is a unit that may be dropped.
BOTH_EQUAL = [
    ("30^\\circ", "30"), ("30°", "30"), ("30", "30^{\\circ}"), ("x^\\circ", "x"), ("-5^\\circ", "-5"),
    ("30^\\circ", "30^{\\circ}"), ("\\sin 30^\\circ", "\\frac12"), ("x = 30^\\circ", "30"),
    ("\\{30^\\circ, 150^\\circ\\}", "30, 150"),
]
# Equal only under "convert": a degree-marked value and its radian value.
CONVERT_ONLY = [
    ("30^\\circ", "\\frac{\\pi}{6}"), ("\\frac{\\pi}{6}", "30^\\circ"), ("\\pi/6", "30^\\circ"),
    ("90^{\\circ}", "\\frac{\\pi}{2}"), ("180^\\circ", "\\pi"), ("2\\pi", "360^\\circ"),
    ("-30^\\circ", "-\\frac{\\pi}{6}"),
    ("x^\\circ", "\\frac{\\pi x}{180}"), ("\\{30^\\circ, 150^\\circ\\}", "\\frac{\\pi}{6}, \\frac{5\\pi}{6}"),
    ("x = 30^\\circ", "x = \\frac{\\pi}{6}"),
]
# Unequal under both policies.
NEVER_EQUAL = [
    ("30^\\circ", "\\frac{\\pi}{3}"), ("\\frac{\\pi}{3}", "30^\\circ"), ("30", "\\frac{\\pi}{6}"),
    ("\\frac{\\pi}{6}", "30"), ("30^\\circ", "31"), ("31", "30^\\circ"), ("60^\\circ", "30^\\circ"),
    ("90", "\\frac{\\pi}{2}"), ("180", "\\pi"), ("0.5236", "30^\\circ"), ("30^\\circ", "30\\%"),
    ("45^\\circ", "\\frac{\\pi}{3}"), ("\\{30^\\circ, 150^\\circ\\}", "\\frac{\\pi}{6}, \\frac{\\pi}{3}"),
    ("x^\\circ", "\\frac{\\pi x}{90}"), ("x = 30^\\circ", "y = \\frac{\\pi}{6}"),
]


@pytest.mark.parametrize("pred,gold", BOTH_EQUAL)
@pytest.mark.parametrize("angles", ["degrees", "convert"])
def test_degree_sign_dropped_under_both(pred, gold, angles):
    assert compare(pred, gold, angles=angles) == Verdict.EQUAL
    assert compare(gold, pred, angles=angles) == Verdict.EQUAL


@pytest.mark.parametrize("pred,gold", CONVERT_ONLY)
def test_radians_only_under_convert(pred, gold):
    for a, b in ((pred, gold), (gold, pred)):
        assert compare(a, b, angles="convert") == Verdict.EQUAL, (a, b)
        assert compare(a, b) == Verdict.NOT_EQUAL, (a, b)  # default: "degrees"
        assert compare(a, b, angles="degrees", symbolic=True) == Verdict.NOT_EQUAL, (a, b)


@pytest.mark.parametrize("pred,gold", NEVER_EQUAL)
@pytest.mark.parametrize("angles", ["degrees", "convert"])
def test_near_misses_unequal_under_both(pred, gold, angles):
    assert compare(pred, gold, angles=angles) == Verdict.NOT_EQUAL
    assert compare(gold, pred, angles=angles, symbolic=True) == Verdict.NOT_EQUAL


def test_public_entry_points_take_the_policy():
    assert grader.is_equiv("30^\\circ", "\\frac{\\pi}{6}", angles="convert")
    assert not grader.is_equiv("30^\\circ", "\\frac{\\pi}{6}")
    assert not grader.is_equiv("30", "\\frac{\\pi}{6}", angles="convert")
    text = "So the angle is $\\boxed{30^\\circ}$."
    assert grader.grade(text, "\\frac{\\pi}{6}", angles="convert") and not grader.grade(text, "\\frac{\\pi}{6}")
    assert grader.compare_full("180^\\circ", "\\pi", angles="convert") == Verdict.EQUAL
    assert slow_compare_job("30^\\circ", "\\frac{\\pi}{6}", "convert") == int(Verdict.EQUAL)
    assert slow_compare_job("30^\\circ", "\\frac{\\pi}{6}") == int(Verdict.NOT_EQUAL)
    assert set(grader.ANGLE_POLICIES) == {"degrees", "convert"}
    with pytest.raises(ValueError):
        grader.is_equiv("1", "1", angles="radians")
    with pytest.raises(ValueError):
        compare("1", "1", angles="gradians")


def test_bulk_and_control_take_the_policy():
    texts = ["The answer is: 30^\\circ", "The answer is: 30"]
    records = [{"answer": "\\frac{\\pi}{6}", "samples": [{"text": t} for t in texts]}]
    assert grader.grade_samples(records, workers=0) == [[False, False]]
    assert grader.grade_samples(records, workers=0, angles="convert") == [[True, False]]
    golds = ["\\frac{\\pi}{6}"]
    c = grader.control_metrics(golds, {"30^\\circ": 1, "30": 1}, [1], workers=0, angles="convert")
    assert c["pass_at_k"]["1"] == pytest.approx(0.5)
    c = grader.control_metrics(golds, {"30^\\circ": 1, "30": 1}, [1], workers=0)
    assert c["pass_at_k"]["1"] == pytest.approx(0.0)


def test_process_default_policy():
    old = grader.set_angle_policy("convert")
    try:
        assert grader.is_equiv("30^\\circ", "\\frac{\\pi}{6}")
        records = [{"answer": "\\pi", "samples": [{"text": "The answer is: 180^\\circ"}]}]
        assert grader.grade_samples(records, workers=0) == [[True]]
        assert not grader.is_equiv("30^\\circ", "\\frac{\\pi}{6}", angles="degrees")  # explicit wins
    finally:
        grader.set_angle_policy(old)
    assert not grader.is_equiv("30^\\circ", "\\frac{\\pi}{6}")
    with pytest.raises(ValueError):
        grader.set_angle_policy("radians")


# ---- segment and angle names -----------------------------------------------------------------

NAMES_EQUAL = [
    ("\\overline{AB}", "AB"), ("\\overline{AB}", "\\overline{BA}"), ("\\overline{ BA }", "AB"),
    ("\\overline{AB}=5", "5"), ("\\overline{AB} = 5", "AB = 5"), ("2\\overline{AB}", "2AB"),
    ("\\angle ABC", "\\angle CBA"), ("\\angle ABC = 30^\\circ", "\\angle CBA=30^\\circ"),
    # repeating decimals are not segments
    ("0.\\overline{3}", "\\frac13"), ("0.1\\overline{6}", "\\frac16"), ("1.\\overline{3}", "\\frac43"),
    ("0.\\overline{36}", "\\frac{4}{11}"),
]
NAMES_UNEQUAL = [
    ("\\overline{AB}", "\\overline{AC}"), ("\\overline{AB}", "AC"), ("\\overline{AB}=5", "6"),
    ("\\overline{AB}=5", "\\overline{CD}=5"), ("\\overline{AB}", "2AB"), ("\\overline{z}", "z"),
    ("\\angle ABC", "\\angle BAC"), ("\\angle ABC", "\\angle ACB"),
    ("\\angle ABC = 30^\\circ", "\\angle BAC = 30^\\circ"),
    ("0.\\overline{3}", "0.3"), ("0.\\overline{3}", "\\frac{3}{10}"), ("0.\\overline{36}", "\\frac{36}{100}"),
    ("AB", "AC"),
]


@pytest.mark.parametrize("pred,gold", NAMES_EQUAL)
def test_names_equal(pred, gold):
    assert compare(pred, gold) == Verdict.EQUAL
    assert compare(gold, pred) == Verdict.EQUAL


@pytest.mark.parametrize("pred,gold", NAMES_UNEQUAL)
def test_names_unequal(pred, gold):
    assert compare(pred, gold, symbolic=True) == Verdict.NOT_EQUAL
    assert compare(gold, pred, symbolic=True) == Verdict.NOT_EQUAL


# ---- polynomial inequalities vs intervals ----------------------------------------------------

INEQ_EQUAL = [
    ("x^2<4", "(-2,2)"), ("x^2 < 4", "-2<x<2"), ("x^2 \\le 4", "[-2,2]"), ("x^2>4", "(-\\infty,-2)\\cup(2,\\infty)"),
    ("x^2>4", "x<-2 \\text{ or } x>2"), ("x^2<2", "(-\\sqrt2,\\sqrt2)"), ("x^2-3x+2 \\le 0", "[1,2]"),
    ("x^3<8", "(-\\infty,2)"), ("x^2+1>0", "(-\\infty,\\infty)"),
]
INEQ_UNEQUAL = [
    ("x^2<4", "[-2,2]"), ("x^2<4", "(-2,2]"), ("x^2<4", "[-2,2)"), ("x^2 \\le 4", "(-2,2)"), ("x^2<4", "(-3,3)"),
    ("x^2<4", "(0,2)"), ("x^2<4", "-2 \\le x<2"), ("x^2>4", "(-\\infty,-2]\\cup(2,\\infty)"), ("x^2>4", "(2,\\infty)"),
    ("x^2<2", "(-1.414,1.414)"), ("x^2-3x+2 \\le 0", "[1,3]"), ("x^2<4", "2"), ("x^2<4", "y^2<4"),
    ("x^2<4", "-2<y<2"), ("x^2<4", "(-4,4)"),
]


@pytest.mark.parametrize("pred,gold", INEQ_EQUAL)
def test_polynomial_inequality_matches_interval(pred, gold):
    assert compare(pred, gold) == Verdict.UNDECIDED  # the fast path defers to sympy
    assert compare(pred, gold, symbolic=True) == Verdict.EQUAL
    assert compare(gold, pred, symbolic=True) == Verdict.EQUAL


@pytest.mark.parametrize("pred,gold", INEQ_UNEQUAL)
def test_polynomial_inequality_near_misses(pred, gold):
    assert compare(pred, gold, symbolic=True) == Verdict.NOT_EQUAL
    assert compare(gold, pred, symbolic=True) == Verdict.NOT_EQUAL


def test_polynomial_inequality_end_point_misses_are_fast():
    for gold in ("[-2,2]", "(-2,2]", "[-2,2)"):
        assert compare("x^2<4", gold) == Verdict.NOT_EQUAL
    assert compare("x^2\\le 4", "(-2,2)") == Verdict.NOT_EQUAL


def test_polynomial_inequality_through_bulk_slow_pass():
    records = [{"answer": "(-2,2)", "samples": [{"text": "The answer is: x^2<4"}, {"text": "The answer is: x^2\\le4"}]}]
    assert grader.grade_samples(records, workers=0) == [[True, False]]


# Degree signs inside answers: numbers in degrees under "degrees", radians under "convert".
INNER_DEGREES = [
    # (pred, gold, equal under "degrees", equal under "convert")
    ("0^\\circ < x < 90^\\circ", "(0, 90)", True, False),
    ("0^\\circ < x < 90^\\circ", "(0, \\frac{\\pi}{2})", False, True),
    ("(0^\\circ, 90^\\circ)", "(0, 90)", True, True),
    ("(0^\\circ, 90^\\circ)", "(0, \\frac{\\pi}{2})", False, True),
    ("30^\\circ + 45^\\circ", "75", True, False),
    ("x = 30^\\circ", "x = 30", True, True),
    ("\\cos 60^\\circ", "\\frac12", True, True),
    ("20^\\circ", "20\\%", False, False),
]


@pytest.mark.parametrize("pred,gold,deg,conv", INNER_DEGREES)
def test_degree_signs_inside_answers(pred, gold, deg, conv):
    want = {True: Verdict.EQUAL, False: Verdict.NOT_EQUAL}
    assert compare(pred, gold, angles="degrees", symbolic=True) == want[deg]
    assert compare(pred, gold, angles="convert", symbolic=True) == want[conv]


def test_evaluate_threads_the_policy_and_records_it(tmp_path):
    import json as _json

    from mathjax import grader as _grader

    path = tmp_path / "s.jsonl"
    path.write_text(_json.dumps({"id": "a", "question": "q", "answer": "\\frac{\\pi}{6}",
                                 "samples": [{"text": "The answer is: $30^\\circ$."}]}) + "\n")
    strict = _grader.evaluate(str(path), str(tmp_path / "d"), workers=0, progress=False)
    convert = _grader.evaluate(str(path), str(tmp_path / "c"), workers=0, progress=False, angles="convert")
    assert strict["pass_at_k"]["1"] == 0.0 and convert["pass_at_k"]["1"] == 1.0
    assert strict["grading_config"]["angles"] == "degrees" and convert["grading_config"]["angles"] == "convert"
    with pytest.raises(ValueError, match="angles must be one of"):
        _grader.evaluate(str(path), str(tmp_path / "x"), workers=0, progress=False, angles="radians")
