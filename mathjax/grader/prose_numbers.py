"""Numbers in prose: the last-number fallback of extraction, and denied values.

``last_number`` finds the last number of a text's tail the way a reader would:
``1,234``, ``1 234``, ``1\\,234`` and ``14{,}916`` are one number (groups of
three), ``.4`` and ``2/3.`` (a fraction before a full stop) are numbers, a
number inside ``\\frac{..}{..}``/``\\sqrt{..}`` stands for the whole command,
a number glued to ``#`` or after ``No.`` (``horse #12``, ``No. 5``) names an
item and is passed over unless there is no other number, a digit run between
CJK characters is a number (``共有99颗``, ``为13/28``),
and a unary minus before such a command is kept (``-\\frac{10}{9}``; after an
operand, ``5 - \\frac12``, it is binary and dropped). A value right after
"not", "isn't", ``\\neq`` or "≠" is denied (:func:`negated_before`).

One regular-expression pass over the last 4096 characters; no nested quantifiers.
"""

from __future__ import annotations

import re

from mathjax.grader.boxes import find_balanced

# 1,234 / 1 234 / 1\,234 / 14{,}916 (groups of three), 12, 3.5, .4, 2/3 ("2/3." ends a sentence).
# Not glued to a letter, digit, "_" or "." ("x2"); CJK characters do not glue ("有99颗").
_CJK = "\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef"
_NUMBER_RE = re.compile(
    r"(?<![^\W" + _CJK + r"])(?<!\.)-?(?:[1-9]\d{0,2}(?:(?:,|[ \u00a0\u202f]|\\,|\s?\{\s?,\s?\}\s?)\d{3}(?!\d))+|\d+|(?=\.\d))"
    r"(?:\.\d+)?(?:\s*/\s*\d+(?!\d|\.\d))?"
    r"|\\frac\{-?\d+\}\{\d+\}"
)
# "#12", "No. 5", "Nos. 3", "№ 5": a number that names an item, not a value ("#### 12" is a marker).
_IDENTIFIER_BEFORE_RE = re.compile(r"(?:\bNos?\.|\u2116)\s?$|(?<!#)#$")
_NUMBER_SEPARATORS_RE = re.compile(r"\{\s*,\s*\}|\\,|[ \u00a0\u202f]")
# Right before a number or box: "is not", "isn't", "\neq", "≠".
_NEGATION_BEFORE_RE = re.compile(
    r"(?i)(?:\bnot|n['’]t|\\neq?|\u2260)\s*(?:(?:equal\s+to|be)\s*)?[$\s(]*(?:\\\(|\\boxed\{|\\fbox\{)?\s*$"
)
_ENCLOSING_CMD_RE = re.compile(r"\\(?:[dtc]?(frac)|(sqrt))(?![a-zA-Z])")


def negated_before(text: str, pos: int) -> bool:
    """Whether the value at ``text[pos]`` is denied ("is not 5", "x \\neq 5")."""
    return bool(_NEGATION_BEFORE_RE.search(text[max(0, pos - 40) : pos]))


def last_number(text: str) -> tuple[int, str | None] | None:
    """``(end, number)`` of the last number in the text; ``number`` is ``None`` when it is denied."""
    tail = text[-4096:]
    offset = len(text) - len(tail)
    last = last_id = None
    for m in _NUMBER_RE.finditer(tail):
        if _IDENTIFIER_BEFORE_RE.search(tail, max(0, m.start() - 6), m.start()):
            last_id = m
        else:
            last = m
    last = last or last_id  # an identifier only when there is no other number
    if last is None:
        return None
    start, end = last.span()
    # "\dfrac{3}{4}.", "\sqrt{2}.": the number is part of a larger expression.
    enclosing = _enclosing_command(tail, start, end)
    if enclosing is not None:
        start, end = enclosing
    if negated_before(tail, start):
        return offset + end, None
    minus = _unary_minus_before(tail, start) if tail[start] == "\\" else -1
    if minus >= 0:
        start = minus  # "-\frac{10}{9}": the sign belongs to the fraction
    return offset + end, _NUMBER_SEPARATORS_RE.sub("", tail[start:end])


def _unary_minus_before(s: str, start: int) -> int:
    """Index of a unary ``-`` right before ``s[start]`` ("= -\\frac12", "is -\\sqrt2"), else -1."""
    j = start - 1
    while j >= 0 and s[j] == " ":
        j -= 1
    if j < 0 or s[j] not in "-\u2212":
        return -1
    k = j - 1
    while k >= 0 and s[k] == " ":
        k -= 1
    # After an operand ("5 - \\frac12", "x -\\sqrt2") the minus is binary; after a word ("is") it is a sign.
    if k >= 0 and (s[k].isdigit() or s[k] in ")]}|!"):
        return -1
    if k >= 0 and s[k].isalpha() and not (k >= 1 and s[k - 1].isalpha() and (k < 2 or s[k - 2] != "\\")):
        return -1  # one letter: a variable
    return j


def _enclosing_command(s: str, start: int, end: int) -> tuple[int, int] | None:
    """Span of the ``\\frac``/``\\sqrt`` whose arguments hold ``s[start:end]``."""
    for m in _ENCLOSING_CMD_RE.finditer(s, max(0, start - 200), start):
        j = m.end()
        nargs = 1 if m.group(2) else 2
        for _ in range(nargs):
            while j < len(s) and s[j] == " ":
                j += 1
            if j < len(s) and s[j] == "{":
                k = find_balanced(s, j, limit=400)
                if k < 0:
                    break
                j = k + 1
            elif j < len(s) and (s[j].isalnum()):
                j += 1
            else:
                break
        else:
            if m.start() < start and j >= end:
                return m.start(), j
    return None
