"""Lost and doubled backslashes (normalize.restore_row_breaks, normalize._DOUBLED_FRAC_RE).

1. Inside a matrix environment a single backslash before a digit, a sign or a decimal point is a
   row break that lost its twin (MATH golds as MathCoder stores them, JSON-mangled outputs).
2. A doubled backslash before frac/dfrac/tfrac/sqrt with an argument is that command, even when
   the other commands of the answer are single (hendrycks/math and MARIO_EVAL golds).

Pairs are raw strings (what a dataset file holds) and are checked both ways.
"""

import pytest

from mathjax import grader
from mathjax.grader import latex
from mathjax.grader.normalize import normalize_answer, restore_row_breaks

EQUAL = [
    # -- 1. lost row breaks: the quoted data ...
    (r"\begin{pmatrix}-6\6\end{pmatrix}", "\\begin{pmatrix}\n-6 \\\\\n6\n\\end{pmatrix}"),
    (r"\begin{pmatrix}2&0\-3&5\end{pmatrix}", r"\begin{pmatrix}2&0\\-3&5\end{pmatrix}"),
    (r"\begin{pmatrix}0\0\0\end{pmatrix}", r"\begin{pmatrix}0\\0\\0\end{pmatrix}"),
    (r"\begin{pmatrix}11\-36\-3\end{pmatrix}", r"\begin{pmatrix} 11 \\ -36 \\ -3 \end{pmatrix}"),
    # ... and ours: other environments, "+", ".", spaces, fractions and variables as entries.
    (r"\begin{bmatrix}1.5\-2\end{bmatrix}", r"\begin{pmatrix}\frac32\\-2\end{pmatrix}"),
    (r"\begin{pmatrix}1\.5\end{pmatrix}", r"\begin{pmatrix}1\\0.5\end{pmatrix}"),
    (r"\begin{array}{c}3\+4\end{array}", r"\begin{pmatrix}3\\4\end{pmatrix}"),
    (r"\begin{matrix}1 & 2 \3 & 4\end{matrix}", r"\begin{bmatrix}1&2\\3&4\end{bmatrix}"),
    (r"\begin{pmatrix} x \-\frac{1}{2} \end{pmatrix}", r"\begin{pmatrix}x\\-1/2\end{pmatrix}"),
    (r"\begin{pmatrix}\frac{1}{3}\2\end{pmatrix}", r"\begin{pmatrix}\frac13\\2\end{pmatrix}"),
    (r"2\begin{pmatrix}1\-1\end{pmatrix}", r"\begin{pmatrix}2\\-2\end{pmatrix}"),  # arithmetic still applies
    (r"\boxed{\begin{pmatrix}7\-2\end{pmatrix}}", r"\begin{pmatrix}7\\-2\end{pmatrix}"),
    # A fully doubled answer whose row breaks also lost a twin: halved, then restored.
    (r"\\begin{pmatrix}-6\\6\\end{pmatrix}", r"\begin{pmatrix}-6\\6\end{pmatrix}"),
    # -- 2. mixed double escapes of the fraction family: the quoted data ...
    (r"\\dfrac{1}{2} +\frac{1}{72}", r"\tfrac{1}{2} +\! \frac1{72}"),
    (r"\\dfrac{2}{3} +\frac{1}{72}", r"\tfrac23 +\frac1{72}"),
    # ... and ours.
    (r"\\frac{3}{4}+\sqrt{2}", r"\frac34+\sqrt2"),
    (r"\\sqrt{2}+\frac{1}{2}", r"\sqrt2+\frac12"),
    (r"\\tfrac12 + \frac{1}{3}", r"\frac56"),
    (r"2\\sqrt3 \cdot \pi", r"2\sqrt{3}\pi"),
    (r"\left(\\frac{1}{2}, 3\right)", r"(0.5, 3)"),
    (r"\begin{pmatrix}\\frac{1}{2}\\3\end{pmatrix}", r"\begin{pmatrix}\frac12\\3\end{pmatrix}"),
]

NOT_EQUAL = [
    # -- 1. a different entry, entries in another order, a different shape (not a vector).
    (r"\begin{pmatrix}-6\6\end{pmatrix}", r"\begin{pmatrix}-6\\7\end{pmatrix}"),
    (r"\begin{pmatrix}-6\6\end{pmatrix}", r"\begin{pmatrix}6\\-6\end{pmatrix}"),
    (r"\begin{pmatrix}2&0\-3&5\end{pmatrix}", r"\begin{pmatrix}2&-3\\0&5\end{pmatrix}"),
    (r"\begin{pmatrix}2&0\-3&5\end{pmatrix}", r"\begin{pmatrix}2\\0\\-3\\5\end{pmatrix}"),
    (r"\begin{pmatrix}0\0\0\end{pmatrix}", r"\begin{pmatrix}0\\0\end{pmatrix}"),
    (r"\begin{pmatrix}11\-36\-3\end{pmatrix}", r"\begin{pmatrix}11\\-36\\3\end{pmatrix}"),
    (r"\begin{pmatrix}1\.5\end{pmatrix}", r"\begin{pmatrix}1.5\end{pmatrix}"),
    # Outside a matrix nothing changes: "\6" is no row break there.
    (r"-6\6", r"-66"),
    (r"-6\6", r"\begin{pmatrix}-6\\6\end{pmatrix}"),
    # -- 2. a different fraction; another name after "\\" stays a row break; no argument, no command.
    (r"\\dfrac{1}{2}+\frac{1}{72}", r"\frac{1}{2}+\frac{1}{73}"),
    (r"\\dfrac{2}{3} +\frac{1}{72}", r"\tfrac23 +\frac1{73}"),
    (r"\\sqrt{2}+\frac12", r"\sqrt{3}+\frac12"),
    (r"\begin{pmatrix}1\\pi\end{pmatrix}", r"\begin{pmatrix}\pi\end{pmatrix}"),
]


@pytest.mark.parametrize("a,b", EQUAL)
def test_equal(a, b):
    assert grader.is_equiv(a, b), (a, b)
    assert grader.is_equiv(b, a), (b, a)


@pytest.mark.parametrize("a,b", NOT_EQUAL)
def test_not_equal(a, b):
    assert not grader.is_equiv(a, b), (a, b)
    assert not grader.is_equiv(b, a), (b, a)


def _shape(s: str) -> tuple[int, int]:
    node = latex.parse(normalize_answer(s))
    assert node[0] == "matrix", node
    return len(node[1]), len(node[1][0])


@pytest.mark.parametrize("s,shape", [
    (r"\begin{pmatrix}-6\6\end{pmatrix}", (2, 1)),  # a column, never the row "-6 & 6"
    (r"\begin{pmatrix}-6&6\end{pmatrix}", (1, 2)),
    (r"\begin{pmatrix}2&0\-3&5\end{pmatrix}", (2, 2)),
    (r"\begin{pmatrix}0\0\0\end{pmatrix}", (3, 1)),
    (r"\begin{pmatrix}11\-36\-3\end{pmatrix}", (3, 1)),
    (r"\begin{pmatrix}1\\2\end{pmatrix}", (2, 1)),  # a real row break stays one
    (r"\begin{pmatrix}1\\-2\end{pmatrix}", (2, 1)),  # ... and is not doubled again
    (r"\begin{pmatrix}1\\pi\end{pmatrix}", (2, 1)),  # "\\pi" is not undoubled: row break, then "pi"
    (r"\begin{pmatrix}\\frac{1}{2}\end{pmatrix}", (1, 1)),  # "\\frac{" is the command
    (r"\begin{pmatrix}1\\\frac{1}{2}\end{pmatrix}", (2, 1)),  # three backslashes: a row break, then \frac
    (r"\begin{pmatrix}1&2\\3&4\end{pmatrix}", (2, 2)),
])
def test_matrix_shapes(s, shape):
    assert _shape(s) == shape


@pytest.mark.parametrize("s", [
    r"-6\6", r"2\-3", r"x\.5", r"\frac{1}{2}\6",  # no matrix: left alone
    r"\begin{cases}1\2\end{cases}",  # not a matrix environment the parser reads
    r"\begin{pmatrix}1\\2\end{pmatrix}", r"\begin{pmatrix}1\\\frac12\end{pmatrix}",
])
def test_row_breaks_only_restored_inside_matrices(s):
    assert restore_row_breaks(s) == s


def test_restore_row_breaks_nested_and_around():
    s = r"-1\2 + \begin{pmatrix}\begin{matrix}1\2\end{matrix}\3\end{pmatrix}\4"
    want = r"-1\2 + \begin{pmatrix}\begin{matrix}1\\2\end{matrix}\\3\end{pmatrix}\4"
    assert restore_row_breaks(s) == want


@pytest.mark.parametrize("s,want", [
    (r"\\dfrac{1}{2} +\frac{1}{72}", r"\frac{1}{2}+\frac{1}{72}"),
    (r"\\sqrt2+\pi", r"\sqrt2+\pi"),
    (r"\\fraction + \pi", r"\\fraction + \pi"),  # not a command name: untouched
    (r"\\frac x + \pi", r"\\frac x + \pi"),  # no "{" or digit after the name
    (r"\begin{pmatrix}1\\\frac{1}{2}\end{pmatrix}", r"\begin{pmatrix}1\\\frac{1}{2}\end{pmatrix}"),  # row break, \frac
])
def test_doubled_fraction_family(s, want):
    assert normalize_answer(s).replace(" ", "") == want.replace(" ", "")


@pytest.mark.parametrize("text,gold", [
    (r"So the answer is $\boxed{\begin{pmatrix}-6\6\end{pmatrix}}$.", r"\begin{pmatrix}-6\\6\end{pmatrix}"),
    (r"The answer is $\boxed{\begin{pmatrix}-6\\6\end{pmatrix}}$.", r"\begin{pmatrix}-6\6\end{pmatrix}"),
    (r"Hence $\boxed{\tfrac{1}{2} +\! \frac1{72}}$.", r"\\dfrac{1}{2} +\frac{1}{72}"),
    (r"Hence $\boxed{\\dfrac{1}{2} +\frac{1}{72}}$.", r"\frac{37}{72}"),
])
def test_grade_both_sides(text, gold):
    assert grader.grade(text, gold)
