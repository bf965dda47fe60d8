"""Exact arithmetic checks: check_arithmetic / has_arithmetic_slip."""

import dataclasses
from fractions import Fraction

import pytest

from mathjax.grader.arithmetic import ArithmeticCheck, check_arithmetic, has_arithmetic_slip

F = Fraction


def _one(text):
    checks = check_arithmetic(text)
    assert len(checks) == 1, checks
    return checks[0]


@pytest.mark.parametrize(
    "text,claimed,actual",
    [
        ("3 * 12 = 36", F(36), F(36)),
        ("36 + 4 = 40", F(40), F(40)),
        ("120 / 3 = 40", F(40), F(40)),
        ("1/2 * 30 = 15", F(15), F(15)),
        ("25% of 80 = 20", F(20), F(20)),
        ("3 x 4 = 12", F(12), F(12)),
        ("3 × 4 = 12", F(12), F(12)),
        ("12 ÷ 4 = 3", F(3), F(3)),
        ("$1,200 + $300 = $1,500", F(1500), F(1500)),
        ("5 - 8 = -3", F(-3), F(-3)),
        ("-3 + 5 = 2", F(2), F(2)),
        ("1/2 + 1/4 = 3/4", F(3, 4), F(3, 4)),
        ("(2 + 3) * 4 = 20", F(20), F(20)),
        ("2(3 + 4) = 14", F(14), F(14)),
        ("0.5 * 3 = 1.5", F(3, 2), F(3, 2)),
        ("1.1 + 2.2 = 3.3", F(33, 10), F(33, 10)),
        ("50 / 200 = 25%", F(1, 4), F(1, 4)),
        ("0.25 * 100 = 25%", F(25), F(25)),
        ("20% * 50 = 10", F(10), F(10)),
        ("$3 \\times 4 = 12$", F(12), F(12)),
        ("\\frac{1}{2} \\cdot 30 = 15", F(15), F(15)),
        ("She makes 9 * 2 = $<<9*2=18>>18 every day", F(18), F(18)),
        ("Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs.", F(9), F(9)),
        ("**3 + 4 = 7**", F(7), F(7)),
        ("(so 3 + 4 = 7)", F(7), F(7)),
        ("1,000 * 3 = 3,000", F(3000), F(3000)),
        ("3 − 1 = 2", F(2), F(2)),
    ],
)
def test_correct_equations(text, claimed, actual):
    c = _one(text)
    assert (c.claimed, c.actual, c.ok) == (claimed, actual, True)


@pytest.mark.parametrize(
    "text,claimed,actual",
    [
        ("3 * 12 = 35", F(35), F(36)),
        ("The total is 3 + 4 = 8 apples.", F(8), F(7)),
        ("(2 + 3) * 4 = 21", F(21), F(20)),
        ("10 / 3 = 3.33", F(333, 100), F(10, 3)),
        ("25% of 80 = 25", F(25), F(20)),
        ("2 + 3 * 4 = 20", F(20), F(14)),
        ("1/2 + 1/3 = 2/5", F(2, 5), F(5, 6)),
    ],
)
def test_slips(text, claimed, actual):
    c = _one(text)
    assert (c.claimed, c.actual, c.ok) == (claimed, actual, False)
    assert has_arithmetic_slip(text)


def test_division_by_zero_is_a_slip_with_no_value():
    c = _one("5/0 = 0")
    assert c.actual is None and not c.ok


@pytest.mark.parametrize(
    "text",
    [
        "x + 3 = 5",
        "2^3 + 1 = 9",
        "2x + 3 = 7",
        "f(2) = 4",
        "3 * 12 = 36 + 4",  # right side is an expression
        "2 + 2 <= 5",
        "2 + 2 >= 5",
        "a == b",
        "the value is 7 = seven",
        "x_1 + 2 = 5",
        "80 - 25% = 60",  # ambiguous percent
        "no equations here",
        "",
        "3 = 3",  # nothing computed
    ],
)
def test_not_checked(text):
    assert check_arithmetic(text) == []
    assert not has_arithmetic_slip(text)


def test_chain_checks_each_link():
    checks = check_arithmetic("3 * 12 = 36 + 4 = 40")
    assert [(c.expression, c.ok) for c in checks] == [("36 + 4 = 40", True)]
    checks = check_arithmetic("x = 2 * 3 = 6")
    assert [(c.expression, c.ok) for c in checks] == [("2 * 3 = 6", True)]


def test_many_lines_in_order():
    text = "He buys 3 * 4 = 12 eggs.\nThen 12 - 5 = 6 are left.\n4 × 5 = 20 and 20 ÷ 4 = 5."
    checks = check_arithmetic(text)
    assert [c.ok for c in checks] == [True, False, True, True]
    assert checks[1].expression == "12 - 5 = 6"
    assert has_arithmetic_slip(text)


def test_rounding_option():
    assert not check_arithmetic("10 / 3 = 3.33")[0].ok
    assert check_arithmetic("10 / 3 = 3.33", rounding=True)[0].ok
    assert not check_arithmetic("10 / 3 = 3.34", rounding=True)[0].ok
    assert not has_arithmetic_slip("10 / 3 = 3.33", rounding=True)


def test_dataclass_shape():
    fields = [f.name for f in dataclasses.fields(ArithmeticCheck)]
    assert fields == ["expression", "claimed", "actual", "ok"]
    c = _one("1 + 1 = 2")
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.ok = False
    assert isinstance(c.claimed, Fraction) and isinstance(c.actual, Fraction)


def test_procedural_style_solution_is_proved_right():
    solution = (
        "Tom has 3 boxes with 12 pencils each, so he has 3 * 12 = 36 pencils.\n"
        "He buys 4 more: 36 + 4 = 40.\n"
        "He shares them among 3 friends and himself... no, among 4 people: 40 / 4 = 10.\n"
        "Half of that is 1/2 * 10 = 5.\n"
        "The answer is: 5."
    )
    checks = check_arithmetic(solution)
    assert len(checks) == 4 and all(c.ok for c in checks)


def test_hostile_input_is_fast():
    import time

    text = ("1 + " * 20000 + "1 = 20001\n") + "(" * 5000 + "1" + ")" * 5000 + " = 1\n" + "9" * 100000 + " + 1 = 2"
    t = time.perf_counter()
    check_arithmetic(text)
    assert time.perf_counter() - t < 2.0
