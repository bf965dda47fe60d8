"""Two policy rules: a percentage's /100 reading only against a proportion, and ``<quantity> = c`` is c.

* ``x%`` reads as ``x`` (the unit dropped) and as ``x/100``; the second only
  when the other side is a constant in [-1, 1]. A bare number above 1 against a
  percentage is the percentage's own number (GSM8K writes "what percent" golds
  as ``12``), so ``1200%`` vs ``12`` is a percentage computed twice, not a match.
* A named quantity of one variable given a constant (``z^3 = -1``,
  ``\\sin^2 x = 1``) answers "find z^3": its value is the right side. Equations
  still to solve stay unequal to their solutions, and so does ``|x| = 1``.
"""

import pytest

from mathjax import grader
from tests.grader_pairs import pair_params

EQUAL = {
    "percent unit reading": [("12\\%", "12"), ("150\\%", "150"), ("0.5\\%", "0.5"), ("12 percent", "12")],
    "percent as a proportion": [("25\\%", "0.25"), ("50\\%", "\\frac12"), ("100\\%", "1"), ("-20\\%", "-0.2"),
                                ("0.5\\%", "0.005"), ("12.5\\%", "\\frac{1}{8}")],
    "quantity = constant": [("z^3 = -1", "-1"), ("\\sin^2(x) = 1", "1"), ("\\sin^2 x = 1", "1"),
                            ("\\cos x = \\frac12", "0.5"), ("\\log_2 x = 3", "3"),
                            ("x^2 = 4", "4"), ("\\tan\\theta = 2", "2")],
    "equations still compare as equations": [("x^2 = 4", "x^2 - 4 = 0"), ("x = 3", "3")],
}

UNEQUAL = {
    "percent computed twice": [("1200\\%", "12"), ("12", "1200\\%"), ("2500\\%", "25"), ("150\\%", "1.5"),
                               ("200\\%", "2")],
    "percent near misses": [("12\\%", "0.13"), ("12\\%", "13"), ("25\\%", "0.025"), ("50\\%", "5")],
    "quantity near misses": [("z^3 = -1", "1"), ("x^2 = 4", "2"), ("x^2 = 4", "\\pm 2"), ("x^2 = 4", "x = 2"),
                             ("x^2 = 4", "y^2 = 4"), ("\\sin x = \\frac12", "\\cos x = \\frac12"),
                             ("x^y = 4", "4"), ("x^2 = 4", "-4"), ("|x| = 1", "1")],
    "still to solve": [("2x = 6", "6"), ("2x = 6", "3"), ("x + y = 10", "10"), ("150 = 500 - x", "350"),
                       ("x^2 + y^2 = 25", "25")],
}


@pytest.mark.parametrize("a,b", pair_params(EQUAL))
def test_equal(a, b):
    assert grader.is_equiv(a, b) and grader.is_equiv(b, a)


@pytest.mark.parametrize("a,b", pair_params(UNEQUAL))
def test_unequal(a, b):
    assert not grader.is_equiv(a, b) and not grader.is_equiv(b, a)


def test_graded_outputs():
    # The GSM8K output that exposed the rule: a probability "in percent" multiplied by 100 twice.
    assert not grader.grade("The probability that both tickets are winners is \\( \\boxed{1200\\%} \\).", "12")
    assert grader.grade("So the share is \\boxed{25\\%}.", "0.25")
    assert grader.grade("Therefore $z^3 = -1$.", "-1")
    assert not grader.grade("Now we solve $2x = 6$.", "6")
