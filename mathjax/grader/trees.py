"""Small helpers over parse trees: shapes, items, units and ``\\pm`` expansion."""

from __future__ import annotations

from fractions import Fraction

from mathjax.grader import numeric

MAX_PM = 4  # at most 2**4 sign combinations
_NON_SCALAR = ("list", "set", "seq", "matrix", "rel", "union", "reals", "empty", "text", "pm", "ratio", "bigop")


def is_scalar(n: tuple) -> bool:
    """A number or expression (not a structure, relation or text)."""
    return n[0] not in _NON_SCALAR


def has_pm(n: tuple) -> bool:
    """Whether a scalar expression holds a ``\\pm`` (it then stands for a list)."""
    return n[0] == "pm" or (is_scalar(n) and numeric.contains(n, {"pm"}))


def expand_pm(n: tuple) -> list[tuple]:
    """All sign choices of the ``\\pm`` nodes in a scalar expression."""
    if n[0] == "pm":
        out = []
        left, right = expand_pm(n[1]), expand_pm(n[2])
        if 2 * len(left) * len(right) > 2**MAX_PM:
            raise numeric.Oversize("too many \\pm")
        for a in left:
            for b in right:
                out.append(("add", (a, b)) if a != ("num", Fraction(0), 0) else b)
                out.append(("add", (a, ("neg", b))) if a != ("num", Fraction(0), 0) else ("neg", b))
        return out
    kids = numeric.children(n)
    if not kids or not any(numeric.contains(k, {"pm"}) for k in kids):
        return [n]
    options = [expand_pm(k) for k in kids]
    total = 1
    for o in options:
        total *= len(o)
    if total > 2**MAX_PM:
        raise numeric.Oversize("too many \\pm")
    combos = [[]]
    for o in options:
        combos = [c + [x] for c in combos for x in o]
    return [rebuild(n, tuple(c)) for c in combos]


def rebuild(n: tuple, kids: tuple) -> tuple:
    """The node ``n`` with new children (inverse of :func:`numeric.children`)."""
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


def items(n: tuple) -> tuple:
    """Elements of a list, set, tuple or matrix (row-major); a scalar is its own item."""
    if n[0] in ("list", "set"):
        return n[1]
    if n[0] == "seq":
        return n[3]
    if n[0] == "matrix":
        return tuple(c for row in n[1] for c in row)
    return (n,)


def is_vector(n: tuple) -> bool:
    """A one-row or one-column matrix."""
    return n[0] == "matrix" and (len(n[1]) == 1 or len(n[1][0]) == 1)


def flat_pm(items: tuple) -> tuple:
    """``\\{1 \\pm \\sqrt5, -2\\}`` has three elements."""
    if not any(has_pm(i) for i in items):
        return items
    out: list[tuple] = []
    for i in items:
        out.extend(expand_pm(i) if has_pm(i) else (i,))
    return tuple(out)


def lift_unit(n: tuple) -> tuple:
    """``-5^\\circ`` parses as -(5°); read it as (-5)° so the unit rules apply."""
    if n[0] == "neg" and n[1][0] in ("pct", "deg"):
        return (n[1][0], ("neg", n[1][1]))
    return n


def substitute(n: tuple, name: str, value: tuple) -> tuple:
    """``n`` with the variable ``name`` replaced by the expression ``value``."""
    if n[0] == "sym":
        return value if n[1] == name else n
    kids = numeric.children(n)
    if not kids:
        return n
    return rebuild(n, tuple(substitute(k, name, value) for k in kids))


def merge_set_union(n: tuple) -> tuple:
    """``\\{1,3\\} \\cup \\{2,4\\}`` is the set ``\\{1,3,2,4\\}`` (finite sets only)."""
    if n[0] == "union" and all(p[0] in ("set", "empty") for p in n[1]):
        elems = tuple(x for p in n[1] if p[0] == "set" for x in p[1])
        return ("set", elems) if elems else ("empty",)
    return n
