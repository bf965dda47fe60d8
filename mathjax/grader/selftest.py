"""Import-time self-test: fail loudly if the parser or sympy misbehave.

A handful of known comparisons through every layer (normalise, parse, exact
and numeric evaluation, the sympy bridge). Costs a few milliseconds; if any
answer is wrong the installation is broken and every score would be too.
"""

from __future__ import annotations

from mathjax.grader import latex, symbolic
from mathjax.grader.equiv import Verdict, compare

_CASES = (
    ("\\frac{1}{2}", "0.5", Verdict.EQUAL),
    ("50\\%", "\\dfrac12", Verdict.EQUAL),
    ("0.333", "\\frac13", Verdict.NOT_EQUAL),
    ("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}", Verdict.EQUAL),
    ("1.414", "\\sqrt2", Verdict.NOT_EQUAL),
    ("(x+1)^2", "x^2+2x+1", Verdict.EQUAL),
    ("x > 2", "(2, \\infty)", Verdict.EQUAL),
    ("1,234", "1234", Verdict.EQUAL),
)


def run_self_test() -> None:
    """Raise :class:`symbolic.GraderDependencyError` if any known case is wrong."""
    problems = []
    for pred, gold, want in _CASES:
        got = compare(pred, gold)
        if got != want:
            problems.append(f"compare({pred!r}, {gold!r}) = {got.name}, expected {want.name}")
    try:
        s = symbolic.to_sympy(latex.parse("\\sqrt{8}"))
        if str(s) != "2*sqrt(2)":
            problems.append(f"sympy built sqrt(8) as {s}")
        if symbolic.sympy_equal(latex.parse("2\\sqrt{2}"), latex.parse("\\sqrt{8}")) is not True:
            problems.append("sympy could not prove 2*sqrt(2) == sqrt(8)")
        if symbolic.sympy_equal(latex.parse("\\frac{1}{3}"), latex.parse("0.3333")) is not False:
            problems.append("sympy equated 1/3 and 0.3333")
    except Exception as e:  # pragma: no cover - only on a broken install
        problems.append(f"sympy bridge failed: {type(e).__name__}: {e}")
    if problems:
        raise symbolic.GraderDependencyError(
            "mathjax.grader self-test failed (broken sympy/mpmath install?):\n  " + "\n  ".join(problems)
        )
