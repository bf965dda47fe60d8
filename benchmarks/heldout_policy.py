"""Policy classes of grader disagreements for ``grader_heldout.py``: computed from each pair, never listed.

A disagreement with a source's label is one of this project's documented policies when:

* ``tolerance``: the source labels the pair equal, we say unequal, and both answers evaluate to finite
  reals (or same-shaped lists/tuples/matrices/relations/expressions whose numbers do) that differ but lie
  within 0.01 absolute or 1% relative of each other (MathCoder's MATH rule, MARIO's tolerant policy; our
  numbers are exact, README's equivalence policy).
* ``order``: the source labels unequal, we say equal, and both answers are the same comma-separated items
  in another order (hendrycks' string test is ordered; our bare comma lists are unordered sets).
"""

from __future__ import annotations

import re

from mathjax import grader
from mathjax.grader import numeric
from grader_agreement import gold_answer

TOL_ABS, TOL_REL = 0.01, 0.01
_MAX_LIST_ITEMS = 32
_EQ_OPS = ("=", "~")  # "=", "\\approx" as the parser writes them
_THOUSANDS_RE = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_CASES_RE = re.compile(r"\\begin\{cases\}(.*?)\\end\{cases\}", re.S)


def _policy_nodes(s: str) -> list[tuple]:
    """Parse trees of an answer for the tolerance test: as the grader parses it, then with a
    ``cases`` environment read as a comma list of its rows and thousands commas (``5,525``) dropped."""
    out = []
    variants = [s]
    t = _CASES_RE.sub(lambda m: m.group(1).replace("\\\\", ",").replace("&", ""), s)
    variants += [t, _THOUSANDS_RE.sub("", t)]
    for v in dict.fromkeys(variants):
        try:
            node = grader.analyze(v).node
        except Exception:
            node = None
        if node is not None:
            out.append(node)
    return out


def _real(node: tuple):
    """(exact Fraction or None, 50-digit real) of a symbol-free scalar tree; None when it has
    variables, is not a scalar, is complex, infinite or undefined."""
    try:
        if numeric.free_symbols(node):
            return None
        v = numeric.real_value(numeric.approx(node, 0))
        return (numeric.exact(node), v) if numeric.is_finite(v) else None
    except Exception:
        return None


def _parts(node: tuple) -> tuple[tuple, tuple] | None:
    """(head, children) of a tree, for the structural walk; None for a leaf."""
    kind = node[0]
    if kind in ("add", "mul", "list", "set", "union", "ratio"):
        return (kind, len(node[1])), tuple(node[1])
    if kind in ("neg", "pct", "deg"):
        return (kind,), (node[1],)
    if kind in ("div", "pow", "pm"):
        return (kind,), (node[1], node[2])
    if kind == "func":
        return (kind, node[1], len(node[2])), tuple(node[2])
    if kind == "rel":
        return (kind, tuple(node[1])), tuple(node[2])
    if kind == "seq":
        return (kind, node[1], node[2], len(node[3])), tuple(node[3])
    if kind == "matrix":
        return (kind, tuple(len(r) for r in node[1])), tuple(c for r in node[1] for c in r)
    return None


def _near(a: tuple, b: tuple, depth: int = 0) -> bool | None:
    """Whether the numbers of ``a`` and ``b`` differ (True) or not (False), all within the tolerance;
    None when the shapes or symbols differ or some number is beyond the tolerance."""
    ra, rb = _real(a), _real(b)
    if ra is not None and rb is not None:
        (qa, va), (qb, vb) = ra, rb
        if not (qa != qb if qa is not None and qb is not None else numeric.far(va, vb)):
            return False
        d = abs(va - vb)
        return True if d <= TOL_ABS or d <= TOL_REL * max(abs(va), abs(vb)) else None
    if ra is not None or rb is not None or depth > 50:
        return None
    pa, pb = _parts(a), _parts(b)
    if pa is None or pb is None:
        return False if a == b else None  # variables, constants, text: the same, or not comparable
    if pa[0] != pb[0]:
        return None
    differ = False
    for x, y in zip(pa[1], pb[1]):
        r = _near(x, y, depth + 1)
        if r is None:
            return None
        differ |= r
    return differ


def _drop_label(node: tuple, other: tuple) -> tuple:
    """``AB \\approx 3.464`` / ``\\sin G = 0.47`` -> the right side of the last ``=``/``\\approx``,
    when the other answer is not a relation."""
    if node[0] == "rel" and other[0] != "rel" and node[1] and node[1][-1] in _EQ_OPS:
        return node[2][-1]
    return node


def is_tolerance(gold: str, ext: str | None) -> bool:
    """Gold and extracted answer differ numerically, but within TOL_ABS or TOL_REL (see above)."""
    if not ext or not gold:
        return False
    for g in _policy_nodes(gold):
        for e in _policy_nodes(ext):
            if _near(_drop_label(g, e), _drop_label(e, g)):
                return True
    return False


def _top_items(s: str) -> list[str]:
    """``s`` split at the commas outside brackets and braces."""
    items, depth, cur = [], 0, []
    i = 0
    while i < len(s):
        ch = s[i]
        if ch == "\\" and i + 1 < len(s):  # a command or escaped character: \{ \} count as brackets
            cur.append(s[i:i + 2])
            depth += {"{": 1, "}": -1}.get(s[i + 1], 0)
            i += 2
            continue
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            items.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
        i += 1
    items.append("".join(cur).strip())
    return items


def is_reordered(gold: str, ext: str | None, angles: str) -> bool:
    """The same comma-separated items (``grader.is_equiv`` on items) in another order."""
    if not ext or not gold:
        return False
    g, e = _top_items(gold), _top_items(ext)
    if not 2 <= len(g) == len(e) <= _MAX_LIST_ITEMS or not all(g) or not all(e):
        return False
    eq = lambda a, b: grader.is_equiv(a, b, angles=angles)  # noqa: E731
    if all(eq(x, y) for x, y in zip(e, g)):
        return False  # same order: a disagreement of some other kind
    left = list(g)
    for x in e:  # greedy multiset matching (is_equiv is an equivalence on such items)
        j = next((j for j, y in enumerate(left) if eq(x, y)), None)
        if j is None:
            return False
        del left[j]
    return True


def policy_kind(c: dict, angles: str) -> str | None:
    """The documented policy behind a disagreement (``c["ours"] != c["label"]``), or None."""
    ext = c["output"] if c["kind"] == "answer" else grader.extract_answer(c["output"])
    gold = gold_answer(c["gold"])
    if c["label"] and not c["ours"] and is_tolerance(gold, ext):
        return "tolerance"
    if c["ours"] and not c["label"] and is_reordered(gold, ext, angles):
        return "order"
    return None
