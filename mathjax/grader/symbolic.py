"""The sympy side: version guard, tree -> sympy conversion, exact slow check.

sympy objects are built directly from the parser's tuples (``Rational`` for
numbers, ``Symbol`` for variables); no string ever reaches ``sympify``,
``parse_expr`` or ``eval``. This path only runs for the rare comparisons the
numeric fast path cannot settle (e.g. a 30-digit decimal against a surd), and
in the bulk grader only inside worker processes with a hard timeout.
"""

from __future__ import annotations

from fractions import Fraction

import sympy

from mathjax.grader.numeric import EvalError, Oversize

# sympy releases this grader was tested with. Another version may change what
# simplify() proves, and so change reported scores: refuse it loudly instead.
TESTED_SYMPY = ("1.12", "1.13", "1.14")
_ALLOW_ENV = "MATHJAX_GRADER_ALLOW_UNTESTED_SYMPY"


class GraderDependencyError(ImportError):
    """sympy/mpmath version or behaviour is not what the grader was tested with."""


def check_sympy_version() -> None:
    """Raise :class:`GraderDependencyError` for an untested sympy release."""
    import os

    major_minor = ".".join(sympy.__version__.split(".")[:2])
    if major_minor not in TESTED_SYMPY and os.environ.get(_ALLOW_ENV) != "1":
        raise GraderDependencyError(
            f"mathjax.grader was tested with sympy {', '.join(TESTED_SYMPY)}, found "
            f"{sympy.__version__}. Install a tested version (pip install 'sympy>=1.12,<1.15') "
            f"or set {_ALLOW_ENV}=1 after running tests/test_grader_*.py with it."
        )


_FUNCS = {
    "sin": sympy.sin, "cos": sympy.cos, "tan": sympy.tan, "sec": sympy.sec, "csc": sympy.csc,
    "cot": sympy.cot, "arcsin": sympy.asin, "arccos": sympy.acos, "arctan": sympy.atan,
    "arcsec": sympy.asec, "arccsc": sympy.acsc, "arccot": sympy.acot, "sinh": sympy.sinh,
    "cosh": sympy.cosh, "tanh": sympy.tanh, "coth": sympy.coth, "sech": sympy.sech,
    "csch": sympy.csch, "exp": sympy.exp, "ln": sympy.log, "sqrt": sympy.sqrt, "abs": sympy.Abs,
    "floor": sympy.floor, "ceil": sympy.ceiling, "sgn": sympy.sign, "factorial": sympy.factorial,
    "arg": sympy.arg, "re": sympy.re, "im": sympy.im, "det": lambda x: x,
}
_MAX_SYMPY_EXP = 10_000


def _rational(q: Fraction) -> sympy.Rational:
    return sympy.Rational(q.numerator, q.denominator)


def to_sympy(node: tuple) -> sympy.Expr:
    """Build a sympy expression from a scalar parse tree (no string parsing).

    Raises:
      EvalError: a node kind with no scalar meaning.
      Oversize: an integer power too large to build.
    """
    kind = node[0]
    if kind == "num":
        return _rational(node[1])
    if kind == "sym":
        name = node[1]
        if name == "e":
            return sympy.E
        if name == "i":
            return sympy.I
        return sympy.Symbol(name)
    if kind == "const":
        return sympy.pi if node[1] == "pi" else sympy.oo
    if kind == "add":
        return sympy.Add(*[to_sympy(t) for t in node[1]])
    if kind == "mul":
        return sympy.Mul(*[to_sympy(f) for f in node[1]])
    if kind == "neg":
        return -to_sympy(node[1])
    if kind == "div":
        return to_sympy(node[1]) / to_sympy(node[2])
    if kind == "pow":
        b, e = to_sympy(node[1]), to_sympy(node[2])
        if e.is_Number and abs(e) > _MAX_SYMPY_EXP and b.is_number and abs(b) != 1:
            raise Oversize("sympy power too large")
        return sympy.Pow(b, e)
    if kind == "pct":
        return to_sympy(node[1]) / 100
    if kind == "deg":
        return to_sympy(node[1]) * sympy.pi / 180
    if kind == "func":
        name, args = node[1], [to_sympy(a) for a in node[2]]
        if name == "root":
            return sympy.root(args[0], args[1])
        if name == "log":
            return sympy.log(args[0], args[1]) if len(args) == 2 else sympy.log(args[0])
        if name == "log10":
            return sympy.log(args[0], 10)
        if name == "binom":
            return sympy.binomial(args[0], args[1])
        if name in ("gcd", "lcm"):
            f = sympy.gcd if name == "gcd" else sympy.lcm
            out = args[0]
            for a in args[1:]:
                out = f(out, a)
            return out
        if name in ("max", "min"):
            return (sympy.Max if name == "max" else sympy.Min)(*args)
        if name in _FUNCS:
            if len(args) != 1:
                raise EvalError(f"{name} takes one argument")
            return _FUNCS[name](args[0])
        raise EvalError(f"unsupported function {name}")
    raise EvalError(f"not a scalar: {kind}")


def sympy_equal(a: tuple, b: tuple) -> bool | None:
    """Exact symbolic decision: True, False, or None (sympy cannot tell).

    Callers must run this under a timeout (worker process): ``simplify`` has no
    bound of its own.
    """
    sa, sb = to_sympy(a), to_sympy(b)
    diff = sa - sb
    if diff == 0:
        return True
    simp = sympy.simplify(diff)
    if simp == 0:
        return True
    if simp.is_number:
        z = simp.is_zero
        if z is not None:
            return bool(z)
        val = simp.evalf(60)
        if val.is_number and abs(val) > sympy.Float("1e-40"):
            return False
        return None
    expanded = sympy.expand(simp)
    if expanded == 0:
        return True
    return None

