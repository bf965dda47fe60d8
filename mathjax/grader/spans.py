"""LaTeX math spans in prose: ``$...$``, ``$$...$$``, ``\\(...\\)``, ``\\[...\\]``.

Used by extraction (:mod:`extract`) when an output has no final-answer
marker: the last math span is then the answer, unless a plain number is
written after it (the rightmost item wins, as in Math-Verify). Spans joined by
"," / "and" / "or" (``$2$, $3$ and $5$``) form one list answer ``2, 3, 5``.

A span is found by one left-to-right pass over delimiter tokens (a regular
expression without nested quantifiers): ``\\$`` is a dollar sign, ``\\\\`` a
TeX row break (so ``\\\\[2pt]`` opens nothing), and a blank line ends any open
span (TeX forbids blank lines in math; an unmatched ``$`` before one was a
currency sign). A "span" whose content reads as English prose (three plain
words in a row, or two with one of 3+ letters, outside ``\\text{}``; or a
question mark) is two currency signs, not maths.

Double-escaped LaTeX (``\\\\frac{1}{2}``, a JSON string escaped twice) is read
with single backslashes when the doubled backslash is directly followed by a
known command name (:func:`undouble`); a real row break is followed by a
space, a digit, a newline or a variable, never by ``frac``.
"""

from __future__ import annotations

import collections
import re

from mathjax.grader.boxes import find_balanced

# Delimiter tokens, longest first at each position.
_TOKEN_RE = re.compile(r"\\\\|\\\$|\$\$|\$|\\\(|\\\)|\\\[|\\\]|\n[ \t]*\n")
_OPEN = {"$$": "$$", "$": "$", "\\(": "\\)", "\\[": "\\]"}
# Only this much text before the end is scanned (starting at a blank line, an exact reset point).
SPAN_WINDOW = 8192
_NEXT_OPEN_RE = re.compile(r"(?<!\\)\$|\\\(|\\\[")
_KEEP_SPANS = 64  # the last spans kept while scanning for the answer
_MAX_JOINED = 16  # items of one joined list
_MAX_TRIM = 4000  # a longer span is no answer (refused later as oversize): not trimmed

_TEXT_CMD_RE = re.compile(r"\\(?:text\w*|mathrm|mbox|operatorname|textbf)\s*\{[^{}]*\}")
_PROSE_RE = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{2,}[ \t]+[A-Za-z]{2,}[ \t]+[A-Za-z]{2,}(?![A-Za-z])")
# Between two spans of one list answer: commas, "and", "or" (also in \text{}), spacing.
_JOINER_RE = re.compile(
    r"(?i)^\s*(?:[,;]\s*(?:(?:\\text\{\s*)?(?:and|or)\b(?:\s*\})?)?|(?:\\text\{\s*)?(?:and|or)\b(?:\s*\})?)\s*$"
)
_SPACING = ("\\qquad", "\\quad", "\\,", "\\;", "\\:", "\\!", "\\ ", "~")
_NEGATED_SPAN_RE = re.compile(r"^(?:\\neq?(?![a-zA-Z])|\\not\s*=|!=|\u2260)")

_COMMANDS = (
    "frac|dfrac|tfrac|cfrac|sqrt|left|right|pi|cdot|times|div|infty|leq?|geq?|neq?|lt|gt|in|notin|cup|cap|"
    "setminus|text|textbf|mathrm|mathbf|mathbb|operatorname|boxed|fbox|begin|end|sin|cos|tan|cot|sec|csc|"
    "arcsin|arccos|arctan|log|ln|exp|alpha|beta|gamma|delta|theta|lambda|mu|sigma|omega|phi|pm|mp|circ|"
    "approx|sum|prod|int|dots|ldots|cdots|overline|vec|hat|emptyset|varnothing|binom|dbinom|angle|"
    "triangle|quad|qquad|mid|equiv|pmod|bmod|mod|degree|sim"
)
_DOUBLED_RE = re.compile(r"(?<!\\)\\\\(?=(?:" + _COMMANDS + r")(?![a-zA-Z]))")


def undouble(s: str) -> str:
    """``\\\\frac{1}{2}`` -> ``\\frac{1}{2}``: a doubled backslash before a command name."""
    return _DOUBLED_RE.sub(r"\\", s) if "\\\\" in s else s


def iter_spans(s: str, lo: int = 0, hi: int | None = None):
    """Yield ``(start, end, content)`` of each math span of ``s[lo:hi]``, in order."""
    hi = len(s) if hi is None else hi
    close = None
    start = cstart = 0
    for m in _TOKEN_RE.finditer(s, lo, hi):
        tok = m.group()
        if tok[0] == "\n":
            close = None  # a blank line ends any open span
            continue
        if close is None:
            if tok in _OPEN:
                close, start, cstart = _OPEN[tok], m.start(), m.end()
            continue
        if tok == close:
            yield start, m.end(), s[cstart : m.start()]
            close = None
        elif close == "$" and tok == "$$":
            # "$a$$b$": the first "$" closes, the second opens the next inline span.
            yield start, m.start() + 1, s[cstart : m.start()]
            start, cstart = m.start() + 1, m.end()


def span_at(s: str, pos: int, limit: int = 4000) -> tuple[int, str] | None:
    """``(end, content)`` of the math span that opens exactly at ``s[pos]``."""
    for start, end, content in iter_spans(s, pos, min(len(s), pos + limit)):
        return (end, content) if start == pos else None
    return None


def is_span_joiner(gap: str) -> bool:
    """Whether the text between two spans joins them into one list answer."""
    return len(gap) <= 40 and bool(_JOINER_RE.match(gap))


_REL_RE = re.compile(r"[<>]|\\(?:[lg]eq?|[lg]t|neq?|in|notin|subset\w*)(?![a-zA-Z])|\u2264|\u2265|\u2260")


def _shape(content: str) -> str:
    """``"rel"`` (an inequality or membership), ``"eq"`` (an equation) or ``"val"``."""
    if _REL_RE.search(content):
        return "rel"
    return "eq" if "=" in content else "val"


def same_shape(a: str, b: str) -> bool:
    """Whether two spans can be items of one list (``$2$ and $3$``, ``$x=1$, $y=2$``; not ``$5$, and $5>3$``)."""
    return _shape(a) == _shape(b)


# Two words in a row ("just about"): prose when one has 3+ letters and neither is a maths word.
_TWO_WORDS_RE = re.compile(r"(?<![\\A-Za-z])([A-Za-z]{2,})[ \t]+(?=([A-Za-z]{2,})(?![A-Za-z]))")
_MATH_WORDS = frozenset(
    "sin cos tan sec csc cot arcsin arccos arctan sinh cosh tanh exp ln log lg sqrt abs arg re im sgn "
    "det gcd lcm max min mod bmod pmod lim inf sup and or dx dy dz dt du dv cm mm km kg ft mi mph hr min "
    "sec sq cu in inch inches am pm pi".split()
)


def is_prose(content: str) -> bool:
    """Whether a "span" is English text (two currency signs), not maths.

    Three plain words in a row, two words of which one has 3+ letters (``just
    about``; maths words such as ``mod``, ``sin``, ``dx`` do not count), or a
    question mark (never maths) outside ``\\text{}``.
    """
    c = _TEXT_CMD_RE.sub(" ", content)
    if "?" in c or _PROSE_RE.search(c):
        return True
    for m in _TWO_WORDS_RE.finditer(c):
        a, b = m.group(1).lower(), m.group(2).lower()
        if max(len(a), len(b)) >= 3 and a not in _MATH_WORDS and b not in _MATH_WORDS:
            return True
    return False


def clean_span(content: str) -> str | None:
    """A span's content as an answer: spacing and end punctuation dropped, ``{a, b}`` grouping undone.

    ``None`` for an empty span and for one that denies a value (``$\\neq 5$``).
    """
    c = undouble(content)
    if len(c) > _MAX_TRIM:
        return c
    c = _trim(c)
    if len(c) >= 2 and c[0] == "{" and c[-1] == "}" and find_balanced(c, 0) == len(c) - 1:
        c = c[1:-1].strip()  # "${2, 3}$": TeX grouping braces are invisible
    if not c or _NEGATED_SPAN_RE.match(c):
        return None
    return c


def _trim(c: str) -> str:
    """Spacing commands, blanks and end punctuation off both ends (each round removes something)."""
    while True:
        before = len(c)
        c = c.strip()
        for tok in _SPACING:
            if c.startswith(tok):
                c = c[len(tok) :]
            if c.endswith(tok) and not c.endswith("\\" + tok):
                c = c[: -len(tok)]
        cut = c.rstrip(".,;:")
        if cut.endswith("\\") and not cut.endswith("\\\\"):
            cut = c[: len(cut) + 1]  # "\\," is a space: keep it for the next round
        c = cut
        if len(c) == before:
            return c


def joined_at(s: str, pos: int) -> tuple[int, list[str]] | None:
    """The span at ``s[pos]`` and the spans joined after it: ``(end, contents)``.

    ``$2$ and $3$.`` at 0 gives ``(11, ["2", "3"])``. Empty or prose spans end the list.
    """
    first = span_at(s, pos)
    if first is None:
        return None
    end, content = first
    parts = [content]
    while len(parts) < _MAX_JOINED:
        nxt_open = _NEXT_OPEN_RE.search(s, end, min(len(s), end + 41))
        if nxt_open is None or not is_span_joiner(s[end : nxt_open.start()]):
            break
        k = nxt_open.start()
        nxt = span_at(s, k)
        if nxt is None or not nxt[1].strip() or is_prose(nxt[1]) or not same_shape(parts[0], nxt[1]):
            break
        end, content = nxt
        parts.append(content)
    return end, parts


def join_contents(parts: list[str]) -> str | None:
    """Cleaned span contents as one answer (``"2, 3"`` for a list); ``None`` if one is unusable."""
    cleaned = [clean_span(p) for p in parts]
    if not cleaned or any(c is None for c in cleaned):
        return None
    return ", ".join(cleaned)


def whole_math(s: str) -> str | None:
    """The answer when ``s`` is nothing but math spans (and joiners): ``$21,16$ or $11$`` -> ``21,16, 11``."""
    s = s.strip().rstrip(".")
    if not s or s[0] not in "$\\":
        return None
    got = joined_at(s, 0)
    if got is None or s[got[0] :].strip(" \t\n.,;"):
        return None
    if any(is_prose(p) for p in got[1]):
        return None
    return join_contents(got[1])


def last_span(text: str) -> tuple[int, int, str] | None:
    """``(start, end, answer)`` of the last usable math span, joined with the spans before it.

    Only the last :data:`SPAN_WINDOW` characters are scanned, from a blank line
    (where no span can be open) when there is one.
    """
    lo = 0
    if len(text) > SPAN_WINDOW:
        lo = text.rfind("\n\n", 0, len(text) - SPAN_WINDOW)
        lo = 0 if lo < 0 else lo
    spans = list(collections.deque(iter_spans(text, lo), maxlen=_KEEP_SPANS))
    i = len(spans) - 1
    while i >= 0 and (not spans[i][2].strip() or is_prose(spans[i][2])):
        i -= 1
    if i < 0:
        return None
    end = spans[i][1]
    parts = [spans[i][2]]
    while i > 0 and len(parts) < _MAX_JOINED:
        prev = spans[i - 1]
        if (not prev[2].strip() or is_prose(prev[2]) or not same_shape(prev[2], parts[0])
                or not is_span_joiner(text[prev[1] : spans[i][0]])):
            break
        parts.append(prev[2])
        i -= 1
    got = join_contents(list(reversed(parts)))
    return (spans[i][0], end, got) if got is not None else None
