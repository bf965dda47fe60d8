"""Hashable keys for grouping equal answers (majority voting) without pairwise checks."""

from __future__ import annotations

import functools

from mathjax.grader import decimals, numeric
from mathjax.grader.equiv import analyze
from mathjax.grader.normalize import normalize_text
from mathjax.grader.relations import INTERVAL_KINDS, inf_sign, rel_meaning
from mathjax.grader.scalars import exact_status
from mathjax.grader.trees import expand_pm, has_pm, is_vector, items, lift_unit, merge_set_union


def scalar_key(n: tuple):
    """Exact value for rationals, 15-digit values at the evaluation points otherwise."""
    n = lift_unit(n)
    if n[0] == "pct":
        n = ("pct", n[1])
    elif n[0] == "deg":
        n = n[1]
    s = inf_sign(n)
    if s:
        return ("inf", s)
    st, v = exact_status(n)
    if st == "ok":
        lit = decimals.literal(n)
        if lit is not None and lit[1] >= decimals.LONG_DECIMAL_DIGITS:
            # 0.0833333333333333 pools with 1/12 (decimals.py): key on the simple fraction it renders.
            q = v.limit_denominator(10 ** (lit[1] // 2))
            if q != v and decimals.long_decimal_match(n, ("num", q, 0)):
                return ("q", q)
        return ("q", v)
    syms = numeric.free_symbols(n)
    vals = []
    for k in range(numeric.NUM_POINTS if syms else 1):
        x = numeric.approx(n, k)
        vals.append(numeric.fingerprint(x))
    return ("n", tuple(vals))


def node_key(n: tuple):
    """Key of any parse tree (raises ValueError where no key is defined)."""
    n = merge_set_union(n)
    kind = n[0]
    if kind == "text":
        return ("text", normalize_text(n[1]))
    if has_pm(n):
        return ("set", frozenset(node_key(x) for x in expand_pm(n)))
    if kind == "rel":
        m = rel_meaning(n)
        if m is not None and m[0] in ("assign", "value"):
            return node_key(m[-1])
        raise ValueError("no key")
    if kind in ("list", "set"):
        keys = frozenset(node_key(x) for x in n[1])
        return next(iter(keys)) if len(keys) == 1 else ("set", keys)
    if kind == "seq":
        return ("seq", n[1], n[2], tuple(node_key(x) for x in n[3]))
    if kind == "ratio":
        return ("ratio", tuple(node_key(x) for x in n[1]))
    if kind == "bigop":
        raise ValueError("no key")
    if kind == "mod":  # a congruence: its variable and residue class (modular.py)
        return ("mod", n[1], n[2] % n[3], n[3])
    if kind == "matrix":
        if is_vector(n):
            return ("seq", "(", ")", tuple(node_key(x) for x in items(n)))
        return ("mat", tuple(tuple(node_key(x) for x in row) for row in n[1]))
    if kind in INTERVAL_KINDS or kind == "pm":
        raise ValueError("no key")
    return scalar_key(n)


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
        return node_key(a.node)
    except Exception:
        return ("raw", a.norm)
