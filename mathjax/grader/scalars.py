"""Comparison of two scalars: numbers and expressions (see :mod:`equiv` for the policy).

* Exact rationals compare exactly (``1/2 == 0.5``; ``0.33 != 1/3``).
* Expressions agree at 50 digits at fixed points of every variable; what this
  cannot settle goes to sympy (slow path, in a worker with a timeout).
* Long decimals (:mod:`decimals`): a literal with at least
  :data:`decimals.LONG_DECIMAL_DIGITS` significant digits is a machine's
  rendering of its value: ``0.0833333333333333`` is ``\\frac{1}{12}``.
"""

from __future__ import annotations

from mathjax.grader import angles as _angles, decimals, numeric
from mathjax.grader.relations import inf_sign
from mathjax.grader.trees import lift_unit
from mathjax.grader.verdict import Verdict, any_of

_E, _N, _U, _O = Verdict.EQUAL, Verdict.NOT_EQUAL, Verdict.UNDECIDED, Verdict.OVERSIZE

# ---- scalars ----------------------------------------------------------------

# Up to this many significant digits a decimal literal is taken at face value
# when it agrees with an irrational-looking expression to 30 digits; longer
# literals could be truncations of irrationals, so sympy decides.
_TRUSTED_DECIMAL_DIGITS = 20


def exact_status(n: tuple):
    """(status, value): status is "ok", "none" (not rational), "undef"."""
    try:
        v = numeric.exact(n)
    except numeric.EvalError:
        return "undef", None
    return ("ok", v) if v is not None else ("none", None)


def _cmp_scalar(a: tuple, b: tuple, sym: bool) -> Verdict:
    if a == b:
        return _E
    sa, sb = inf_sign(a), inf_sign(b)
    if sa or sb:
        return _E if sa == sb else _N
    long_match = decimals.long_decimal_match(a, b)
    if long_match is not None:
        return _E if long_match else _N
    sta, va = exact_status(a)
    stb, vb = exact_status(b)
    if sta == "ok" and stb == "ok":
        return _E if va == vb else _N
    if sta == "undef" or stb == "undef":
        return _N
    syms = numeric.free_symbols(a) | numeric.free_symbols(b)
    points = numeric.NUM_POINTS if syms else 1
    agree = 0
    unsure = False
    for k in range(points):
        try:
            x = numeric.approx(a, k)
            y = numeric.approx(b, k)
        except numeric.Oversize:
            return _O
        except Exception:  # outside the domain at this point (pole, log 0, ...)
            unsure = True
            continue
        if numeric.far(x, y):
            return _N
        if numeric.close(x, y):
            agree += 1
        else:
            unsure = True
    digits = max(numeric.max_decimal_digits(a), numeric.max_decimal_digits(b))
    if agree and digits <= _TRUSTED_DECIMAL_DIGITS and (not unsure or (syms and agree >= 2)):
        return _E
    if sym:
        return _sympy_verdict(a, b)
    return _U


def _sympy_verdict(a: tuple, b: tuple) -> Verdict:
    from mathjax.grader import symbolic  # imported by the package already; cheap

    try:
        r = symbolic.sympy_equal(a, b)
    except numeric.Oversize:
        return _O
    except Exception:
        return _U
    return _U if r is None else (_E if r else _N)


def _is_proportion(n: tuple) -> bool:
    """Whether ``n`` is a constant in [-1, 1]: a value a percentage can be the fraction form of."""
    if numeric.free_symbols(n):
        return False
    try:
        v = numeric.real_value(numeric.approx(n, 0))
    except Exception:  # not a finite real constant
        return False
    return v is not None and abs(v) <= 1 + 1e-12


def _percent_readings(n: tuple, other: tuple) -> tuple[tuple, ...]:
    """``n``'s readings against ``other`` (:func:`angles.alternatives`), with ``x%`` as ``x/100`` only
    against a proportion.

    ``25%`` is ``0.25`` and ``25``; but ``1200%`` is not ``12``: a bare number
    above 1 against a percentage is the percentage's number, the way GSM8K's
    "what percent" golds are written, so the ``/100`` reading would reward
    a percentage computed twice.
    """
    alts = _angles.alternatives(n)
    if n[0] == "pct" and other[0] != "pct" and not _is_proportion(other):
        return tuple(x for x in alts if x is not n)
    return alts


def _cmp_scalar_alts(a: tuple, b: tuple, sym: bool) -> Verdict:
    a, b = lift_unit(a), lift_unit(b)
    if a[0] == b[0] and a[0] in ("pct", "deg"):
        return _cmp_scalar(a[1], b[1], sym)
    if {a[0], b[0]} == {"pct", "deg"}:
        return _N  # two different explicit units
    alts_a, alts_b = _percent_readings(a, b), _percent_readings(b, a)
    if len(alts_a) == 1 and len(alts_b) == 1:
        return _cmp_scalar(alts_a[0], alts_b[0], sym)
    return any_of(_cmp_scalar(x, y, sym) for x in alts_a for y in alts_b)
