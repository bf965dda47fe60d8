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
from mathjax.grader.scalars import _cmp_scalar, exact_status
from mathjax.grader.trees import flat_pm, is_scalar, substitute
from mathjax.grader.verdict import Verdict, all_of, any_of

_E, _N, _U, _O = Verdict.EQUAL, Verdict.NOT_EQUAL, Verdict.UNDECIDED, Verdict.OVERSIZE
_MAX_ITEMS = 64  # values listed against one equation


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
    if ka == "value":
        return _cmp_eq_values(as_eq(mb), ma[1], sym)
    if kb == "value":
        return _cmp_eq_values(as_eq(ma), mb[1], sym)
    return cmp_eq(as_eq(ma), as_eq(mb))


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


def _cmp_eq_values(eq: tuple, values: tuple, sym: bool) -> Verdict:
    """An equation in one variable against its solutions (``x^2 = 4`` vs ``\\pm 2``).

    Equal when the values are exactly the solution set: a value that does not
    satisfy the equation settles it on the fast path; completeness needs
    sympy's ``solveset`` (slow path).
    """
    syms = numeric.free_symbols(eq)
    if len(syms) != 1:
        return _N
    var = next(iter(syms))
    vals = []
    raw = values[1] if values[0] in ("list", "set") else (values,)
    for v in flat_pm(raw):
        if v[0] == "rel":
            m = rel_meaning(v)
            if m is None or m[0] not in ("assign", "value"):
                return _N
            v = m[-1]
        if not is_scalar(v) or numeric.free_symbols(v):
            return _N
        vals.append(v)
    if not vals or len(vals) > _MAX_ITEMS:
        return _N
    real = True
    for v in vals:
        st, q = exact_status(substitute(eq, var, v))
        if st == "ok":
            if q != 0:
                return _N
            continue
        if st == "undef":
            return _N
        try:
            residual = numeric.approx(substitute(eq, var, v), 0)
        except numeric.Oversize:
            return _O
        except Exception:
            continue  # cancellation: (probably) a root, sympy will tell
        if not numeric.close(residual, 0):
            return _N
    if not sym:
        return _U
    from mathjax.grader import symbolic

    try:
        for v in vals:
            value = numeric.approx(v, 0)
            if abs(numeric.imag_part(value)) > 1e-30:
                real = False
        r = symbolic.solution_set_equal(eq, var, vals, real)
    except numeric.Oversize:
        return _O
    except Exception:
        return _U
    return _U if r is None else (_E if r else _N)


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
