"""Mathematical equivalence of two answer strings.

Policy (what "equal" means), applied after :func:`normalize.normalize_answer`:

* Numbers are exact: ``1/2 == 0.5 == \\frac12 == 50\\%``; ``0.33``, ``0.333333``
  are not ``1/3``; ``1.414`` is not ``\\sqrt2`` (a rounded decimal of a
  non-terminating value is a wrong answer). ``0.\\overline{3}`` is ``1/3``, and
  so is a float rendering with 12+ digits, ``0.3333333333333333`` (:mod:`decimals`).
* ``x%`` also matches ``x`` (the model dropped the unit); its ``x/100`` reading
  holds only against a constant in [-1, 1] (``25%`` is ``0.25``, ``1200%`` is
  not ``12``: a percentage computed twice). ``x°`` matches
  ``x`` (and ``x·π/180`` with ``angles="convert"``, see :mod:`angles`).
  ``1,234`` is a number, ``1, 234`` is a list.
* Expressions are equal when they agree at 50 digits at fixed points for every
  variable (two positive and one negative value each), e.g. ``\\frac{1}{\\sqrt2}``
  vs ``\\frac{\\sqrt2}{2}``, ``(x+1)^2`` vs ``x^2+2x+1``. Cases this cannot
  settle go to sympy (exact), in a worker with a hard timeout.
* ``x = 3`` (and ``AB = 4``, ``|AB| = 1``) matches ``3``, but not ``y = 3``:
  labelled values of different variables differ; two equations match when
  ``lhs - rhs`` are proportional (same solution set) and both or neither are
  solved (``2x = 6`` is not ``x = 3``); an equation still to solve is never its
  solutions (``x^2 = 4`` is not ``\\pm 2``, ``150 = 500 - x`` is not ``350``), but a
  named quantity of one variable given a constant is that constant (``z^3 = -1``,
  ``\\sin^2 x = 1`` answer "find z^3"; not ``|x| = 1``; ``2x = 6`` is not ``6``); inequalities
  match intervals (``x > 2``, ``-x < -2``, ``2x > 4`` vs ``(2, \\infty)``;
  ``0 < f(x) < 1`` vs ``(0, 1)``), unions are merged before comparing
  (``\\{1,3\\} \\cup \\{2\\}`` is ``\\{1,2,3\\}``).
* Tuples/points and vectors are ordered, sets and bare answer lists unordered;
  a bare list also matches a tuple in the same order. ``a \\pm b`` is the set
  ``{a+b, a-b}`` (never a tuple), as is ``x = 1, x = 2``. Matrices compare
  element-wise, after the matrix arithmetic an answer writes (:mod:`matrices`). Ratios ``a:b`` compare term by term and
  labelled ratios ``V_1:V_2 = 2:3`` are their value (:mod:`labels`);
  ``p=5,q=2;p=7,q=2`` is the tuple list ``(5,2),(7,2)`` (:mod:`assignments`).
  ``\\sum``/``\\prod`` match with equal bounds and bodies.
* A congruence ``n \\equiv 5 \\pmod{17}`` is its reduced residue ``5`` (not ``22``),
  or a congruence of the same modulus and class (:mod:`modular`).
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

from mathjax.grader import angles as _angles, labels as _labels, latex, modular as _modular, numeric
from mathjax.grader.assignments import group_assignments
from mathjax.grader.normalize import (
    AnswerTooLong,
    is_thousands_number,
    loose_text,
    normalize_answer,
    normalize_text,
)
from mathjax.grader.matrices import matrix_value
from mathjax.grader.relations import is_interval_shaped, rel_meaning
from mathjax.grader.relcompare import _cmp_intervals, _cmp_rel
from mathjax.grader.scalars import _cmp_scalar_alts
from mathjax.grader.trees import expand_pm, flat_pm, has_pm, is_vector, items, merge_set_union, substitute
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
    # "S_{ABC}:S = 7:32": the label (see labels.py); norm/node are then the value's.
    label: str | None = None


def _parse(norm: str):
    return latex.parse(norm) if norm else None


@functools.lru_cache(maxsize=1 << 16)
def analyze(s: str) -> Answer:
    """Normalise and parse one answer string (never raises)."""
    try:
        norm = normalize_answer(s)
    except AnswerTooLong:
        return Answer(s[:64], "", None, "", oversize=True)
    label = None
    labelled = _labels.split_label(norm) if norm else None
    if labelled is not None:
        label, norm = labelled
    norm = _labels.set_builder_condition(norm) or norm
    congruence = _modular.parse_congruence(norm) if label is None else None
    if congruence is not None:
        return Answer(s, norm, congruence, normalize_text(norm))
    try:
        node = _parse(norm)
    except latex.TooDeep:
        return Answer(s, norm, None, "", oversize=True)
    except (latex.ParseError, numeric.Oversize, RecursionError):
        node = None
        named = _labels.split_name_label(norm) if label is None else None
        if named is not None:
            try:
                node = _parse(named[1])
                label, norm = named
            except (latex.ParseError, numeric.Oversize, RecursionError):
                pass
        if node is None:
            node = _labels.parse_fallback(norm)
    except Exception:  # a parser bug must not stop a run: the answer is then text
        node = None
    if node is not None:
        node = _labels.function_label(norm, node)
        node = group_assignments(matrix_value(node))
    alt = None
    if node is not None and node[0] == "num" and "," in s:
        raw = normalize_answer(s, thousands=False)
        if is_thousands_number(raw):
            try:
                alt = latex.parse(raw)
            except Exception:
                alt = None
    return Answer(s, norm, node, normalize_text(norm), list_reading=alt, label=label)


_E, _N, _U, _O = Verdict.EQUAL, Verdict.NOT_EQUAL, Verdict.UNDECIDED, Verdict.OVERSIZE


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


def _alternatives(xs: tuple) -> bool:
    """``x = 1, x = 2``: values of one variable, alternatives (a set), not the components of a tuple."""
    names = [x[2][0] for x in xs if x[0] == "rel" and x[1] == ("=",)]
    return len(set(names)) < len(names)


def _cmp_collection(a: tuple, b: tuple, sym: bool) -> Verdict:
    ka, kb = a[0], b[0]
    if ka not in ("list", "set"):
        a, b, ka, kb = b, a, kb, ka
    # a is a list or a set now.
    if kb in ("list", "set"):
        return _cmp_unordered(flat_pm(a[1]), flat_pm(b[1]), sym)
    if kb == "seq" or is_vector(b):
        if ka == "list" and (kb != "seq" or (b[1], b[2]) == ("(", ")")) and not _alternatives(a[1]):
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
    if ka == "mod" or kb == "mod":
        return _modular.compare(a, b)
    if ka == "bigop" or kb == "bigop":
        return _cmp_big_operators(a, b, sym)
    if ka == "ratio" or kb == "ratio":
        if ka != kb or len(a[1]) != len(b[1]):
            return _N
        return all_of(_cmp(x, y, sym) for x, y in zip(a[1], b[1]))
    if ka == "text" or kb == "text":
        if ka == kb == "text":
            ta, tb = normalize_text(a[1]), normalize_text(b[1])
            return _E if ta and ta == tb else _N
        return _N
    # "a \\pm b" is the set of both values: a list of them, never a tuple (3, -3).
    if has_pm(a):
        return _cmp(("set", tuple(expand_pm(a))), b, sym)
    if has_pm(b):
        return _cmp(a, ("set", tuple(expand_pm(b))), sym)
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


def _cmp_big_operators(a: tuple, b: tuple, sym: bool) -> Verdict:
    """``\\sum_{k=0}^{n-1} F_k F_{n-k-1}`` vs the same sum with its body reordered.

    Same operator and bounds, and bodies equal as expressions (the index is a
    variable); a renamed index is renamed in plain variables only, so ``F_j``
    vs ``F_k`` stay different (unequal, never a wrong "equal").
    """
    if a[0] != b[0] or a[1] != b[1]:
        return _N
    k = ("sym", "_index")
    return all_of((
        _cmp(a[3], b[3], sym),
        _cmp(a[4], b[4], sym),
        _cmp(substitute(a[5], a[2], k), substitute(b[5], b[2], k), sym),
    ))


def _labelled(n: tuple) -> bool:
    m = rel_meaning(n)
    return m is not None and m[0] == "assign"


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
        if pa.label and ga.label and pa.label != ga.label:
            return _N  # values of differently named quantities
        for lab, other in ((pa.label, ga.node), (ga.label, pa.node)):
            if lab and other is not None and other[0] == "rel" and _labelled(other):
                return _N  # "AB:BC = 1" vs "|AB| = 1": two labels
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
