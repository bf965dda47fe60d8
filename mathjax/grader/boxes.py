"""``\\boxed{}`` handling shared by extraction (predictions) and the gold path.

A final answer is the last box, or several boxes at the end that are joined
like a list: ``\\boxed{2} and \\boxed{3}``, ``$\\boxed{a}$ \\quad \\text{and}
\\quad $\\boxed{b}$``, ``\\(\\boxed{1}\\), \\(\\boxed{2}\\)`` or "for part (a)
\\boxed{1} and for part (b) \\boxed{2}" give the list ``2, 3`` / ``a, b``...
A unit or noun (one or two words) or a part label may follow a box before the
joiner: "\\boxed{1} papers and \\boxed{2} bins", "\\boxed{a} for part (a) and
\\boxed{b}". Boxes separated by other words ("first \\boxed{3} then
\\boxed{4}", "\\boxed{3} is wrong and \\boxed{4}") are not joined: the last one
is the answer. Predictions (:mod:`extract`) and gold
strings (:func:`normalize.normalize_answer`, ``samples_io.gold_answer`` via
:func:`last_boxed`) use the same rule, so a gold with two boxes is not cut to
its last one.

Everything is a linear scan over a bounded window.
"""

from __future__ import annotations

import re

# Two boxes further apart than this are not one answer.
_MAX_GAP = 160
_MAX_BOXES = 16
_MAX_CONTENT = 1_000  # longer answers are refused anyway (normalize.MAX_ANSWER_CHARS)

_BOX_RE = re.compile(r"\\(?:boxed|fbox|framebox)\s*")


def find_balanced(s: str, start: int, limit: int = 20_000) -> int:
    """Index of the ``}`` closing the ``{`` at ``s[start]``, or -1 if unbalanced.

    Escaped braces (``\\{``, ``\\}``) are skipped so that set braces inside a
    ``\\boxed{}`` do not end it early. At most ``limit`` characters are scanned
    (an answer is never that long), which keeps callers linear on hostile input.
    """
    depth = 0
    i = start
    n = min(len(s), start + limit)
    while i < n:
        c = s[i]
        if c == "\\":
            i += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def boxed_at(s: str, pos: int) -> str | None:
    """Content of the box starting at ``s[pos]`` (``\\boxed{..}`` or ``\\boxed 5``)."""
    m = _BOX_RE.match(s, pos)
    if not m:
        return None
    j = m.end()
    if j < len(s) and s[j] == "{":
        end = find_balanced(s, j)
        return s[j + 1 : end] if end >= 0 else None
    if j > pos and s[j - 1] == " ":
        # "\boxed 5": TeX takes one token; we take up to the next space or "$".
        k = j
        while k < len(s) and s[k] not in " $\n":
            k += 1
        return s[j:k] if k > j else None
    return None


def rfind_box(s: str, end: int) -> int:
    """Start of the last box command before ``end`` (-1 if none)."""
    return max(s.rfind("\\boxed", 0, end), s.rfind("\\fbox", 0, end), s.rfind("\\framebox", 0, end))


def all_boxed_spans(s: str) -> list[tuple[int, int, str]]:
    """Every balanced ``\\boxed{}``/``\\fbox{}`` as (start, end, content), in order."""
    out = []
    for m in _BOX_RE.finditer(s):
        j = m.end()
        if j < len(s) and s[j] == "{":
            end = find_balanced(s, j)
            if end >= 0:
                out.append((m.start(), end + 1, s[j + 1 : end]))
    return out


# What may stand between two boxes of one answer, once LaTeX spacing, math
# delimiters and \text{} wrappers are gone: punctuation, "and"/"or", part
# labels ("for part (b)", "(ii)", "b)"), optionally "the answer is", and the
# next value's variable ("$x = \boxed{2}$ and $y = \boxed{3}$").
_GAP_NOISE_RE = re.compile(
    r"\\(?:quad|qquad|[,;:! ]|enspace|hspace\{[^{}]*\}|\(|\)|\[|\]|text|mbox|textbf|mathrm|textrm)"
    r"|[{}$*~]"
)
_LABEL = r"(?:\(\s*(?:[a-h]|[ivx]{1,4}|\d)\s*\)|\b(?:[a-h]|[ivx]{1,4}|\d)\))"
# Words that make the gap a sentence ("\boxed{3} then \boxed{4}"), never a unit.
_STOP = (r"(?:and|or|then|so|thus|hence|but|not|is|are|was|were|which|that|therefore|gives?|giving|yields?|"
         r"becomes?|equals?|from|to|into|minus|plus|times|over|of|if|else|otherwise|instead|after|before|when|"
         r"seems?|wrong|incorrect|correct|right|earlier|first|initially|actually|wait|no|yes|maybe|perhaps)\b")
# A unit or noun after a box, right before the joiner: "\boxed{1} papers and \boxed{2} bins".
_UNIT = r"(?:(?:(?!" + _STOP + r")[A-Za-z]{2,15}\s*){1,2}(?=,|\b(?:and|or)\b))"
_GAP_RE = re.compile(
    r"(?is)^[\s,;.]*"
    r"(?:(?:for\s+)?(?:part\s*)?" + _LABEL + r"[\s,;]*(?=,|\b(?:and|or)\b))?"  # "\boxed{3} for part (a) and"
    r"(?:" + _UNIT + r")?"
    r"(?:and|or)?[\s,;]*"
    r"(?:(?:and\s+)?(?:for\s+)?(?:part\s*)?" + _LABEL + r"[\s,:;]*(?:the\s+answer\s+is\s*:?)?[\s,;:]*)?"
    r"(?:[A-Za-z](?:_\w{1,3})?\s*=\s*)?$"
)
_LABEL_RE = re.compile(_LABEL)


def is_joiner(gap: str) -> bool:
    """Whether the text between two boxes joins them into one list answer."""
    if len(gap) > _MAX_GAP:
        return False
    g = _GAP_NOISE_RE.sub(" ", gap)
    if not _GAP_RE.match(g):
        return False
    # A sentence break or a new line only joins when it starts a new part label.
    if ("\n" in g or "." in g) and not _LABEL_RE.search(g):
        return False
    return True


def final_boxes(s: str, end: int | None = None) -> tuple[int, str] | None:
    """(start, answer) of the final boxed answer ending at or before ``end``.

    The answer is the last balanced box's content, or ``"a, b"`` when boxes
    before it are joined to it (see :func:`is_joiner`). ``start`` is where the
    first box used begins. ``None`` when there is no balanced box (a few
    unbalanced trailing boxes are skipped; never quadratic).
    """
    end = len(s) if end is None else end
    pos = rfind_box(s, end)
    tries = 0
    got = None
    while pos >= 0 and tries < 16:
        tries += 1
        got = boxed_at(s, pos)
        if got is not None:
            break
        pos = rfind_box(s, pos)
    if got is None or pos < 0:
        return None
    parts = [got]
    first = pos
    while len(parts) < _MAX_BOXES:
        prev = _previous_box(s, first)
        if prev is None or not prev[2].strip() or not is_joiner(s[prev[1] : first]):
            break
        parts.append(prev[2])
        first = prev[0]
    if len(parts) == 1:
        return first, got
    return first, ", ".join(reversed(parts))


def _previous_box(s: str, first: int) -> tuple[int, int, str] | None:
    """(start, end, content) of the balanced box closing nearest before ``first``.

    Only a bounded window is searched (a joined box ends within
    :data:`_MAX_GAP` of the next one and holds at most an answer's length), a
    few box starts at most, each brace scan stopping at ``first``.
    """
    lo = max(0, first - _MAX_GAP - _MAX_CONTENT)
    p = first
    for _ in range(8):
        p = max(s.rfind("\\boxed", lo, p), s.rfind("\\fbox", lo, p), s.rfind("\\framebox", lo, p))
        if p < 0:
            return None
        m = _BOX_RE.match(s, p)
        j = m.end() if m else first
        if j < first and s[j] == "{":
            e = find_balanced(s, j, limit=first - j)
            if 0 <= e < first:
                return p, e + 1, s[j + 1 : e]
    return None


def last_boxed(s: str) -> str | None:
    """The final boxed answer of ``s``: the last box, several joined boxes as a list.

    Kept under its old name for callers (``samples_io.gold_answer``); see
    :func:`final_boxes` for the joining rule.
    """
    got = final_boxes(s)
    return got[1] if got is not None else None
