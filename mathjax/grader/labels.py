"""Labelled answers the parser does not read as assignments, and ratios.

* A ratio of named quantities on the left of one ``=`` is a label:
  ``S_{ABC}:S = 7:32``, ``V_1:V_2 = 11:21``, ``A:B = 1``,
  ``\\frac{NO}{BO} = \\frac{1}{\\sqrt6}``. The answer is the right side; a
  bare value matches it, and two labelled answers match only with the same
  label (``\\frac{AB}{CD} = 2`` vs ``\\frac{AB}{EF} = 2`` differ, as
  ``y = 3`` vs ``x = 3`` do).
* A ratio ``a:b(:c...)`` of values is compared term by term as values
  (``1.5:2`` = ``\\frac32:2``), not reduced (``2:4`` != ``1:2``: a clock time
  ``9:30`` must not equal ``3:10``). A ratio never equals a single number.
* A chain ``1 = \\zzz = x = 0`` that the parser cannot read (an unknown
  command in the middle) is its last value, when that is a constant.
* Where the parser cannot read the left side, a named quantity labels the
  value too: an angle (``\\angle A = 60^\\circ``, ``m\\angle ABC = 45``), an
  area ``[ABC] = 6``, a word (``\\text{Area} = 12``, ``Total cost = 30``).
* Set-builder notation is its condition: ``\\{x \\mid x > 2\\}`` (also ``|``,
  ``:``, ``x \\in \\mathbb{R}``) is ``x > 2``.

String surgery and the bounded parser only: nothing is evaluated.
"""

from __future__ import annotations

import re

from mathjax.grader import latex, numeric

MAX_RATIO_TERMS = 6
_NAME = r"(?:[A-Z]+|[a-z]|\\[a-zA-Z]+)(?:_[A-Za-z0-9]+)?"
_RATIO_LABEL_RE = re.compile(rf"{_NAME}(?:[:/]{_NAME})+")
_LABEL_NOISE_RE = re.compile(r"\\(?:frac|angle|triangle|overline|operatorname)(?![a-zA-Z])|[{}|() ]")
_WORD_RE = re.compile(r"(?<![\\a-zA-Z])[a-zA-Z]{2,}")
_CMD_RE = re.compile(r"\\[a-zA-Z]+")


def split_top(s: str, sep: str) -> list[str]:
    """Split at ``sep`` outside brackets/braces; ``=`` inside ``<=``, ``>=``, ``!=``, ``:=``, ``==`` is no split."""
    out, depth, start = [], 0, 0
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == sep and depth == 0:
            prev = s[i - 1] if i else ""
            nxt = s[i + 1] if i + 1 < n else ""
            if sep == "=" and (prev in "<>!:=" or nxt == "="):
                i += 1
                continue
            if sep == ":" and nxt == "=":
                i += 1
                continue
            out.append(s[start:i])
            start = i + 1
        i += 1
    out.append(s[start:])
    return out


def ratio_label(lhs: str) -> str | None:
    """The canonical label of ``S_{ABC}:S``, ``\\frac{NO}{BO}``, ``V_1:V_2`` (None if not a ratio of names)."""
    t = lhs.replace("}{", "/")
    t = _LABEL_NOISE_RE.sub("", t)
    if not _RATIO_LABEL_RE.fullmatch(t):
        return None
    return t


_FUNCTION_WORDS = frozenset(latex.FUNCS_1 | latex.FUNCS_N | {"and", "or", "the", "is", "not"})
_NAME_LABEL_RE = re.compile(
    r"(?:m\s*)?\\(?:angle|measuredangle)\s*[A-Z]{1,3}"  # angles
    r"|\[\s*[A-Z]{3,4}\s*\]"  # areas
    r"|[A-Za-z]+(?: [A-Za-z]+){0,3}"  # words
)
_SET_BUILDER_RE = re.compile(
    r"\\\{\s*([a-zA-Z])\s*(?:\\in\s*\\reals\s*)?(?:\||\\mid|:)(.+)\\\}"
)


def _two_sides(norm: str) -> tuple[str, str] | None:
    """(left, right) of an answer with exactly one top-level ``=`` and a right side, else None."""
    if "=" not in norm:
        return None
    parts = split_top(norm, "=")
    if len(parts) != 2 or not parts[1].strip():
        return None
    return parts[0], parts[1].strip()


def split_name_label(norm: str) -> tuple[str, str] | None:
    """(label, value string) of ``\\angle A = 60``, ``[ABC] = 6``, ``Area = 12`` (for unparsed answers)."""
    sides = _two_sides(norm)
    if sides is None:
        return None
    lhs = " ".join(sides[0].split())
    if not _NAME_LABEL_RE.fullmatch(lhs):
        return None
    if lhs[:1].isalpha():
        words = lhs.lower().split()
        if not any(len(w) >= 3 and set(w) & set("aeiouy") for w in words) or set(words) & _FUNCTION_WORDS:
            return None  # "xy = 6" is an equation; "sin = ..." is no label
    return lhs, sides[1]


def set_builder_condition(norm: str) -> str | None:
    """``\\{x \\mid x > 2\\}`` -> ``x > 2`` (the condition must mention the variable)."""
    m = _SET_BUILDER_RE.fullmatch(norm.strip())
    if not m:
        return None
    var, cond = m.group(1), m.group(2).strip()
    return cond if re.search(rf"(?<![A-Za-z\\]){var}(?![A-Za-z])", cond) else None


def split_label(norm: str) -> tuple[str, str] | None:
    """(label, value string) of ``<ratio of names> = <value>``, else None."""
    sides = _two_sides(norm)
    label = ratio_label(sides[0]) if sides else None
    return (label, sides[1]) if label else None


# "y(t) = 6t - 5": a lower-case letter with its variable in parentheses, then one "=".
_FUNCTION_LABEL_RE = re.compile(r"^\s*([a-z])\s*\(\s*([a-z])\s*\)\s*=(?![=<>])")


def function_label(norm: str, node: tuple) -> tuple:
    """``y(t) = 6t - 5`` read as the function ``y`` of ``t`` (its value is the right side).

    The parser reads ``y(t)`` as the product ``y t``; the parentheses in the
    string make it a function call: the lhs becomes ``y`` applied to a one-item
    tuple, which :func:`relations.is_func_call` recognises. Only a variable
    argument different from the name (``x(x)`` is a product), and not ``e``/``i``
    (constants). ``y(2) = 7`` (a number argument) stays an equation, as
    ``f(2) = 7`` does: ``2y = 7`` is a possible reading, so it never equals ``7``.
    """
    if node[0] != "rel" or node[1] != ("=",) or len(node[2]) != 2:
        return node
    m = _FUNCTION_LABEL_RE.match(norm)
    if m is None:
        return node
    name, arg = m.group(1), m.group(2)
    lhs = node[2][0]
    if name == arg or name in "ei" or lhs != ("mul", (("sym", name), ("sym", arg))):
        return node
    call = ("mul", (("sym", name), ("seq", "(", ")", (("sym", arg),))))
    return ("rel", ("=",), (call, node[2][1]))


def parse_ratio(s: str):
    """``("ratio", terms)`` for ``7:32`` or ``1:\\sqrt2:3``; None when ``s`` is not a ratio of values."""
    if ":" not in s:
        return None
    parts = split_top(s, ":")
    if not 2 <= len(parts) <= MAX_RATIO_TERMS:
        return None
    terms = []
    for p in parts:
        if not p.strip() or _WORD_RE.search(_CMD_RE.sub(" ", p)):
            return None  # "9:30 a.m.", "x : x > 0": words or set-builder, not a ratio
        try:
            node = latex.parse(p.strip())
        except (latex.ParseError, numeric.Oversize, RecursionError):
            return None
        if node[0] in ("list", "set", "seq", "matrix", "rel", "union", "reals", "empty", "text", "pm"):
            return None
        terms.append(node)
    return ("ratio", tuple(terms))


def parse_fallback(norm: str):
    """A node for what the parser rejected: a ratio, or the constant ending a chain of ``=``."""
    r = parse_ratio(norm)
    if r is not None:
        return r
    if "=" in norm:
        parts = split_top(norm, "=")
        if len(parts) >= 3:
            try:
                last = latex.parse(parts[-1].strip())
            except (latex.ParseError, numeric.Oversize, RecursionError):
                return None
            if last[0] not in ("rel", "list", "text") and not numeric.free_symbols(last):
                return last
    return None
