"""Mathematical equivalence of two answer strings.

Policy (what "equal" means), applied after :func:`normalize.normalize_answer`:

* Numbers are exact: ``1/2 == 0.5 == \\frac12 == 50\\%``; ``0.33``, ``0.333333``
  are not ``1/3``; ``1.414`` is not ``\\sqrt2`` (a rounded decimal of a
  non-terminating value is a wrong answer). ``0.\\overline{3}`` is ``1/3``.
* ``x%`` also matches ``x`` (the model dropped the unit), and ``x°`` matches
  ``x`` and ``x·π/180``. ``1,234`` is a number, ``1, 234`` is a list.
* Expressions are equal when they agree at 50 digits at fixed points for every
  variable (two positive and one negative value each), e.g. ``\\frac{1}{\\sqrt2}``
  vs ``\\frac{\\sqrt2}{2}``, ``(x+1)^2`` vs ``x^2+2x+1``. Cases this cannot
  settle go to sympy (exact), in a worker with a hard timeout.
* ``x = 3`` matches ``3``; two equations match when ``lhs - rhs`` are
  proportional (same solution set); inequalities match intervals
  (``x > 2`` vs ``(2, \\infty)``), unions are merged before comparing.
* Tuples/points and vectors are ordered, sets and bare answer lists unordered;
  a bare list also matches a tuple in the same order. ``a \\pm b`` is the list
  ``a+b, a-b``. Matrices compare element-wise.
* Plain-text answers compare case- and punctuation-insensitively; choice
  letters ``(C)``, ``\\text{C}``, ``C`` are equal.

Everything here is bounded (see :mod:`numeric`), never evaluates the input as
code, and :func:`compare` never raises.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass
from fractions import Fraction

from mathjax.grader import latex, numeric
from mathjax.grader.normalize import AnswerTooLong, normalize_answer, normalize_text


class Verdict(enum.IntEnum):
    """Outcome of one comparison. Only ``EQUAL`` counts as correct."""

    NOT_EQUAL = 0
    EQUAL = 1
    UNDECIDED = 2  # the fast path could not settle it (needs sympy) or sympy could not
    OVERSIZE = 3  # refused: too long, too deep or too large to evaluate
    TIMEOUT = 4  # the symbolic check ran past its hard timeout
    ERROR = 5  # an internal error (a grader bug); counted in reports


@dataclass(frozen=True)
class Answer:
    """An analysed answer string (cached: many samples share an answer)."""

    raw: str
    norm: str
    node: tuple | None  # None: not parseable, compared as text
    text: str  # normalize_text(norm), for text comparisons
    oversize: bool = False


@functools.lru_cache(maxsize=1 << 16)
def analyze(s: str) -> Answer:
    """Normalise and parse one answer string (never raises)."""
    try:
        norm = normalize_answer(s)
    except AnswerTooLong:
        return Answer(s[:64], "", None, "", oversize=True)
    try:
        node = latex.parse(norm) if norm else None
    except latex.TooDeep:
        return Answer(s, norm, None, "", oversize=True)
    except (latex.ParseError, ValueError, ZeroDivisionError, OverflowError):
        node = None
    return Answer(s, norm, node, normalize_text(norm))


# ---- verdict algebra --------------------------------------------------------

_E, _N, _U, _O = Verdict.EQUAL, Verdict.NOT_EQUAL, Verdict.UNDECIDED, Verdict.OVERSIZE


def _any(verdicts) -> Verdict:
    """EQUAL if any alternative is equal; else the most informative failure."""
    worst = _N
    for v in verdicts:
        if v == _E:
            return _E
        if v != _N and (worst == _N or v == _O):
            worst = v
    return worst


def _all(verdicts) -> Verdict:
    """EQUAL only if every part is equal; NOT_EQUAL as soon as one part is not."""
    pending = _E
    for v in verdicts:
        if v == _N:
            return _N
        if v != _E:
            pending = v
    return pending


# ---- scalars ----------------------------------------------------------------

_INF = ("const", "inf")
_NEG_INF = ("neg", _INF)
# Up to this many significant digits a decimal literal is taken at face value
# when it agrees with an irrational-looking expression to 30 digits; longer
# literals could be truncations of irrationals, so sympy decides.
_TRUSTED_DECIMAL_DIGITS = 20


def _inf_sign(n: tuple) -> int:
    if n == _INF:
        return 1
    if n == _NEG_INF:
        return -1
    return 0


def _exact(n: tuple):
    """(status, value): status is "ok", "none" (not rational), "undef"."""
    try:
        v = numeric.exact(n)
    except numeric.EvalError:
        return "undef", None
    return ("ok", v) if v is not None else ("none", None)


def _cmp_scalar(a: tuple, b: tuple, sym: bool) -> Verdict:
    if a == b:
        return _E
    sa, sb = _inf_sign(a), _inf_sign(b)
    if sa or sb:
        return _E if sa == sb else _N
    sta, va = _exact(a)
    stb, vb = _exact(b)
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


def _alternatives(n: tuple) -> tuple[tuple, ...]:
    """Readings of a top-level unit: ``x%`` is x/100 or x; ``x°`` is x or x·π/180."""
    if n[0] == "pct":
        return (n, n[1])
    if n[0] == "deg":
        return (n[1], n)
    return (n,)


def _cmp_scalar_alts(a: tuple, b: tuple, sym: bool) -> Verdict:
    if a[0] == b[0] and a[0] in ("pct", "deg"):
        return _cmp_scalar(a[1], b[1], sym)
    alts_a, alts_b = _alternatives(a), _alternatives(b)
    if len(alts_a) == 1 and len(alts_b) == 1:
        return _cmp_scalar(a, b, sym)
    return _any(_cmp_scalar(x, y, sym) for x in alts_a for y in alts_b)


# ---- relations, equations, intervals ------------------------------------------

_FUNC_LETTERS = set("fghpqrsFGHPQRS")
_INEQ = {"<", "<=", ">", ">=", "!="}
_MAX_PM = 4  # at most 2**4 sign combinations


def _is_lhs_var(n: tuple) -> bool:
    if n[0] == "sym":
        return True
    if n[0] == "seq" and n[1] == "(" and all(i[0] == "sym" for i in n[3]):
        return True
    if n[0] == "mul" and len(n[1]) == 2 and n[1][0][0] == "sym" and n[1][0][1] in _FUNC_LETTERS:
        return n[1][1][0] in ("sym", "seq")
    return False


def _rel_meaning(n: tuple):
    """("assign", lhs, value) | ("value", v) | ("eq", lhs - rhs) | ("iv", node) | None."""
    ops, parts = n[1], n[2]
    if all(op in ("=", "~") for op in ops):
        first, last = parts[0], parts[-1]
        if _is_lhs_var(first) and not (numeric.free_symbols(first) & numeric.free_symbols(last)):
            return ("assign", first, last)
        if len(parts) == 2 and _is_lhs_var(last) and not numeric.free_symbols(first):
            return ("assign", last, first)
        if not any(numeric.free_symbols(p) for p in parts) or (len(parts) > 2 and not numeric.free_symbols(last)):
            return ("value", last)
        return ("eq", ("add", (first, ("neg", last))))
    if ops == ("in",):
        return ("value", parts[1])
    if all(op in _INEQ for op in ops):
        return ("iv", n)
    return None


def _cmp_eq(ea: tuple, eb: tuple) -> Verdict:
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


def _cmp_rel(a: tuple, b: tuple, sym: bool) -> Verdict:
    ma = _rel_meaning(a) if a[0] == "rel" else ("value", a)
    mb = _rel_meaning(b) if b[0] == "rel" else ("value", b)
    if ma is None or mb is None:
        return _N
    if ma[0] == "iv" or mb[0] == "iv":
        return _cmp_intervals(a, b, sym)
    ka, kb = ma[0], mb[0]
    if ka == "assign" and kb == "assign":
        return _any(
            (_cmp(ma[2], mb[2], sym), _cmp_eq(_as_eq(ma), _as_eq(mb)) if _scalarish(ma, mb) else _N)
        )
    if ka in ("assign", "value") and kb in ("assign", "value"):
        return _cmp(ma[-1], mb[-1], sym)
    if ka == "value" or kb == "value":
        return _N
    return _cmp_eq(_as_eq(ma), _as_eq(mb))


def _scalarish(ma, mb) -> bool:
    return ma[1][0] == "sym" and mb[1][0] == "sym" and _is_scalar(ma[2]) and _is_scalar(mb[2])


def _as_eq(m) -> tuple:
    if m[0] == "eq":
        return m[1]
    return ("add", (m[1], ("neg", m[2])))


def _one_var_intervals(n: tuple):
    """Intervals of an inequality (chain) in one variable, as (lo, lc, hi, hc) nodes."""
    ops, parts = n[1], n[2]
    var_idx = [i for i, p in enumerate(parts) if p[0] == "sym" and p[1] not in ("e", "i")]
    if len(var_idx) != 1 or any(numeric.free_symbols(p) for i, p in enumerate(parts) if i != var_idx[0]):
        return None
    v = var_idx[0]
    if ops == ("!=",) and len(parts) == 2:
        c = parts[1 - v]
        return [(_NEG_INF, False, c, False), (c, False, _INF, False)]
    if "!=" in ops:
        return None
    lo, lc, hi, hc = _NEG_INF, False, _INF, False
    for i, op in enumerate(ops):
        left, right = i, i + 1
        if v not in (left, right):
            continue
        other = parts[right] if left == v else parts[left]
        strict = op in ("<", ">")
        # Normalise to "var < other" (upper bound) or "var > other" (lower bound).
        less = op in ("<", "<=")
        is_upper = less if left == v else not less
        if is_upper:
            hi, hc = other, not strict
        else:
            lo, lc = other, not strict
    return [(lo, lc, hi, hc)]


def _to_intervals(n: tuple):
    kind = n[0]
    if kind == "reals":
        return [(_NEG_INF, False, _INF, False)]
    if kind == "empty":
        return []
    if kind == "seq" and len(n[3]) == 2:
        return [(n[3][0], n[1] == "[", n[3][1], n[2] == "]")]
    if kind == "union" or kind == "list":
        if kind == "list" and not all(i[0] in ("rel", "union", "reals") for i in n[1]):
            return None
        out = []
        for item in n[1]:
            iv = _to_intervals(item)
            if iv is None:
                return None
            out.extend(iv)
        return out
    if kind == "rel":
        m = _rel_meaning(n)
        if m is None:
            return None
        if m[0] == "value" and n[1] == ("in",):
            return _to_intervals(m[1])
        if m[0] == "iv":
            return _one_var_intervals(n)
    return None


def _endpoint_value(n: tuple):
    s = _inf_sign(n)
    if s:
        return numeric._ctx.inf * s
    if numeric.free_symbols(n):
        raise numeric.EvalError("symbolic endpoint")
    return numeric.real_value(numeric.approx(n, 0))


def _canonical_intervals(ivs):
    """Evaluate, drop empty, sort and merge overlapping/touching intervals."""
    vals = []
    for lo, lc, hi, hc in ivs:
        lv, hv = _endpoint_value(lo), _endpoint_value(hi)
        lc = lc and not _inf_sign(lo)
        hc = hc and not _inf_sign(hi)
        if lv > hv or (lv == hv and not (lc and hc)):
            if not numeric.close(lv, hv):
                continue
        vals.append([lv, lc, hv, hc, lo, hi])
    vals.sort(key=lambda t: (t[0], not t[1]))
    merged = []
    for cur in vals:
        if merged:
            last = merged[-1]
            touching = numeric.close(cur[0], last[2]) if numeric._ctx.isfinite(cur[0]) else cur[0] == last[2]
            if cur[0] < last[2] and not touching or (touching and (last[3] or cur[1])):
                if cur[2] > last[2] or (cur[2] == last[2] and cur[3]):
                    last[2], last[3], last[5] = cur[2], cur[3], cur[5]
                continue
        merged.append(cur)
    return merged


def _cmp_intervals(a: tuple, b: tuple, sym: bool) -> Verdict:
    ia, ib = _to_intervals(a), _to_intervals(b)
    if ia is None or ib is None:
        return _N
    try:
        ca, cb = _canonical_intervals(ia), _canonical_intervals(ib)
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
    return _all(parts)


# ---- collections and sequences ------------------------------------------------

_MAX_ITEMS = 64


def _is_scalar(n: tuple) -> bool:
    return n[0] not in ("list", "set", "seq", "matrix", "rel", "union", "reals", "empty", "text", "pm")


def _cmp_unordered(xs: tuple, ys: tuple, sym: bool) -> Verdict:
    if len(xs) > _MAX_ITEMS or len(ys) > _MAX_ITEMS:
        return _O
    cache: dict[tuple[int, int], Verdict] = {}

    def c(i: int, j: int) -> Verdict:
        key = (i, j)
        if key not in cache:
            cache[key] = _cmp(xs[i], ys[j], sym)
        return cache[key]

    if len(xs) == len(ys):
        # Bijection; greedy is exact because equality is an equivalence.
        used: set[int] = set()
        pending = False
        for i in range(len(xs)):
            match = None
            for j in range(len(ys)):
                if j in used:
                    continue
                v = c(i, j)
                if v == _E:
                    match = j
                    break
                if v != _N:
                    pending = True
            if match is None:
                if not pending:
                    return _N
                break
            used.add(match)
        else:
            return _E
    # Different sizes (or an unsure bijection): set semantics, duplicates allowed.
    verdicts = []
    for i in range(len(xs)):
        verdicts.append(_any(c(i, j) for j in range(len(ys))))
    for j in range(len(ys)):
        verdicts.append(_any(c(i, j) for i in range(len(xs))))
    return _all(verdicts)


def _items(n: tuple) -> tuple:
    if n[0] in ("list", "set"):
        return n[1]
    if n[0] == "seq":
        return n[3]
    if n[0] == "matrix":
        return tuple(c for row in n[1] for c in row)
    return (n,)


def _is_vector(n: tuple) -> bool:
    return n[0] == "matrix" and (len(n[1]) == 1 or len(n[1][0]) == 1)


def _cmp_collection(a: tuple, b: tuple, sym: bool) -> Verdict:
    ka, kb = a[0], b[0]
    if ka not in ("list", "set"):
        a, b, ka, kb = b, a, kb, ka
    # a is a list or a set now.
    if kb in ("list", "set"):
        return _cmp_unordered(a[1], b[1], sym)
    if kb == "seq" or _is_vector(b):
        if ka == "list" and (kb != "seq" or b[1] == "("):
            ys = _items(b)
            if len(ys) == len(a[1]):
                return _all(_cmp(x, y, sym) for x, y in zip(a[1], ys))
        return _N
    if len(a[1]) == 1:
        return _cmp(a[1][0], b, sym)
    if len(set(a[1])) == 1:
        return _cmp(a[1][0], b, sym)
    return _N


def _cmp_sequence(a: tuple, b: tuple, sym: bool) -> Verdict:
    ka, kb = a[0], b[0]
    if ka == "seq" and kb == "seq":
        if (a[1], a[2]) != (b[1], b[2]) or len(a[3]) != len(b[3]):
            return _N
        return _all(_cmp(x, y, sym) for x, y in zip(a[3], b[3]))
    if ka == "matrix" and kb == "matrix":
        ra, rb = a[1], b[1]
        if len(ra) == len(rb) and len(ra[0]) == len(rb[0]):
            return _all(_cmp(x, y, sym) for x, y in zip(_items(a), _items(b)))
        if _is_vector(a) and _is_vector(b) and len(_items(a)) == len(_items(b)):
            return _all(_cmp(x, y, sym) for x, y in zip(_items(a), _items(b)))
        return _N
    # seq vs vector
    if (ka == "seq" and _is_vector(b)) or (kb == "seq" and _is_vector(a)):
        xs, ys = _items(a), _items(b)
        if len(xs) == len(ys):
            return _all(_cmp(x, y, sym) for x, y in zip(xs, ys))
    return _N


# ---- dispatch -----------------------------------------------------------------


def _expand_pm(n: tuple) -> list[tuple]:
    """All sign choices of the ``\\pm`` nodes in a scalar expression."""
    if n[0] == "pm":
        out = []
        for a in _expand_pm(n[1]):
            for b in _expand_pm(n[2]):
                out.append(("add", (a, b)) if a != ("num", Fraction(0), 0) else b)
                out.append(("add", (a, ("neg", b))) if a != ("num", Fraction(0), 0) else ("neg", b))
        return out
    kids = numeric.children(n)
    if not kids or not any(numeric.contains(k, {"pm"}) for k in kids):
        return [n]
    options = [_expand_pm(k) for k in kids]
    total = 1
    for o in options:
        total *= len(o)
    if total > 2**_MAX_PM:
        raise numeric.Oversize("too many \\pm")
    combos = [[]]
    for o in options:
        combos = [c + [x] for c in combos for x in o]
    return [_rebuild(n, tuple(c)) for c in combos]


def _rebuild(n: tuple, kids: tuple) -> tuple:
    kind = n[0]
    if kind in ("add", "mul"):
        return (kind, kids)
    if kind in ("neg", "pct", "deg"):
        return (kind, kids[0])
    if kind in ("div", "pow"):
        return (kind, kids[0], kids[1])
    if kind == "func":
        return (kind, n[1], kids)
    raise numeric.EvalError("cannot rebuild")


_INTERVAL_KINDS = ("union", "reals", "empty")


def _has_pm(n: tuple) -> bool:
    return n[0] == "pm" or (_is_scalar(n) and numeric.contains(n, {"pm"}))


def _is_interval_shaped(n: tuple) -> bool:
    if n[0] in _INTERVAL_KINDS:
        return True
    if n[0] == "rel":
        m = _rel_meaning(n)
        return m is not None and (m[0] == "iv" or (m[0] == "value" and n[1] == ("in",) and _is_interval_shaped(m[1])))
    if n[0] == "list":
        return bool(n[1]) and all(i[0] == "rel" and _is_interval_shaped(i) for i in n[1])
    return False


def _cmp(a: tuple, b: tuple, sym: bool) -> Verdict:
    if a == b:
        return _E
    ka, kb = a[0], b[0]
    if ka == "text" or kb == "text":
        if ka == kb == "text":
            ta, tb = normalize_text(a[1]), normalize_text(b[1])
            return _E if ta and ta == tb else _N
        return _N
    if _has_pm(a):
        return _cmp(("list", tuple(_expand_pm(a))), b, sym)
    if _has_pm(b):
        return _cmp(a, ("list", tuple(_expand_pm(b))), sym)
    if _is_interval_shaped(a) or _is_interval_shaped(b):
        if (ka == "empty" and kb == "set" and not b[1]) or (kb == "empty" and ka == "set" and not a[1]):
            return _E
        return _cmp_intervals(a, b, sym)
    if ka == "rel" or kb == "rel":
        return _cmp_rel(a, b, sym)
    if ka in ("list", "set") or kb in ("list", "set"):
        return _cmp_collection(a, b, sym)
    if ka in ("seq", "matrix") or kb in ("seq", "matrix"):
        return _cmp_sequence(a, b, sym)
    return _cmp_scalar_alts(a, b, sym)


def compare(pred: str, gold: str, *, symbolic: bool = False) -> Verdict:
    """Compare two answer strings.

    Args:
      pred: the model's answer (already extracted).
      gold: the reference answer.
      symbolic: allow the sympy slow path. Only pass True inside a process
        that enforces a timeout (a grader worker); the fast path alone is
        bounded and returns ``UNDECIDED`` where sympy would be needed.

    Returns:
      A :class:`Verdict`; never raises.
    """
    try:
        pa, ga = analyze(pred), analyze(gold)
        if pa.oversize or ga.oversize:
            return _O
        if not pa.norm or not ga.norm:
            return _N
        if pa.norm == ga.norm:
            return _E
        if pa.node is None or ga.node is None:
            return _E if pa.text and pa.text == ga.text else _N
        return _cmp(pa.node, ga.node, symbolic)
    except numeric.Oversize:
        return _O
    except RecursionError:
        return _O
    except Exception:
        return Verdict.ERROR


# ---- keys for grouping (maj@k) ------------------------------------------------


def _scalar_key(n: tuple):
    if n[0] == "pct":
        n = ("pct", n[1])
    elif n[0] == "deg":
        n = n[1]
    s = _inf_sign(n)
    if s:
        return ("inf", s)
    st, v = _exact(n)
    if st == "ok":
        return ("q", v)
    syms = numeric.free_symbols(n)
    vals = []
    for k in range(numeric.NUM_POINTS if syms else 1):
        x = numeric.approx(n, k)
        vals.append(numeric._ctx.nstr(x, 15))
    return ("n", tuple(vals))


def _node_key(n: tuple):
    kind = n[0]
    if kind == "text":
        return ("text", normalize_text(n[1]))
    if _has_pm(n):
        return ("set", frozenset(_node_key(x) for x in _expand_pm(n)))
    if kind == "rel":
        m = _rel_meaning(n)
        if m is not None and m[0] in ("assign", "value"):
            return _node_key(m[-1])
        raise ValueError("no key")
    if kind in ("list", "set"):
        keys = frozenset(_node_key(x) for x in n[1])
        return next(iter(keys)) if len(keys) == 1 else ("set", keys)
    if kind == "seq":
        return ("seq", n[1], n[2], tuple(_node_key(x) for x in n[3]))
    if kind == "matrix":
        if _is_vector(n):
            return ("seq", "(", ")", tuple(_node_key(x) for x in _items(n)))
        return ("mat", tuple(tuple(_node_key(x) for x in row) for row in n[1]))
    if kind in _INTERVAL_KINDS or kind == "pm":
        raise ValueError("no key")
    return _scalar_key(n)


@functools.lru_cache(maxsize=1 << 16)
def answer_key(ans: str):
    """A hashable key such that equal keys imply (almost surely) equal answers.

    Used to group sampled answers for majority voting without comparing every
    pair: exact rationals key on their value, other expressions on their
    15-digit values at the evaluation points, text on its normalised form.
    Answers the key cannot capture fall back to their normalised string.
    """
    a = analyze(ans)
    if a.oversize:
        return ("raw", ans[:200])
    if a.node is None:
        return ("text", a.text or a.norm)
    try:
        return _node_key(a.node)
    except Exception:
        return ("raw", a.norm)
