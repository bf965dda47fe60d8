"""A polynomial inequality in one variable against an interval answer.

``x^2 < 4`` vs ``(-2, 2)`` or ``-2 < x < 2``: equal when the inequality's
real solution set is exactly the interval (union). Linear inequalities are
solved on the fast path by :mod:`relations`; this module handles the rest:

* fast path (bounded): the inequality is evaluated exactly at the rational end
  points of the interval answer, at points between and beyond them; any
  disagreement with membership in the interval is NOT_EQUAL (``x^2 < 4`` vs
  ``[-2, 2]``: 2 is in the interval but not a solution). Otherwise UNDECIDED.
* slow path (sympy, in a worker under the grader's timeout): ``solveset`` of
  the inequality over the reals compared with the interval as a sympy set.

Only polynomials (``+ - *``, division by constants, integer powers up to
degree :data:`MAX_DEGREE`) qualify; anything else keeps its old verdict.
"""

from __future__ import annotations

from fractions import Fraction

from mathjax.grader import numeric
from mathjax.grader.relations import canonical_intervals, inf_sign, interval_subjects, to_intervals
from mathjax.grader.trees import substitute
from mathjax.grader.verdict import Verdict

MAX_DEGREE = 6
_OPS = {"<", "<=", ">", ">="}
_E, _N, _U = Verdict.EQUAL, Verdict.NOT_EQUAL, Verdict.UNDECIDED


def _poly_degree(n: tuple, var: str) -> int | None:
    """Degree of a polynomial tree in ``var`` (None: not a polynomial we handle)."""
    kind = n[0]
    if kind == "num" or (kind == "const" and n[1] == "pi"):
        return 0
    if kind == "sym":
        return 1 if n[1] == var else None
    if kind == "neg":
        return _poly_degree(n[1], var)
    if kind in ("add", "mul"):
        ds = [_poly_degree(k, var) for k in n[1]]
        if any(d is None for d in ds):
            return None
        return max(ds) if kind == "add" else sum(ds)
    if kind == "div":
        d = _poly_degree(n[1], var)
        return d if d is not None and not numeric.free_symbols(n[2]) else None
    if kind == "pow":
        e = n[2]
        if e[0] != "num" or e[1].denominator != 1 or not 0 <= e[1] <= MAX_DEGREE:
            return None
        d = _poly_degree(n[1], var)
        return None if d is None else d * int(e[1])
    return None


def _poly_inequality(n: tuple):
    """(op, lhs, rhs, var) of a non-linear polynomial inequality ``lhs op rhs``, else None."""
    if n[0] != "rel" or len(n[1]) != 1 or n[1][0] not in _OPS:
        return None
    syms = numeric.free_symbols(n)
    if len(syms) != 1:
        return None
    var = next(iter(syms))
    lhs, rhs = n[2]
    dl, dr = _poly_degree(lhs, var), _poly_degree(rhs, var)
    if dl is None or dr is None or max(dl, dr) < 2 or max(dl, dr) > MAX_DEGREE:
        return None
    return n[1][0], lhs, rhs, var


def _holds(op: str, lhs: tuple, rhs: tuple, var: str, p: Fraction) -> bool | None:
    val = ("num", p, 0)
    try:
        a, b = numeric.exact(substitute(lhs, var, val)), numeric.exact(substitute(rhs, var, val))
    except Exception:
        return None
    if a is None or b is None:
        return None
    return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]


def _exact_ivs(ivs) -> list | None:
    """(lo, lc, hi, hc) with Fraction ends (None for infinite), or None if an end is irrational."""
    out = []
    for lo, lc, hi, hc in ivs:
        ends = []
        for e in (lo, hi):
            if inf_sign(e):
                ends.append(None)
                continue
            try:
                q = numeric.exact(e)
            except Exception:
                return None
            if q is None:
                return None
            ends.append(Fraction(q))
        out.append((ends[0], lc and ends[0] is not None, ends[1], hc and ends[1] is not None))
    return out


def _member(ivs: list, p: Fraction) -> bool:
    for lo, lc, hi, hc in ivs:
        above = lo is None or p > lo or (p == lo and lc)
        below = hi is None or p < hi or (p == hi and hc)
        if above and below:
            return True
    return False


def _probes(ivs: list) -> list[Fraction]:
    ends = sorted({e for lo, _, hi, _ in ivs for e in (lo, hi) if e is not None})
    if not ends:
        return [Fraction(0), Fraction(1), Fraction(-1)]
    pts = list(ends) + [ends[0] - 1, ends[-1] + 1]
    pts += [(x + y) / 2 for x, y in zip(ends, ends[1:])]
    return pts


def compare(a: tuple, b: tuple, sym: bool) -> Verdict | None:
    """``x^2 < 4`` vs an interval answer (either order); None when not that shape."""
    for x, y in ((a, b), (b, a)):
        ineq = _poly_inequality(x)
        if ineq is None or _poly_inequality(y) is not None:
            continue
        var = ineq[3]
        subjects = interval_subjects(y)
        if subjects and subjects != {var}:
            return _N
        ivs = to_intervals(y)
        if ivs is None:
            return None
        exact = _exact_ivs(ivs)
        if exact is not None:
            for p in _probes(exact):
                h = _holds(ineq[0], ineq[1], ineq[2], var, p)
                if h is not None and h != _member(exact, p):
                    return _N
        if not sym:
            return _U
        return _sympy_compare(ineq, ivs)
    return None


def _sympy_compare(ineq, ivs) -> Verdict:
    import sympy

    from mathjax.grader import symbolic

    try:
        op, lhs, rhs, var = ineq
        x = sympy.Symbol(var)
        rel = {"<": sympy.Lt, "<=": sympy.Le, ">": sympy.Gt, ">=": sympy.Ge}[op]
        sol = sympy.solveset(rel(symbolic.to_sympy(lhs), symbolic.to_sympy(rhs)), x, domain=sympy.S.Reals)
        canonical_intervals(ivs)  # raises on an end point that is not a real number
        parts = []
        for lo, lc, hi, hc in ivs:
            slo = -sympy.oo if inf_sign(lo) else symbolic.to_sympy(lo)
            shi = sympy.oo if inf_sign(hi) else symbolic.to_sympy(hi)
            parts.append(sympy.Interval(slo, shi, left_open=not lc, right_open=not hc))
        want = sympy.Union(*parts)
        d1, d2 = sympy.Complement(sol, want), sympy.Complement(want, sol)
    except numeric.Oversize:
        return Verdict.OVERSIZE
    except Exception:
        return _U
    if d1 == sympy.S.EmptySet and d2 == sympy.S.EmptySet:
        return _E
    if d1.is_empty is False or d2.is_empty is False:
        return _N
    return _U
