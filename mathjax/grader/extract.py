"""Final-answer extraction from a full chain-of-thought.

Recognised, the one that occurs last in the text winning:

1. an answer phrase: ``The answer is: X`` / ``The answer is X`` (the
   Xwin-Math format), ``The final answer is X`` and Minerva's
   ``Final Answer: ...``, ``Answer: X``; when X holds a ``\\boxed{}``, its
   content;
2. the last balanced ``\\boxed{}`` / ``\\fbox{}`` (several boxes on the final
   line joined by "and"/"," are returned as a list);
3. GSM8K's ``#### X``.

If none is present, the last number in the text (configurable). The text is
first cut at a new conversation turn (``USER:``, ``<|im_end|>``, ...) so a
hallucinated next exchange cannot supply the answer, and an answer phrase ends
at its sentence: later text ("I hope it is correct.", a check, a remark with
numbers) does not leak into it.

Everything is linear in the text length (``rfind`` and single-pass scans,
regular expressions without nested quantifiers), and only the last
:data:`TAIL_CHARS` characters are searched.
"""

from __future__ import annotations

import re

from mathjax.grader.normalize import _boxed_at, all_boxed_spans, find_balanced

# The final answer is at the end; 64 KB is ~16k tokens of tail.
TAIL_CHARS = 65_536
_MAX_ANSWER = 1_000

_TURN_MARKERS = (
    "\nUSER:", "USER:", "\n### Instruction", "### Instruction:", "<|im_end|>", "<|im_start|>",
    "<|eot_id|>", "<|endoftext|>", "</s>", "<|end|>", "\nHuman:", "\n\nQuestion:",
)
_PHRASE_RE = re.compile(
    r"\bthe\s+(?:final\s+|correct\s+|required\s+)?answer(?:\s+to\s+(?:the|this)\s+(?:question|problem))?"
    r"\s+(?:is|=)\s*:?"
    r"|\bfinal\s+answer\s*(?:is\b)?\s*:?"
    r"|^[ \t*#>]*answer\s*:\**",
    re.I | re.M,
)
# "our answer is correct", "the final answer is positive, because ...": a phrase
# followed by one of these is talk about the answer, not the answer.
_NOT_ANSWERS = re.compile(
    r"(?i)^(?:correct|incorrect|wrong|right|valid|invalid|reasonable|consistent|confirmed|verified|"
    r"indeed|not\b|as follows|below|above|given\b|obtained|found|that\b|this\b|to\b|in\b|of\b|"
    r"positive|negative|an? \w+ (?:number|integer))"
)
_MATHY = re.compile(r"[\d\\$^_=<>()\[\]{}+*/|]")
_BOX_MARK_RE = re.compile(r"\\(?:boxed|fbox|framebox)\b")
_HASH_RE = re.compile(r"####\s*")
_NUMBER_RE = re.compile(
    r"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s*/\s*\d+(?![\d.]))?|\\frac\{-?\d+\}\{\d+\}"
)
_JOINER_RE = re.compile(r"^[\s$,;]*(?:and|or|,|;|\\text\{\s*(?:and|or)\s*\})?[\s$,;]*$", re.I)
_REASON_RE = re.compile(r"(?i),?\s+(?:because|since|as|which|where|so|given|for|when)\s")
_ONLY_ANSWER_RE = re.compile(r"(?i)^(?:the\s+)?(?:final\s+)?answer\s*(?:is)?\s*:?\s*")


def _truncate_turns(text: str) -> str:
    cut = len(text)
    for m in _TURN_MARKERS:
        j = text.find(m)
        if 0 <= j < cut:
            cut = j
    return text[:cut]


def _closing_dollar(s: str, start: int) -> int:
    """Index of the next unescaped ``$`` (``\\$`` is a dollar sign, not a delimiter)."""
    j = s.find("$", start)
    while j > 0 and s[j - 1] == "\\":
        j = s.find("$", j + 1)
    return j


def _span_until_sentence_end(s: str) -> str:
    """The answer after a phrase: a $...$ block, or up to the end of its sentence."""
    s = s.lstrip()
    if s.startswith("$$"):
        j = s.find("$$", 2)
        return s[2:j] if j > 0 else s[2:]
    if s.startswith("$"):
        j = _closing_dollar(s, 1)
        if j > 0:
            return s[1:j]
    if s.startswith("\\(") or s.startswith("\\["):
        close = "\\)" if s[1] == "(" else "\\]"
        j = s.find(close, 2)
        if j > 0:
            return s[2:j]
    depth = 0
    n = min(len(s), _MAX_ANSWER + 1)
    i = 0
    while i < n:
        c = s[i]
        if c == "\\" and i + 1 < n and s[i + 1] in "{}$":
            i += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth = max(depth - 1, 0)
        elif depth == 0:
            if c == "\n":
                break
            if c in ".!?" and (i + 1 >= len(s) or s[i + 1] in " \n\t*)$"):
                # A decimal point has a digit right after it; a full stop does not.
                break
        i += 1
    return s[:i]


def _clean(ans: str) -> str | None:
    ans = ans.strip()
    m = _REASON_RE.search(ans)
    if m and m.start() > 0:
        ans = ans[: m.start()]
    ans = ans.strip().strip("*").strip()
    ans = ans.rstrip(".;:!?, ").strip()
    if ans.startswith("$") and ans.endswith("$") and len(ans) > 1:
        ans = ans.strip("$").strip()
    elif ans.startswith("$") and "$" not in ans[1:]:
        ans = ans[1:].strip()  # a currency sign, not a math delimiter
    return ans or None


def _phrase_answer(text: str, start: int) -> str | None:
    rest = text[start : start + 4 * _MAX_ANSWER].lstrip()  # "The answer is:\n\n$$...$$"
    line_end = rest.find("\n\n")
    if line_end >= 0:
        rest = rest[:line_end]
    box = _BOX_MARK_RE.search(rest)
    if box is not None:
        first_stop = _span_until_sentence_end(rest)
        # Use the box if it is part of this answer sentence (or the sentence is empty).
        if box.start() <= len(first_stop) + 2 or not first_stop.strip():
            got = _boxed_at(rest, box.start())
            if got is not None:
                return got.strip() or None
    return _clean(_span_until_sentence_end(rest))


def _boxed_answer(text: str, pos: int) -> str | None:
    got = _boxed_at(text, pos)
    if got is None:
        return None
    # Several boxes on the final line ("$\boxed{2}$ and $\boxed{3}$") form a list.
    line_start = text.rfind("\n", 0, pos) + 1
    line = text[line_start : pos + len(got) + 16 + 8]
    if line.count("\\boxed") + line.count("\\fbox") > 1 and len(line) < 4 * _MAX_ANSWER:
        spans = all_boxed_spans(line)
        if len(spans) > 1:
            for (_, e1, _), (s2, _, _) in zip(spans, spans[1:]):
                if not _JOINER_RE.match(line[e1:s2]):
                    return got
            return ", ".join(c for _, _, c in spans)
    return got


def _last_number(text: str) -> str | None:
    tail = text[-4096:]
    last = None
    for m in _NUMBER_RE.finditer(tail):
        last = m
    return last.group(0).replace(" ", "") if last else None


def extract_answer(text: str, *, fallback: str | None = "last_number") -> str | None:
    """The final answer in a model output, or ``None`` if there is none.

    Args:
      text: a full generation (chain-of-thought and final answer).
      fallback: ``"last_number"`` to return the last number when no explicit
        final-answer marker is present; ``None`` to return ``None`` then.

    Returns:
      The answer string as written (LaTeX kept, outer ``$`` removed); compare it
      with :func:`mathjax.grader.is_equiv`.
    """
    if not isinstance(text, str) or not text:
        return None
    if len(text) > TAIL_CHARS:
        text = text[-TAIL_CHARS:]
    text = _truncate_turns(text)
    candidates: list[tuple[int, str]] = []
    m_phrase = None
    for m in _PHRASE_RE.finditer(text):
        m_phrase = m
    if m_phrase is not None:
        candidates.append((m_phrase.start(), "phrase"))
    box_pos = max(text.rfind("\\boxed"), text.rfind("\\fbox"), text.rfind("\\framebox"))
    if box_pos >= 0:
        candidates.append((box_pos, "boxed"))
    hash_pos = text.rfind("####")
    if hash_pos >= 0:
        candidates.append((hash_pos, "hash"))
    # Latest marker first; an unusable one falls through to the next.
    for pos, kind in sorted(candidates, reverse=True):
        if kind == "phrase":
            got = _phrase_answer(text, m_phrase.end())
            if got is not None and (_ONLY_ANSWER_RE.fullmatch(got) or _NOT_ANSWERS.match(got)):
                got = None
            elif got is not None and 0 <= box_pos < pos and not _MATHY.search(got):
                got = None  # a word after a boxed result is commentary; the box decides
        elif kind == "boxed":
            got = None
            p = pos
            for _ in range(16):  # skip a few unbalanced trailing boxes
                got = _boxed_answer(text, p)
                if got is not None or p <= 0:
                    break
                p = max(text.rfind("\\boxed", 0, p), text.rfind("\\fbox", 0, p))
                if p < 0:
                    break
            got = got.strip() if got else None
        else:
            line = text[pos:].split("\n", 1)[0]
            got = _clean(_HASH_RE.sub("", line, count=1))
        if got:
            return got[: _MAX_ANSWER + 1]
    if fallback == "last_number":
        return _last_number(text)
    return None


def gold_from_solution(solution: str) -> str | None:
    """The reference answer of a worked solution (MATH: last box; GSM8K: ``####``)."""
    if "####" in solution:
        return _clean(solution[solution.rfind("####") + 4 :].split("\n", 1)[0])
    return extract_answer(solution, fallback=None)


__all__ = ["extract_answer", "gold_from_solution", "find_balanced"]
