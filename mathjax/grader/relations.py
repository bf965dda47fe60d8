"""Relations: assignments (``x = 3``), equations, inequalities and intervals.

* ``x = 3``, ``f(x) = x^2``, ``(x, y) = (1, 2)`` are assignments: their value
  is the right-hand side. So are labelled lengths ``AB = 4``, ``|AB| = 1``
  (products of capital point names, optionally in ``| |``); ``xy = 6`` and
  ``|x| = 3`` stay equations.
* Other equations compare by their solution set: ``lhs - rhs`` of one is a
  non-zero constant multiple of the other's (checked at several points).
* Inequalities in one variable become intervals, also when the variable sits
  in a linear expression (``-x > -1`` and ``2x < 2`` are ``x < 1``) or is a
  function value (``0 < f(x) < 1`` is ``(0, 1)``); intervals and unions are
  evaluated, sorted and merged (``[1,2] \\cup [2,3] = [1,3]``, finite sets in
  a union are points) before comparing. Bounds on ``|z|`` give the mirrored
  union (``1 \\le |z| \\le 2`` is ``[-2,-1] \\cup [1,2]``); ``x \\in [a, b]``
  bounds ``x`` (so it differs from ``a \\le y \\le b``).
* ``x \\approx 11`` is the assignment of 11 to x; after an exact value
  (``x = \\frac13 \\approx 0.33``) the approximation is dropped.
"""

from __future__ import annotations

from fractions import Fraction

from mathjax.grader import numeric
from mathjax.grader.trees import substitute
from mathjax.grader.verdict import Verdict

INF = ("const", "inf")
NEG_INF = ("neg", INF)
FUNC_LETTERS = set("fghpqrsFGHPQRS")
INEQ = {"<", "<=", ">", ">=", "!="}
INTERVAL_KINDS = ("union", "reals", "empty")
_E, _N, _U, _O = Verdict.EQUAL, Verdict.NOT_EQUAL, Verdict.UNDECIDED, Verdict.OVERSIZE


def inf_sign(n: tuple) -> int:
    """+1 / -1 for +-infinity, 0 otherwise."""
    if n == INF:
        return 1
    if n == NEG_INF:
        return -1
    return 0


def is_func_call(n: tuple) -> bool:
    """``f(x)``, ``g(t)``, ``f(x, y)``, ``W(n)``: a function letter applied to variables.

    Any capital letter names a function of a lower-case variable (``W(n)``,
    ``P(x)``); two capitals are a segment or a product of points (``PQ``).
    """
    if not (n[0] == "mul" and len(n[1]) == 2 and n[1][0][0] == "sym" and n[1][1][0] in ("sym", "seq")):
        return False
    name, arg = n[1][0][1], n[1][1]
    if len(name) == 1 and name.isupper():
        return arg[0] == "seq" or not arg[1][:1].isupper()
    # A one-item tuple only comes from labels.function_label: "y(t) = ..." written with parentheses.
    return name in FUNC_LETTERS or (arg[0] == "seq" and len(arg[3]) == 1)


def func_arg(n: tuple) -> str | None:
    """The variable of a one-argument function call ``f(x)`` (``None`` for ``f(x, y)``)."""
    arg = n[1][1]
    if arg[0] == "seq" and len(arg[3]) == 1:
        arg = arg[3][0]
    return arg[1] if arg[0] == "sym" else None


def is_point_name(n: tuple) -> bool:
    """``AB``, ``ABC``, ``|AB|``, ``|A|``: a segment, angle or set named by capitals."""
    if n[0] == "func" and n[1] == "abs" and len(n[2]) == 1:
        n = n[2][0]
        if n[0] == "sym" and len(n[1]) == 1 and n[1].isupper():
            return True
    return n[0] == "mul" and 2 <= len(n[1]) <= 4 and all(
        f[0] == "sym" and len(f[1]) == 1 and f[1].isupper() for f in n[1]
    )


def is_lhs_var(n: tuple) -> bool:
    """Left sides that name what is being given: ``x``, ``(x, y)``, ``f(x)``, ``AB``."""
    if n[0] == "sym":
        return True
    if n[0] == "seq" and n[1] == "(" and all(i[0] == "sym" for i in n[3]):
        return True
    return is_func_call(n) or is_point_name(n)


def defined_symbols(lhs: tuple) -> frozenset[str]:
    """The names an assignment defines: ``x`` in ``x = ...``, ``f`` in ``f(x) = ...``."""
    if is_func_call(lhs):
        return frozenset((lhs[1][0][1],))
    return numeric.free_symbols(lhs)


def rel_meaning(n: tuple):
    """("assign", lhs, value) | ("value", v) | ("eq", lhs - rhs) | ("iv", node) | None."""
    ops, parts = n[1], n[2]
    if "~" in ops:
        # "x = 1/3 \\approx 0.333": the exact value is before the approximation.
        k = ops.index("~")
        if k == 0 and is_lhs_var(parts[0]) and not numeric.free_symbols(parts[1]):
            # "x \\approx 11": the value given for x (an inexact one stays unequal to an exact gold).
            return ("assign", parts[0], parts[1])
        ops, parts = ops[:k], parts[: k + 1]
        if not ops:
            return ("value", parts[0])
    if all(op in ("=", "~") for op in ops):
        first, last = parts[0], parts[-1]
        if is_lhs_var(first) and not (defined_symbols(first) & numeric.free_symbols(last)):
            return ("assign", first, last)
        if len(parts) == 2 and is_lhs_var(last) and not numeric.free_symbols(first):
            return ("assign", last, first)
        if not any(numeric.free_symbols(p) for p in parts) or (len(parts) > 2 and not numeric.free_symbols(last)):
            return ("value", last)
        return ("eq", ("add", (first, ("neg", last))))
    if ops == ("in",):
        return ("value", parts[1])
    if all(op in INEQ for op in ops):
        return ("iv", n)
    return None


def cmp_eq(ea: tuple, eb: tuple) -> Verdict:
    """Equations ``ea = 0`` and ``eb = 0`` agree when ea/eb is a non-zero constant."""
    syms = numeric.free_symbols(ea) | numeric.free_symbols(eb)
    if not syms:
        return _N
    points = min(max(3, len(syms) + 2), 8)
    ratio = None
    for k in range(points):
        try:
            x, y = numeric.approx(ea, k), numeric.approx(eb, k)
        except numeric.Oversize:
            return _O
        except Exception:
            continue
        zx, zy = numeric.close(x, 0, 1e-30), numeric.close(y, 0, 1e-30)
        if zx and zy:
            continue
        if zx != zy:
            return _N
        r = x / y
        if ratio is None:
            ratio = r
        elif not numeric.close(r, ratio, 1e-25):
            return _N
    return _E if ratio is not None else _U


def as_eq(m) -> tuple:
    """An assignment or equation as the expression that equals zero."""
    if m[0] == "eq":
        return m[1]
    return ("add", (m[1], ("neg", m[2])))


def _is_subject(p: tuple) -> bool:
    """A part an inequality bounds as it stands: ``x`` or a function value ``f(x)``."""
    return (p[0] == "sym" and p[1] not in ("e", "i")) or is_func_call(p)


# Generic sample points: a linear part with simple coefficients does not vanish
# there (a zero sum would be refused by the evaluator as a cancellation).
_T1 = Fraction(1009, 7)
_CHECK = (Fraction(-2003, 11), Fraction(3001, 13), Fraction(4001, 17))


def _exact_or_node(node: tuple) -> tuple:
    """``node`` as an exact literal where it is rational (``1 - 1 + 1`` -> 1), else as it is."""
    try:
        q = numeric.exact(node)
    except numeric.EvalError:
        return node
    return ("num", q, 0) if q is not None else node


def _linear(p: tuple):
    """(var, a, b, a < 0) with nodes ``a``, ``b`` where ``p = a*var + b`` (a real, non-zero), else None.

    Checked numerically at three more points; the coefficients are kept as
    expression nodes (exact literals where rational) so that exact end points
    stay exact (``2x < 2``: 2/2; ``|x - 1| < 2``: b = -1).
    """
    syms = numeric.free_symbols(p)
    if len(syms) != 1:
        return None
    var = next(iter(syms))
    try:
        b = _exact_or_node(substitute(p, var, ("num", Fraction(0), 0)))
        a = _exact_or_node(("div", ("add", (substitute(p, var, ("num", _T1, 0)), ("neg", b))), ("num", _T1, 0)))
        av, bv = numeric.approx(a, 0), numeric.approx(b, 0)
        if numeric.imag_part(av) or numeric.imag_part(bv) or numeric.close(av, 0, 1e-30):
            return None
        for t in _CHECK:
            pv = numeric.approx(substitute(p, var, ("num", t, 0)), 0)
            if not numeric.close(pv, av * numeric.approx(("num", t, 0), 0) + bv, 1e-25):
                return None
    except Exception:  # a pole or a non-numeric part: not linear
        return None
    return var, a, b, numeric.real_value(av) < 0


def interval_subject(n: tuple) -> str | None:
    """The variable an inequality (chain) bounds: ``x`` for ``-1 < 2x+1 < 3``.

    ``None`` for function values (``f(x)``: the range, whatever its letter) and
    anything that is not a one-variable inequality.
    """
    if n[0] == "rel" and n[1] == ("in",) and n[2][0][0] == "sym":
        return n[2][0][1]  # "x \\in [-2, 7]"
    if n[0] != "rel" or not all(op in INEQ for op in n[1]):
        return None
    moving = [p for p in n[2] if numeric.free_symbols(p)]
    if len(moving) != 1 or is_func_call(moving[0]):
        return None
    syms = numeric.free_symbols(moving[0])
    return next(iter(syms)) if len(syms) == 1 else None


def interval_subjects(n: tuple) -> frozenset[str]:
    """Variables bounded by an inequality answer (its items', for lists/unions)."""
    if n[0] == "rel":
        v = interval_subject(n)
        return frozenset((v,)) if v else frozenset()
    if n[0] in ("list", "union"):
        return frozenset().union(*(interval_subjects(x) for x in n[1]))
    return frozenset()


def one_var_intervals(n: tuple):
    """Intervals of an inequality (chain) in one variable, as (lo, lc, hi, hc) nodes.

    The bounded part is a variable, a function value ``f(x)``, or a linear
    expression ``a*x + b`` in one variable (solved for x: bounds become
    ``(c - b) / a``, and a negative ``a`` flips the direction).
    """
    ops, parts = n[1], n[2]
    var_idx = [i for i, p in enumerate(parts) if numeric.free_symbols(p)]
    if len(var_idx) != 1:
        return None
    v = var_idx[0]
    p = parts[v]
    if p[0] == "func" and p[1] == "abs" and len(p[2]) == 1 and "!=" not in ops:
        return _abs_intervals(ops, parts, v, p[2][0])
    flip = False
    bound = lambda c: c  # noqa: E731  (identity unless the part is linear)
    if not _is_subject(parts[v]):
        lin = _linear(parts[v])
        if lin is None:
            return None
        _, a, b, flip = lin
        bound = lambda c: ("div", ("add", (c, ("neg", b))), a)  # noqa: E731
    if ops == ("!=",) and len(parts) == 2:
        c = bound(parts[1 - v])
        return [(NEG_INF, False, c, False), (c, False, INF, False)]
    if "!=" in ops:
        return None
    lo, lc, hi, hc = NEG_INF, False, INF, False
    for i, op in enumerate(ops):
        left, right = i, i + 1
        if v not in (left, right):
            continue
        other = parts[right] if left == v else parts[left]
        if inf_sign(other):
            continue  # "x < \infty" bounds nothing
        other = bound(other)
        strict = op in ("<", ">")
        # Normalise to "var < other" (upper bound) or "var > other" (lower bound).
        less = op in ("<", "<=")
        is_upper = less if left == v else not less
        if flip:
            is_upper = not is_upper
        if is_upper:
            hi, hc = other, not strict
        else:
            lo, lc = other, not strict
    return [(lo, lc, hi, hc)]


def _abs_intervals(ops: tuple, parts: tuple, v: int, inner: tuple):
    """Intervals of ``lo < |inner| < hi``, ``inner`` a variable or linear in one (``|2x - 1| \\le 3``)."""
    u = ("sym", "_abs")  # the value of |inner|, bounded as a variable first
    ivs = one_var_intervals(("rel", ops, parts[:v] + (u,) + parts[v + 1 :]))
    ivs = _abs_preimage(ivs[0]) if ivs else None
    if ivs is None or _is_subject(inner):
        return ivs
    lin = _linear(inner)
    if lin is None:
        return None
    _, a, b, flip = lin

    def solve(e):  # u = a*x + b at u = e, for x (a < 0 swaps the infinities)
        sign = inf_sign(e)
        if sign:
            return INF if (sign > 0) != flip else NEG_INF
        return ("div", ("add", (e, ("neg", b))), a)

    if flip:
        return [(solve(hi), hc, solve(lo), lc) for lo, lc, hi, hc in ivs]
    return [(solve(lo), lc, solve(hi), hc) for lo, lc, hi, hc in ivs]


def _abs_preimage(iv):
    """Where ``|x|`` lies in ``(lo, hi)``: ``1 <= |z| <= 3/2`` is ``[-3/2, -1] \\cup [1, 3/2]``."""
    lo, lc, hi, hc = iv
    if inf_sign(lo):
        lo_v = -1
    else:
        try:
            lo_v = endpoint_value(lo)
        except Exception:
            return None
    neg_hi = NEG_INF if inf_sign(hi) else ("neg", hi)
    if lo_v < 0 or (lo_v == 0 and lc):
        return [(neg_hi, hc, hi, hc)]  # |x| >= 0 always
    return [(neg_hi, hc, ("neg", lo), lc), (lo, lc, hi, hc)]


def to_intervals(n: tuple, in_union: bool = False):
    """(lo, lo_closed, hi, hi_closed) node tuples of an interval-like answer, or None."""
    kind = n[0]
    if kind == "reals":
        return [(NEG_INF, False, INF, False)]
    if kind == "empty":
        return []
    if kind == "seq" and len(n[3]) == 2:
        return [(n[3][0], n[1] == "[", n[3][1], n[2] == "]")]
    if kind == "set" and in_union:
        # {2} in "[0, 2) \\cup \\{2\\}": a finite set is its points.
        if not n[1] or any(numeric.free_symbols(x) or x[0] in ("list", "set", "seq", "rel") for x in n[1]):
            return None
        return [(x, True, x, True) for x in n[1]]
    if kind == "union" or kind == "list":
        if kind == "list" and not all(i[0] in ("rel", "union", "reals") for i in n[1]):
            return None
        out = []
        for item in n[1]:
            iv = to_intervals(item, in_union=kind == "union")
            if iv is None:
                return None
            out.extend(iv)
        return out
    if kind == "rel":
        m = rel_meaning(n)
        if m is None:
            return None
        if m[0] == "value" and n[1] == ("in",):
            return to_intervals(m[1])
        if m[0] == "iv":
            return one_var_intervals(n)
    return None


def endpoint_value(n: tuple):
    """Real value of an interval end point (infinities included)."""
    s = inf_sign(n)
    if s:
        return numeric.infinity(s)
    if numeric.free_symbols(n):
        raise numeric.EvalError("symbolic endpoint")
    return numeric.real_value(numeric.approx(n, 0))


def canonical_intervals(ivs):
    """Evaluate, drop empty, sort and merge overlapping/touching intervals."""
    vals = []
    for lo, lc, hi, hc in ivs:
        lv, hv = endpoint_value(lo), endpoint_value(hi)
        lc = lc and not inf_sign(lo)
        hc = hc and not inf_sign(hi)
        if lv > hv or (lv == hv and not (lc and hc)):
            if not numeric.close(lv, hv):
                continue
        vals.append([lv, lc, hv, hc, lo, hi])
    vals.sort(key=lambda t: (t[0], not t[1]))
    merged = []
    for cur in vals:
        if merged:
            last = merged[-1]
            touching = numeric.close(cur[0], last[2]) if numeric.is_finite(cur[0]) else cur[0] == last[2]
            if cur[0] < last[2] and not touching or (touching and (last[3] or cur[1])):
                if cur[2] > last[2] or (cur[2] == last[2] and cur[3]):
                    last[2], last[3], last[5] = cur[2], cur[3], cur[5]
                continue
        merged.append(cur)
    return merged


def is_interval_shaped(n: tuple) -> bool:
    """Unions, the real line, the empty set, inequalities and lists of them."""
    if n[0] in INTERVAL_KINDS:
        return True
    if n[0] == "rel":
        m = rel_meaning(n)
        return m is not None and (m[0] == "iv" or (m[0] == "value" and n[1] == ("in",) and is_interval_shaped(m[1])))
    if n[0] == "list":
        return bool(n[1]) and all(i[0] == "rel" and is_interval_shaped(i) for i in n[1])
    return False
