"""Comparison of relations: assignments, equations, inequalities and intervals.

The policy is in :mod:`equiv` (and :mod:`relations` for how a relation is
read); this is its comparison half. Items inside relations (values, lists)
are compared by :func:`equiv._cmp`, called back at run time.
"""

from __future__ import annotations

from mathjax.grader import inequalities as _inequalities, numeric
from mathjax.grader.relations import (
    as_eq,
    canonical_intervals,
    cmp_eq,
    func_arg,
    interval_subjects,
    is_func_call,
    rel_meaning,
    to_intervals,
)
from mathjax.grader.scalars import _cmp_scalar
from mathjax.grader.trees import is_scalar, substitute
from mathjax.grader.verdict import Verdict, all_of, any_of

_E, _N, _U, _O = Verdict.EQUAL, Verdict.NOT_EQUAL, Verdict.UNDECIDED, Verdict.OVERSIZE


def _cmp(a: tuple, b: tuple, sym: bool) -> Verdict:
    from mathjax.grader import equiv  # the dispatcher (imports this module first)

    return equiv._cmp(a, b, sym)


def _cmp_rel(a: tuple, b: tuple, sym: bool) -> Verdict:
    ma = rel_meaning(a) if a[0] == "rel" else ("value", a)
    mb = rel_meaning(b) if b[0] == "rel" else ("value", b)
    if ma is None or mb is None:
        return _N
    if ma[0] == "iv" or mb[0] == "iv":
        return _cmp_intervals(a, b, sym)
    ka, kb = ma[0], mb[0]
    if ka == "assign" and kb == "assign":
        return _cmp_assignments(ma, mb, sym)
    if ka in ("assign", "value") and kb in ("assign", "value"):
        return _cmp(ma[-1], mb[-1], sym)
    # An equation still to solve is not its solutions: `2x = 6`, `150 = 500 - x` or `x^2 = 4` written
    # as the answer (an unfinished output, the question restated) must not earn `3`, `350`, `\pm 2`
    # or `x = 3` (a free "equal", and a reward an RL policy could learn to collect).
    if ka == "value" or kb == "value":
        # (an equation whose left side is a label, `x = 3`, `AB = 4`, is an "assign"). A quantity of one
        # variable given a constant, `z^3 = -1`, `\sin^2 x = 1`, answers "find z^3": its value is the
        # right side, so `x^2 = 4` is `4` (and still not `\pm 2`).
        va = ma[-1] if ka == "value" else quantity_value(a)
        vb = mb[-1] if kb == "value" else quantity_value(b)
        return _N if va is None or vb is None else _cmp(va, vb, sym)
    if _solved(ma) != _solved(mb):
        return _N
    return cmp_eq(as_eq(ma), as_eq(mb))


def _is_quantity(n: tuple) -> bool:
    """``z^3``, ``\\sin x``, ``\\sin^2(x)``, ``\\log_2 x``: one named function or power of one variable."""
    if n[0] == "pow" and not numeric.free_symbols(n[2]):
        n = n[1]
        if n[0] == "sym":
            return True
    # Not `|x| = 1`: that is the equation x = \pm 1 as often as "find |x|" (|AB| = 1, a length, is a label).
    return n[0] == "func" and n[1] != "abs" and len(n[2]) >= 1 and n[2][0][0] == "sym" and not any(
        numeric.free_symbols(x) for x in n[2][1:])


def quantity_value(n: tuple) -> tuple | None:
    """The constant right side of ``<quantity> = <constant>`` (see :func:`_is_quantity`), else None."""
    if n[0] != "rel" or n[1] != ("=",) or len(n[2]) != 2:
        return None
    lhs, rhs = n[2]
    return rhs if _is_quantity(lhs) and is_scalar(rhs) and not numeric.free_symbols(rhs) else None


def _solved(m: tuple) -> bool:
    """``x = 3``, ``AB = 4``: a label given a constant value (an equation already solved)."""
    return m[0] == "assign" and is_scalar(m[2]) and not numeric.free_symbols(m[2])


def _cmp_assignments(ma: tuple, mb: tuple, sym: bool) -> Verdict:
    """``x = 3`` vs ``x = 3.0`` or ``AB = 4`` vs ``BA = 4``: same label, compare values.

    Different labels with constant values (``y = 3`` vs ``x = 3``, ``AB = 4``
    vs ``CD = 4``) give different answers: the value of another quantity, or
    another line in the plane. With expressions on the right (``y = 2x + 3``
    vs ``2x - y + 3 = 0``-like pairs, ``f(x) = 2x`` vs ``g(x) = 2x``) the
    solution sets and right sides still decide, as before.
    """
    la, lb = ma[1], mb[1]
    same = la == lb or (is_scalar(la) and is_scalar(lb) and _cmp(la, lb, False) == _E)
    eq = cmp_eq(as_eq(ma), as_eq(mb)) if _scalarish(ma, mb) else _N
    if same:
        return any_of((_cmp(ma[2], mb[2], sym), eq))
    if is_func_call(la) and is_func_call(lb) and la[1][0] == lb[1][0] and func_arg(la) and func_arg(lb):
        # f(x) = x^2 vs f(t) = t^2: the same function, its argument renamed.
        arg = ("sym", "_arg")  # one fresh name for both (symmetric)
        return _cmp(substitute(ma[2], func_arg(la), arg), substitute(mb[2], func_arg(lb), arg), sym)
    if not numeric.free_symbols(ma[2]) and not numeric.free_symbols(mb[2]):
        return eq
    return any_of((_cmp(ma[2], mb[2], sym), eq))


def _scalarish(ma, mb) -> bool:
    return ma[1][0] == "sym" and mb[1][0] == "sym" and is_scalar(ma[2]) and is_scalar(mb[2])


def _cmp_intervals(a: tuple, b: tuple, sym: bool) -> Verdict:
    sa, sb = interval_subjects(a), interval_subjects(b)
    if sa and sb and sa != sb:
        return _N  # "y > 2" does not answer "x > 2" (as "y = 3" does not answer "x = 3")
    ia, ib = to_intervals(a), to_intervals(b)
    if ia is None or ib is None:  # x^2 < 4 vs (-2, 2): a polynomial inequality
        return _inequalities.compare(a, b, sym) or _N
    try:
        ca, cb = canonical_intervals(ia), canonical_intervals(ib)
    except numeric.Oversize:
        return _O
    except Exception:
        return _N
    if len(ca) != len(cb):
        return _N
    parts = []
    for x, y in zip(ca, cb):
        if x[1] != y[1] or x[3] != y[3]:
            return _N
        parts.append(_cmp_scalar(x[4], y[4], sym))
        parts.append(_cmp_scalar(x[5], y[5], sym))
    return all_of(parts)
