"""Mathematical equivalence of two answer strings.

Policy (what "equal" means), applied after :func:`normalize.normalize_answer`:

* Numbers are exact: ``1/2 == 0.5 == \\frac12 == 50\\%``; ``0.33``, ``0.333333``
  are not ``1/3``; ``1.414`` is not ``\\sqrt2`` (a rounded decimal of a
  non-terminating value is a wrong answer). ``0.\\overline{3}`` is ``1/3``.
* ``x%`` also matches ``x`` (the model dropped the unit), and ``x°`` matches
  ``x`` (and ``x·π/180`` with ``angles="convert"``, see :mod:`angles`).
  ``1,234`` is a number, ``1, 234`` is a list.
* Expressions are equal when they agree at 50 digits at fixed points for every
  variable (two positive and one negative value each), e.g. ``\\frac{1}{\\sqrt2}``
  vs ``\\frac{\\sqrt2}{2}``, ``(x+1)^2`` vs ``x^2+2x+1``. Cases this cannot
  settle go to sympy (exact), in a worker with a hard timeout.
* ``x = 3`` (and ``AB = 4``, ``|AB| = 1``) matches ``3``, but not ``y = 3``:
  labelled values of different variables differ; two equations match when
  ``lhs - rhs`` are proportional (same solution set); an equation in one
  variable matches the list of exactly its solutions (``x^2 = 4`` vs
  ``\\pm 2``; real solutions unless a complex one is listed); inequalities
  match intervals (``x > 2``, ``-x < -2``, ``2x > 4`` vs ``(2, \\infty)``;
  ``0 < f(x) < 1`` vs ``(0, 1)``), unions are merged before comparing
  (``\\{1,3\\} \\cup \\{2\\}`` is ``\\{1,2,3\\}``).
* Tuples/points and vectors are ordered, sets and bare answer lists unordered;
  a bare list also matches a tuple in the same order. ``a \\pm b`` is the list
  ``a+b, a-b``. Matrices compare element-wise.
* Plain-text answers compare case- and punctuation-insensitively; choice
  letters ``(C)``, ``\\text{C}``, ``C``, ``(c)`` are equal (a bare ``c`` is a
  variable). Number words are numbers (``eighteen``, ``1.5 million``).
* A parenthesised word after a number is a unit (``18 (dollars)``), a
  parenthesised variable is a factor or argument: ``2(a)`` is ``2a``,
  ``\\sin^2(x)`` is not ``\\sin^2(y)``.

Everything here is bounded (see :mod:`numeric`), never evaluates the input as
code, and :func:`compare` never raises.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from mathjax.grader import angles as _angles, inequalities as _inequalities, latex, numeric
from mathjax.grader.normalize import (
    AnswerTooLong,
    is_thousands_number,
    loose_text,
    normalize_answer,
    normalize_text,
)
from mathjax.grader.relations import (
    as_eq,
    interval_subjects,
    is_func_call,
    canonical_intervals,
    cmp_eq,
    inf_sign,
    is_interval_shaped,
    rel_meaning,
    to_intervals,
)
from mathjax.grader.trees import expand_pm, flat_pm, has_pm, is_scalar, is_vector, items, lift_unit, substitute
from mathjax.grader.trees import merge_set_union
from mathjax.grader.verdict import Verdict, all_of, any_of


@dataclass(frozen=True)
class Answer:
    """An analysed answer string (cached: many samples share an answer)."""

    raw: str
    norm: str
    node: tuple | None  # None: not parseable, compared as text
    text: str  # normalize_text(norm), for text comparisons
    oversize: bool = False
    # "70,110" is 70110 but may be the list 70, 110: that reading, for lists only.
    list_reading: tuple | None = None


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
    except (latex.ParseError, numeric.Oversize, RecursionError):
        node = None
    except Exception:  # a parser bug must not stop a run: the answer is then text
        node = None
    alt = None
    if node is not None and node[0] == "num" and "," in s:
        raw = normalize_answer(s, thousands=False)
        if is_thousands_number(raw):
            try:
                alt = latex.parse(raw)
            except Exception:
                alt = None
    return Answer(s, norm, node, normalize_text(norm), list_reading=alt)


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


def _cmp_scalar_alts(a: tuple, b: tuple, sym: bool) -> Verdict:
    a, b = lift_unit(a), lift_unit(b)
    if a[0] == b[0] and a[0] in ("pct", "deg"):
        return _cmp_scalar(a[1], b[1], sym)
    if {a[0], b[0]} == {"pct", "deg"}:
        return _N  # two different explicit units
    alts_a, alts_b = _angles.alternatives(a), _angles.alternatives(b)
    if len(alts_a) == 1 and len(alts_b) == 1:
        return _cmp_scalar(alts_a[0], alts_b[0], sym)
    return any_of(_cmp_scalar(x, y, sym) for x in alts_a for y in alts_b)


# ---- relations, equations, intervals ------------------------------------------


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
    if is_func_call(la) and is_func_call(lb) and la[1][0] == lb[1][0] and la[1][1][0] == lb[1][1][0] == "sym":
        # f(x) = x^2 vs f(t) = t^2: the same function, its argument renamed.
        arg = ("sym", "_arg")  # one fresh name for both (symmetric)
        return _cmp(substitute(ma[2], la[1][1][1], arg), substitute(mb[2], lb[1][1][1], arg), sym)
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


# ---- collections and sequences ------------------------------------------------

_MAX_ITEMS = 64


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
        verdicts.append(any_of(c(i, j) for j in range(len(ys))))
    for j in range(len(ys)):
        verdicts.append(any_of(c(i, j) for i in range(len(xs))))
    return all_of(verdicts)


def _cmp_collection(a: tuple, b: tuple, sym: bool) -> Verdict:
    ka, kb = a[0], b[0]
    if ka not in ("list", "set"):
        a, b, ka, kb = b, a, kb, ka
    # a is a list or a set now.
    if kb in ("list", "set"):
        return _cmp_unordered(flat_pm(a[1]), flat_pm(b[1]), sym)
    if kb == "seq" or is_vector(b):
        if ka == "list" and (kb != "seq" or (b[1], b[2]) == ("(", ")")):
            ys = items(b)
            if len(ys) == len(a[1]):
                return all_of(_cmp(x, y, sym) for x, y in zip(a[1], ys))
        return _N
    if len(a[1]) == 1:
        return _cmp(a[1][0], b, sym)
    # {x + 11, 11 + x} is {11 + x}: a list matches a value when every item does.
    if len(a[1]) > _MAX_ITEMS:
        return _O
    return all_of(_cmp(x, b, sym) for x in a[1])


def _cmp_sequence(a: tuple, b: tuple, sym: bool) -> Verdict:
    ka, kb = a[0], b[0]
    if ka == "seq" and kb == "seq":
        if (a[1], a[2]) != (b[1], b[2]) or len(a[3]) != len(b[3]):
            return _N
        return all_of(_cmp(x, y, sym) for x, y in zip(a[3], b[3]))
    if ka == "matrix" and kb == "matrix":
        ra, rb = a[1], b[1]
        if len(ra) == len(rb) and len(ra[0]) == len(rb[0]):
            return all_of(_cmp(x, y, sym) for x, y in zip(items(a), items(b)))
        if is_vector(a) and is_vector(b) and len(items(a)) == len(items(b)):
            return all_of(_cmp(x, y, sym) for x, y in zip(items(a), items(b)))
        return _N
    # seq vs vector
    if (ka == "seq" and is_vector(b)) or (kb == "seq" and is_vector(a)):
        xs, ys = items(a), items(b)
        if len(xs) == len(ys):
            return all_of(_cmp(x, y, sym) for x, y in zip(xs, ys))
    return _N


# ---- dispatch -----------------------------------------------------------------


def _cmp(a: tuple, b: tuple, sym: bool) -> Verdict:
    if a == b:
        return _E
    a, b = merge_set_union(a), merge_set_union(b)
    ka, kb = a[0], b[0]
    if ka == "text" or kb == "text":
        if ka == kb == "text":
            ta, tb = normalize_text(a[1]), normalize_text(b[1])
            return _E if ta and ta == tb else _N
        return _N
    if has_pm(a):
        return _cmp(("list", tuple(expand_pm(a))), b, sym)
    if has_pm(b):
        return _cmp(a, ("list", tuple(expand_pm(b))), sym)
    if is_interval_shaped(a) or is_interval_shaped(b):
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


# "C", "(C)", "C)" and, parenthesised only, "(c)" (a bare "c" is a variable).
_CHOICE_RE = re.compile(r"^\(?([A-E])\)?$|^\(([a-e])\)$")
_CHOICE_PREFIX_RE = re.compile(r"^(?:\(([A-E])\)|([A-E])\))(?:\s|$)")


def _choice_letter(norm: str) -> str | None:
    m = _CHOICE_RE.match(norm)
    if not m:
        return None
    return m.group(1) or m.group(2).upper()


def compare(pred: str, gold: str, *, symbolic: bool = False, angles: str | None = None) -> Verdict:
    """Compare two answer strings.

    Args:
      pred: the model's answer (already extracted).
      gold: the reference answer.
      symbolic: allow the sympy slow path. Only pass True inside a process
        that enforces a timeout (a grader worker); the fast path alone is
        bounded and returns ``UNDECIDED`` where sympy would be needed.
      angles: ``"degrees"`` or ``"convert"`` (see :mod:`angles`); None is the
        process default (``"degrees"``). An unknown name raises ValueError.

    Returns:
      A :class:`Verdict`; never raises (but for a bad ``angles``).
    """
    with _angles.using(_angles.check(angles)):
        return _compare(pred, gold, symbolic)


def _compare(pred: str, gold: str, symbolic: bool) -> Verdict:
    try:
        pa, ga = analyze(pred), analyze(gold)
        if pa.oversize or ga.oversize:
            return _O
        if not pa.norm or not ga.norm:
            return _N
        if pa.norm == ga.norm:
            return _E
        ca, cg = _choice_letter(pa.norm), _choice_letter(ga.norm)
        if ca and cg and (pa.norm[:1] == "(" or ga.norm[:1] == "("):
            # "(b)" answers option B; "b" vs "B" stay variables (compared below).
            return _E if ca == cg else _N
        for letter_side, other in ((ga.norm, pa.norm), (pa.norm, ga.norm)):
            # A multiple-choice letter: "(C) 12" and "C" both answer C.
            choice = _choice_letter(letter_side)
            m = _CHOICE_PREFIX_RE.match(other) if choice else None
            if m and (m.group(1) or m.group(2)) == choice:
                return _E
        if pa.node is None or ga.node is None:
            # Unparseable (e.g. "3:1"): compare loosely as strings, keeping symbols.
            la, lb = loose_text(pa.norm), loose_text(ga.norm)
            return _E if la and la == lb else _N
        pn, gn = _angles.in_policy(pa.node), _angles.in_policy(ga.node)  # degree signs, see angles.py
        v = _cmp(pn, gn, symbolic)
        if v != _E and ga.list_reading is not None and pn[0] == "list":
            v = any_of((v, _cmp(pn, _angles.in_policy(ga.list_reading), symbolic)))
        elif v != _E and pa.list_reading is not None and gn[0] == "list":
            v = any_of((v, _cmp(_angles.in_policy(pa.list_reading), gn, symbolic)))
        return v
    except numeric.Oversize:
        return _O
    except RecursionError:
        return _O
    except Exception:
        return Verdict.ERROR
