"""Numbers written in words: ``eighteen`` -> 18, ``1.5 million`` -> 1500000.

Only a whole answer is read this way (optionally followed by one unit word,
``twelve apples``), so text that merely starts with "one" is left alone. The
result is an exact decimal string for the parser; nothing is evaluated.
"""

from __future__ import annotations

import re
from fractions import Fraction

_SMALL = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30,
    "forty": 40, "fourty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
}
_SCALES = {"thousand": 10**3, "million": 10**6, "billion": 10**9, "trillion": 10**12}
_WORD_RE = re.compile(r"[A-Za-z]+|[-+]?\d+(?:\.\d+)?|\S")
_DECIMAL_RE = re.compile(r"[-+]?\d+(?:\.\d+)?")
_MAX_WORDS = 12


def _fraction_str(v: Fraction) -> str:
    if v.denominator == 1:
        return str(v.numerator)
    return f"{v.numerator}/{v.denominator}"


def words_to_number(s: str) -> str | None:
    """The number a whole answer spells out, as a string, else ``None``.

    ``"twenty-one"`` -> ``"21"``, ``"one hundred and five"`` -> ``"105"``,
    ``"1.5 million"`` -> ``"1500000"``, ``"minus three"`` -> ``"-3"``,
    ``"eighteen dollars"`` -> ``"18 dollars"`` (one trailing word is kept for
    the unit rules). Anything else (``"one of them"``, ``"x"``) -> ``None``.
    """
    if len(s) > 120:
        return None
    toks = [t.lower() for t in _WORD_RE.findall(s.replace("-", " - "))]
    toks = [t for t in toks if t != "-"] if toks[:1] != ["-"] else ["minus"] + [t for t in toks[1:] if t != "-"]
    if not toks or len(toks) > _MAX_WORDS:
        return None
    sign = 1
    if toks[0] in ("minus", "negative"):
        sign, toks = -1, toks[1:]
    unit = None
    if len(toks) >= 2 and toks[-1].isalpha() and toks[-1] not in _SMALL and toks[-1] not in _SCALES \
            and toks[-1] not in ("hundred", "and"):
        unit, toks = toks[-1], toks[:-1]
    if not toks:
        return None
    total = Fraction(0)
    current = Fraction(0)
    seen_word = False
    seen_any = False
    for i, t in enumerate(toks):
        if t in _SMALL:
            current += _SMALL[t]
            seen_word = seen_any = True
        elif _DECIMAL_RE.fullmatch(t):
            if i != 0 or len(toks) == 1:
                return None  # "1.5 million" only: a digit first, then a scale word
            current = Fraction(t)
            seen_any = True
        elif t == "hundred" and seen_any:
            current *= 100
            seen_word = True
        elif t in _SCALES and seen_any:
            total += current * _SCALES[t]
            current = Fraction(0)
            seen_word = True
        elif t == "and" and seen_any and i + 1 < len(toks):
            continue
        else:
            return None
    if not seen_word:
        return None
    value = sign * (total + current)
    out = _fraction_str(value)
    return f"{out} {unit}" if unit else out
