"""Labelled answers, relations, equations and structures as real model answers write them.

Each rule has its own examples (EQUAL, checked both ways) and near misses
(NOT_EQUAL, both ways) that must stay unequal. The examples are our own; the
peer's labelled cases (benchmarks/grader_agreement.py) are the held-out measure.
"""

import pytest

from mathjax import grader
from mathjax.grader import decimals, labels
from mathjax.grader.keys import answer_key
from mathjax.grader.normalize import undouble_escapes
from grader_pairs import pair_params

M = "\\begin{pmatrix}%s\\end{pmatrix}"

EQUAL = {
    # labels.py: a ratio of named quantities on the left is a label; ratios compare term by term.
    "ratio_labels": [
        ("\\frac{2}{5}", "\\frac{AM}{MC} = \\frac{2}{5}"), ("3:4", "PA:PB = 3:4"), ("1:3", "V_a:V_b = 1:3"),
        ("4:9", "S_{PQR}:S_{ABC} = 4:9"), ("1", "AB:BC = 1"), ("\\frac12:2", "a:b = 0.5:2"),
        ("\\frac{AM}{MC} = 0.4", "\\frac{AM}{MC} = \\frac25"), ("1:\\sqrt{2}", "1:2^{1/2}"),
        ("\\frac{\\sqrt3}{3}", "\\frac{ON}{OK}=\\frac{1}{\\sqrt{3}}"),
    ],
    # relations.py: a tuple of variables on the left (existing rule, checked with 3 components).
    "tuple_labels": [("(4,1)", "(a,b)=(4,1)"), ("(1,5,9)", "(a,b,c)=(1,5,9)"), ("(a,b)=(4,1)", "(4, 1)")],
    # assignments.py: repeating assignments are solutions of a system.
    "solution_lists": [
        ("(3,1),(4,2)", "m=3,n=1;m=4,n=2"), ("(4,2),(3,1)", "m=3,n=1;m=4,n=2"),
        ("(1,0,2),(5,5,5)", "u=1,v=0,w=2;u=5,v=5,w=5"), ("m=4,n=2;m=3,n=1", "m=3,n=1;m=4,n=2"),
    ],
    # Lists of labelled values (names with subscripts, "and", "\quad" glued to the next name).
    "labelled_value_lists": [
        ("2, -5", "x_1 = 2, x_2 = -5"), ("-5, 2", "x_1 = 2, x_2 = -5"), ("3, 4", "x_{1}=3,\\quadx_{2}=4"),
        (
            "\\frac{3+\\sqrt5}{2}, \\frac{3-\\sqrt5}{2}",
            "t_1 = \\frac32 + \\frac{\\sqrt5}{2}, \\quad t_2 = \\frac32 - \\frac{\\sqrt5}{2}",
        ),
        ("t=2, t=7", "t = 2 \\text{ and } t = 7"),
        ("P(x) = 0 \\text{ or } P(x) = 2", "P(n) = 0 \\text{ and } P(n) = 2"),
        ("b_{12} = 7, b_2 = 1", "b_2 = 1, b_{12} = 7"), ("PQ = 6, RS = 2", "6, 2"),
        ("x = 1, y = 2", "(1, 2)"),
    ],
    # labels.py: named quantities the parser cannot read label a value too.
    "name_labels": [
        ("60", "\\angle A = 60^\\circ"), ("45", "m\\angle ABC = 45^\\circ"), ("6", "[ABC] = 6"),
        ("12", "\\text{Area} = 12"), ("30", "Total cost = 30"), ("\\angle CBA = 45", "\\angle ABC = 45"),
    ],
    # labels.py: set-builder notation is its condition.
    "set_builder": [
        ("(2, \\infty)", "\\{x \\mid x > 2\\}"), ("[-1, 3)", "\\{t | -1 \\le t < 3\\}"),
        ("x > 2", "\\{x : x > 2\\}"), ("(0, 1)", "\\{x \\in \\mathbb{R} \\mid 0 < x < 1\\}"),
    ],
    # relations.py: "x \approx v" gives the value v for x.
    "approximate_labels": [("y \\approx 2.5", "2.5"), ("y \\approx 2.5", "\\frac52"), ("z\\approx 40", "40")],
    # Relation spellings.
    "relation_spellings": [
        ("t \\geq 4", "t >= 4"), ("4 \\leq t", "t \\ge 4"), ("t \\lt 9", "t < 9"), ("t \\gt 1", "t > 1"),
        ("t != 6", "t \\neq 6"), ("t \\ne 6", "t \\neq 6"), ("9 \\geq t", "t \\leqslant 9"),
    ],
    # relations.py: linear one-variable inequalities are solved, the relation being either side.
    "linear_inequalities": [
        ("-t > -6", "t < 6"), ("-3t \\leq 9", "t \\ge -3"), ("-t >= -6", "t \\le 6"),
        # a linear part vanishing at t = 1 or t = 2 (sample points of the solver)
        ("t - 1 < 2", "t < 3"), ("2t - 4 > 0", "(2, \\infty)"),
    ],
    "interval_chains": [
        ("t \\in [-4, 9]", "-4 \\le t \\le 9"), ("[-4,9]", "-4 \\le t \\le 9"), ("-4 \\le t \\le 9", "[-4, 9]"),
        ("(-50, 3)", "-50 < b < 3"), ("(0,2)", "0 < g(x) < 2"), ("b \\in (-50, 3)", "-50 < b < 3"),
    ],
    # relations.py: |w| bounded is the union of the two mirrored intervals.
    "absolute_value_bounds": [
        ("w \\in [-5,-2] \\cup [2,5]", "2 \\le |w| \\le 5"), ("(-4,4)", "|w| < 4"),
        ("(-\\infty,-1] \\cup [1, \\infty)", "|w| \\ge 1"), ("(-4,0) \\cup (0,4)", "0 < |w| < 4"),
        ("[-4,4]", "-2 \\le |w| \\le 4"),
        # |linear| bounded: solved for the variable
        ("(-1, 3)", "|w - 1| < 2"), ("(-\\infty,-1] \\cup [2,\\infty)", "|1 - 2w| \\ge 3"),
        ("(-1,1) \\cup (3,5)", "1 < |w - 2| < 3"),
    ],
    # Equations with the same solution set (proportional lhs - rhs).
    "equations": [
        ("y = \\frac{x}{2} + \\frac32", "3x - 6y + 9 = 0"), ("-2x - 4y + 2z + 8 = 0", "x + 2y - z = 4"),
        ("\\frac{x^2}{18}+\\frac{y^2}{10}=\\frac12", "\\frac{x^2}{9} + \\frac{y^2}{5} = 1"), ("g(t) = t", "g(t) = t"),
    ],
    # decimals.py: a long decimal is the rational it renders.
    "long_decimals": [
        ("0.1666666666666667", "\\frac16"), ("0.142857142857", "\\frac17"), ("0.1428571428571429", "1/7"),
        ("-2.333333333333333", "-\\frac73"), ("0.7000000000000001", "\\frac{7}{10}"), ("0.1666666666666666", "1/6"),
        ("0.09090909090909091", "\\frac{1}{11}"), ("(0.3333333333333333, 2)", "(\\frac13, 2)"),
        ("66.66666666666667\\%", "\\frac{2}{3}"),
    ],
    # normalize.py: a string printed with its escapes (every command doubled).
    "doubled_escapes": [
        ("\\\\frac{3}{4}", "0.75"), ("\\\\left[ 1, \\\\frac{5}{2} \\\\right)", "[1, 2.5)"),
        ("-1 \\\\le y \\\\le 4", "y \\in [-1, 4]"), ("\\\\begin{pmatrix}1\\\\\\\\2\\\\end{pmatrix}", M % "1\\\\2"),
    ],
    # labels.py: a chain the parser cannot read is its last constant.
    "chains": [("8", "2 = \\foo = y = 8"), ("8", "y = 3 + 5 = 8")],
    # matrices.py: scalar multiples, sums and products of matrices are carried out.
    "matrix_arithmetic": [
        ("3" + M % "1 & -1", M % "3 & -3"), ("-" + M % "2\\\\0", M % "-2\\\\0"),
        (M % "1 & 0\\\\2 & 1" + " + " + M % "0 & 3\\\\1 & 1", M % "1 & 3\\\\3 & 2"),
        (M % "1 & 1\\\\0 & 1" + M % "1 & 2\\\\0 & 1", M % "1 & 3\\\\0 & 1"),
        ("\\frac12" + M % "4\\\\6", M % "2\\\\3"),
        ("\\left[\\begin{array}{cc}1&5\\\\2&7\\end{array}\\right]", "\\begin{bmatrix}1&5\\\\2&7\\end{bmatrix}"),
        (M % "\\sqrt[3]{x}^2 & 1", M % "x^{2/3} & 1"),
    ],
    # equiv.py: \sum / \prod with the same bounds and equal bodies.
    "big_operators": [
        ("\\sum_{i=1}^{m} a_i b_i", "\\sum_{i=1}^{m} b_i a_i"), ("\\sum_{j=1}^{n} j^3", "\\sum_{k=1}^{n} k^3"),
        ("\\prod_{k=1}^{n} 2k", "\\prod_{k=1}^{n} k \\cdot 2"),
    ],
    "words_and_letters": [
        ("\\text{prime}", "prime"), ("\\text{Odd}", "Odd"), ("\\text{B}", "B"),
        ("\\text{The sequence is periodic}", "\\text{The sequence is periodic}"),
    ],
    "sets_and_signs": [
        ("\\{2,5\\}\\cup\\{7\\}", "\\{2,5,7\\}"), ("\\pm 17", "\\{-17, 17\\}"), ("{2,9}", "(2,9)"),
        ("\\{-3, 3\\}", "\\pm 3"),
    ],
    "expressions": [
        ("\\frac{y}{5}+\\frac{3}{5}", "\\frac{y+3}{5}"), ("(6+2)", "8"), ("(2, 3.5)", "(2, \\frac72)"),
        ("\\csc^2(t)", "\\cot^2(t)+1"),
    ],
}

NOT_EQUAL = {
    "ratio_labels": [
        ("\\frac{5}{2}", "\\frac{AM}{MC} = \\frac{2}{5}"), ("4:3", "PA:PB = 3:4"), ("3", "PA:PB = 3:4"),
        ("\\frac{AM}{MB} = 2", "\\frac{AM}{MC} = 2"), ("9:30", "3:10"), ("2:4", "1:2"), ("0.75", "3:4"),
        ("2", "AB:BC = 1"), ("1:3:5", "1:3"), ("9:30 a.m.", "9:30 p.m."),
        # a labelled ratio against another kind of label
        ("AB:BC = 1", "|AB| = 1"), ("AB:BC = 1", "P(x) = 1"),
    ],
    "name_labels": [
        ("\\angle B = 60^\\circ", "\\angle A = 60^\\circ"), ("\\text{Perimeter} = 12", "\\text{Area} = 12"),
        ("61", "\\angle A = 60^\\circ"), ("6", "xy = 6"), ("\\angle BAC = 45", "\\angle ABC = 45"),
    ],
    "set_builder": [
        ("[2, \\infty)", "\\{x \\mid x > 2\\}"), ("y > 2", "\\{x : x > 2\\}"), ("(-1, 3)", "\\{t | -1 \\le t < 3\\}"),
    ],
    "tuple_labels": [("(1,4)", "(a,b)=(4,1)"), ("(9,5,1)", "(a,b,c)=(1,5,9)"), ("(4,1,0)", "(a,b)=(4,1)")],
    "solution_lists": [
        ("(1,3),(2,4)", "m=3,n=1;m=4,n=2"), ("(3,1),(4,3)", "m=3,n=1;m=4,n=2"), ("(3,1)", "m=3,n=1;m=4,n=2"),
        ("(3,1),(4,2),(5,3)", "m=3,n=1;m=4,n=2"),
    ],
    "labelled_value_lists": [
        ("2, 5", "x_1 = 2, x_2 = -5"), ("3", "x_{1}=3,\\quadx_{2}=4"), ("t = 2", "t = 2 \\text{ and } t = 7"),
        ("Q(x) = 0, Q(x) = 2", "P(n) = 0, P(n) = 2"), ("PQ = 4", "PR = 4"), ("P(x) = 1", "P(n) = 0"),
        ("y_1 = 2, y_2 = -5", "x_1 = 2, x_2 = -5"),
        # alternatives for one variable are a set, not the components of a point
        ("x = 1 \\text{ or } x = 2", "(1, 2)"), ("t = 3, t = 4", M % "3 & 4"),
    ],
    "approximate_labels": [("y \\approx 1.41", "\\sqrt2"), ("y \\approx 2.5", "x = 2.5"), ("y \\approx 2.5", "2.6")],
    "relation_spellings": [
        ("t \\neq 6", "6"), ("t \\neq 6", "t = 6"), ("t \\geq 4", "t > 4"), ("4 \\leq t", "t \\leq 4"),
        ("u \\geq 4", "t \\geq 4"), ("t \\lt 9", "t \\le 9"), ("t \\geq 4", "4"), ("t != 6", "t \\neq 7"),
    ],
    "linear_inequalities": [
        ("-t > -6", "t > 6"), ("-3t \\leq 9", "t \\le -3"), ("-t > -6", "t \\le 6"), ("t - 1 < 2", "t < 1"),
        ("2t - 4 > 0", "[2, \\infty)"),
    ],
    "interval_chains": [
        ("(-4, 9]", "-4 \\le t \\le 9"), ("[-4, 9)", "-4 \\le t \\le 9"), ("u \\in [-4,9]", "-4 \\le t \\le 9"),
        ("(-50,3]", "-50 < b < 3"), ("[0,2]", "0 < g(x) < 2"), ("(-50, 4)", "-50 < b < 3"),
    ],
    "absolute_value_bounds": [
        ("[-5,5]", "2 \\le |w| \\le 5"), ("[2,5]", "2 \\le |w| \\le 5"), ("(-5,-2)\\cup(2,5)", "2 \\le |w| \\le 5"),
        ("[-4,4]", "|w| < 4"), ("(-4,4)", "0 < |w| < 4"), ("v \\in [-5,-2] \\cup [2,5]", "2 \\le |w| \\le 5"),
        ("(-3, 1)", "|w - 1| < 2"), ("(-1, 3]", "|w - 1| < 2"), ("(-1, 3)", "|w + 1| < 2"),
    ],
    "equations": [
        ("3x - 6y - 9 = 0", "3x - 6y + 9 = 0"), ("x + 2y + z = 4", "x + 2y - z = 4"),
        ("\\frac{x^2}{9}+\\frac{y^2}{5}=2", "\\frac{x^2}{9} + \\frac{y^2}{5} = 1"), ("g(t) = t", "g(t) = 2t"),
    ],
    "long_decimals": [
        ("158323.333333", "\\frac{474970}{3}"),  # 12 digits but 6 places: a rounded value
        ("0.16667", "\\frac16"), ("0.1666666667", "\\frac16"), ("0.1666666666666677", "\\frac16"),
        ("2.6457513110645907", "\\sqrt7"), ("0.1666666666666667", "-\\frac16"), ("1.00000000001", "1.00000000002"),
        ("3.141592653589793", "\\pi"), ("0.14285714285", "\\frac17"), ("0.1666666666666667 x", "\\frac{x}{6}"),
        ("0.3333333333333333", "\\frac{1}{3.000001}"), ("66.67\\%", "\\frac{2}{3}"),
    ],
    "doubled_escapes": [
        ("\\\\frac{3}{4}", "\\frac{4}{3}"), ("\\\\left[ 1, \\\\frac{5}{2} \\\\right)", "[1, 2.5]"),
        ("-1 \\\\le y \\\\le 4", "x \\in [-1, 4]"),
    ],
    "chains": [("2", "2 = \\foo = y = 8"), ("3", "y = 3 + 5 = 8")],
    "matrix_arithmetic": [
        ("2" + M % "1\\\\3", M % "2\\\\5"),
        (M % "1 & 2\\\\0 & 1" + M % "1 & 1\\\\0 & 1", M % "1 & 2\\\\0 & 2"),
        (M % "1 & 1\\\\0 & 1" + M % "1 & 0\\\\1 & 1", M % "1 & 1\\\\1 & 2"),
        (M % "1 & 0\\\\2 & 1" + " + " + M % "0 & 3\\\\1 & 1", M % "1 & 3\\\\3 & 1"),
        (M % "1 & 2" + " + " + M % "1\\\\2", M % "2 & 4"), (M % "\\sqrt[3]{x} & 1", M % "x^{2/3} & 1"),
    ],
    "big_operators": [
        ("\\sum_{i=2}^{m} a_i b_i", "\\sum_{i=1}^{m} a_i b_i"), ("\\prod_{i=1}^{m} a_i", "\\sum_{i=1}^{m} a_i"),
        ("\\sum_{k=1}^{n} x^k", "\\sum_{k=1}^{n} y^k"), ("\\sum_{k=1}^{n} k^2", "\\sum_{k=1}^{n+1} k^2"),
    ],
    "words_and_letters": [("\\text{prime}", "\\text{composite}"), ("\\text{B}", "C"), ("\\text{Odd}", "\\text{Even}")],
    "sets_and_signs": [
        ("\\pm 17", "17"), ("\\{2,5\\}\\cup\\{7\\}", "\\{2,5\\}"), ("\\{2,5\\}\\cup\\{7\\}", "\\{2,5,7,8\\}"),
        ("(2,9)", "\\{2,9\\}"), ("\\pm 3", "(3, -3)"), ("\\pm 3", M % "3 & -3"),
    ],
    "expressions": [
        ("\\frac{y}{5}+\\frac{3}{5}", "\\frac{y+3}{6}"), ("(6+2)", "9"), ("(2, 3.5)", "(2, \\frac52)"),
        ("\\csc^2(t)", "\\cot^2(t)"),
    ],
    # Function application is never a number with a unit (README, "No false equal").
    "function_application": [
        ("\\cos^2(u)", "\\cos^2(v)"), ("g^{-1}(u)", "g^{-1}(v)"), ("y^3(z)", "y^3"), ("5(b)", "5"),
        ("-[2,3)", "3"), ("-[2,3)", "2"), ("-[0,1)", "1"),
    ],
}




@pytest.mark.parametrize("pred,gold", pair_params(EQUAL))
def test_equal_both_ways(pred, gold):
    assert grader.is_equiv(pred, gold), (pred, gold)
    assert grader.is_equiv(gold, pred), (gold, pred)


@pytest.mark.parametrize("pred,gold", pair_params(NOT_EQUAL))
def test_not_equal_both_ways(pred, gold):
    assert not grader.is_equiv(pred, gold), (pred, gold)
    assert not grader.is_equiv(gold, pred), (gold, pred)


def test_ratio_label_parts():
    assert labels.split_label("S_{ABC}:S = 7:32") == ("S_ABC:S", "7:32")
    assert labels.split_label("\\frac{NO}{BO}=\\frac{1}{\\sqrt{6}}") == ("NO/BO", "\\frac{1}{\\sqrt{6}}")
    assert labels.split_label("x = 3") is None  # one variable: an ordinary assignment (relations.py)
    assert labels.split_label("x \\le 3") is None
    assert labels.parse_ratio("\\{x : x > 0\\}") is None  # set-builder colon is no ratio
    assert labels.parse_ratio("9:30 a.m.") is None


def test_long_decimal_unit_in_last_place():
    # 0.0833333333333 (12 digits) is 1/12 truncated; one more unit in the last digit is not.
    assert decimals.long_decimal_match(grader.analyze("0.0833333333333").node, grader.analyze("1/12").node)
    assert not decimals.long_decimal_match(grader.analyze("0.0833333333334").node, grader.analyze("1/12").node)
    assert decimals.long_decimal_match(grader.analyze("0.0833333333").node, grader.analyze("1/12").node) is None


def test_long_decimal_pools_for_majority_vote():
    assert answer_key("0.1666666666666667") == answer_key("\\frac{1}{6}")
    assert answer_key("0.16667") != answer_key("\\frac{1}{6}")
    assert answer_key("V_1:V_2 = 2:3") == answer_key("2:3") != answer_key("3:2")


def test_undouble_only_when_every_command_is_doubled():
    assert undouble_escapes("\\\\frac{1}{2}") == "\\frac{1}{2}"
    row_break = "\\begin{pmatrix}1\\\\2\\end{pmatrix}"
    assert undouble_escapes(row_break) == row_break  # "\\" here is a row break
