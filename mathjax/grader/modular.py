"""Congruences: ``n \\equiv 5 \\pmod{17}`` is the labelled residue 5 modulo 17.

Policy (sound and simple):

* A congruence ``x \\equiv a \\pmod m`` (also ``\\equiv a \\pmod m`` without a
  name, ``a \\pmod m``, ``(\\bmod m)``, ``(\\text{mod } m)``, ``≡``) with integer
  ``a`` and integer modulus ``m >= 2`` matches a bare number ``b`` only when
  ``b = a`` and ``0 <= a < m``: the answer is the least non-negative residue
  it writes. ``\\equiv 5 \\pmod{17}`` = ``5``, but != ``22`` (another member
  of the class, not the residue asked for) and != ``6``;
  ``n \\equiv 22 \\pmod{17}`` (not reduced) matches no bare number.
* Two congruences match when they have the same modulus and the same residue
  class (``x \\equiv 22 \\pmod{17}`` = ``x \\equiv 5 \\pmod{17}``; ``\\pmod{17}``
  vs ``\\pmod{34}`` differ) and, when both name their variable, the same name
  (``n \\equiv 5`` vs ``m \\equiv 5`` differ, as ``y = 3`` vs ``x = 3`` do).
* An assignment ``n = 5`` of the same (or an unnamed) variable is its value.

One anchored regular expression without nested quantifiers; nothing is evaluated.
"""

from __future__ import annotations

import re

from mathjax.grader.verdict import Verdict

_MOD = r"(?:\\pmod|\\bmod|\\mod|mod)(?![a-zA-Z])\s*\{?\s*(\d{1,30})\s*\}?"
_CONGRUENCE_RE = re.compile(
    r"^\s*(?:([A-Za-z](?:_\{?[A-Za-z0-9]{1,3}\}?)?)\s*(?:\\equiv(?![a-zA-Z])|\u2261|=)"
    r"|\\equiv(?![a-zA-Z])|\u2261)?\s*(-?\d{1,30})\s*"
    r"(?:" + _MOD + r"|\(\s*" + _MOD + r"\s*\))\s*$"
)

_E, _N = Verdict.EQUAL, Verdict.NOT_EQUAL


def parse_congruence(norm: str):
    """``("mod", var, a, m)`` for a congruence answer (``var`` may be None), else None."""
    if "mod" not in norm or len(norm) > 200:
        return None
    m = _CONGRUENCE_RE.match(norm)
    if m is None:
        return None
    var, a = m.group(1), int(m.group(2))
    mod = int(m.group(3) or m.group(4))
    if mod < 2:
        return None
    return ("mod", var.replace("{", "").replace("}", "") if var else None, a, mod)


def compare(a: tuple, b: tuple) -> Verdict:
    """Verdict for a pair where at least one side is a ``("mod", ...)`` node."""
    if a[0] != "mod":
        a, b = b, a
    _, var, res, mod = a
    if b[0] == "mod":
        if var and b[1] and var != b[1]:
            return _N
        return _E if mod == b[3] and (res - b[2]) % mod == 0 else _N
    if b[0] == "rel" and b[1] == ("=",) and len(b[2]) == 2 and b[2][0][0] == "sym":
        if var and b[2][0][1] != var:
            return _N
        b = b[2][1]  # "n = 5": the value of n
    if b[0] == "neg" and b[1][0] == "num":
        b = ("num", -b[1][1], b[1][2])
    if b[0] != "num" or b[1].denominator != 1:
        return _N
    return _E if b[1] == res and 0 <= res < mod else _N
