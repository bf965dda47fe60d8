"""Answer lists of assignments: ``p=5, q=2; p=7, q=2`` is the solutions ``(p,q) = (5,2), (7,2)``.

A list of assignments to plain variables whose names repeat in one fixed order
(``p, q, p, q``) lists several solutions of a system: it is regrouped into
tuple assignments ``(p, q) = (5, 2)``, ``(p, q) = (7, 2)``, which compare as
tuples (ordered) within an unordered list: ``(5,2),(7,2)`` matches, and so
does ``(7,2),(5,2)``; ``(2,5),(2,7)`` does not. A list whose names do not
repeat (``x = 1, y = 2``, ``AB = 4, CD = 5``) is left as it is: its items are
compared one by one, unordered, each label with its value.
"""

from __future__ import annotations

MAX_GROUPED = 64


def _assigned_name(n: tuple) -> str | None:
    if n[0] == "rel" and n[1] == ("=",) and n[2][0][0] == "sym":
        return n[2][0][1]
    return None


def group_assignments(node: tuple) -> tuple:
    """Regroup a repeating list of assignments into tuple assignments (else return ``node``)."""
    if node[0] != "list" or not 4 <= len(node[1]) <= MAX_GROUPED:
        return node
    names = [_assigned_name(x) for x in node[1]]
    if None in names:
        return node
    k = names.index(names[0], 1) if names[0] in names[1:] else 0
    if k < 2 or len(names) % k or len(set(names[:k])) != k or names != names[:k] * (len(names) // k):
        return node
    lhs = ("seq", "(", ")", tuple(("sym", n) for n in names[:k]))
    groups = []
    for i in range(0, len(names), k):
        values = tuple(x[2][1] for x in node[1][i : i + k])
        groups.append(("rel", ("=",), (lhs, ("seq", "(", ")", values))))
    return ("list", tuple(groups))
