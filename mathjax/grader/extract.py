"""Final-answer extraction from a full chain-of-thought.

Recognised, the one that occurs last in the text winning:

1. an answer phrase: ``The answer is: X`` / ``The answer is X`` (the
   Xwin-Math format), ``The final answer is X`` and Minerva's
   ``Final Answer: ...``, ``Answer: X`` (also ``Réponse:``, ``Respuesta:``,
   ``Antwort:``, ``答案``/``答案是``); when X holds a ``\\boxed{}``, its
   content;
2. the last balanced ``\\boxed{}`` / ``\\fbox{}`` (several boxes joined by
   "and", ",", ``\\quad``, part labels ... are returned as a list, see
   :mod:`boxes`);
3. GSM8K's ``#### X``.

If none is present (the configurable fallback), the last LaTeX math span
(:mod:`spans`; spans joined by "and"/","/"or" as a list) or the last number
(:mod:`prose_numbers`), whichever ends later. The text is first cut at a new
conversation turn (``USER:``, ``<|im_end|>``, ``<start_of_turn>`` ...) so a
hallucinated next exchange cannot supply the answer, and an answer phrase ends
at its sentence: later text ("I hope it is correct.", a check, a remark with
numbers) does not leak into it.

A final statement that denies a value in prose ("The answer is not 5.", "x is
not $5$", ``x \\neq 5`` outside maths) gives no answer (``None``), not that
value; a final math span that is a relation ``$x \\neq 5$`` is that relation
(which never equals 5). Lead-ins inside the answer ("Final Answer: The largest
$n$ is 34"), ``x \\approx`` and quotes are dropped, doubled backslashes before a
command name are read as single, and an option phrase ("The correct option is
(b)") gives the letter ``(B)``.

Everything is linear in the text length (``rfind`` and single-pass scans,
regular expressions without nested quantifiers), and only the last
:data:`TAIL_CHARS` characters are searched.
"""

from __future__ import annotations

import re

from mathjax.grader import spans
from mathjax.grader.boxes import boxed_at, final_boxes, find_balanced
from mathjax.grader.prose_numbers import last_number, negated_before

# The final answer is at the end; 64 KB is ~16k tokens of tail.
TAIL_CHARS = 65_536
_MAX_ANSWER = 1_000

_TURN_MARKERS = (
    "\nUSER:", "USER:", "\n### Instruction", "### Instruction:", "<|im_end|>", "<|im_start|>",
    "<|eot_id|>", "<|endoftext|>", "</s>", "<|end|>", "\nHuman:", "\n\nQuestion:",
    "<|start_header_id|>", "<|eom_id|>", "<start_of_turn>", "<end_of_turn>", "<|user|>", "<|assistant|>",
    "[INST]", "<\uff5cUser\uff5c>", "<\uff5cend\u2581of\u2581sentence\uff5c>", "\nUser:",
)
_PHRASE_RE = re.compile(
    r"\bthe\s+(?:final\s+|correct\s+|required\s+)?answer(?:\s+to\s+(?:the|this)\s+(?:question|problem))?"
    r"\s+(?:is|=)\s*:?"
    r"|\bfinal\s+answer\s*(?:is\b)?\s*:?"
    r"|\bthe\s+(?:correct|right|best)\s+(?:option|choice)\s+(?:is|=)\s*:?"
    r"|^[ \t*#>]*(?:answer|r\u00e9ponse|respuesta|antwort)\s*[:\uff1a]\**"
    r"|\u7b54\u6848\s*(?:\u662f|\u4e3a)?\s*[:\uff1a]?",  # 答案, 答案是, 答案为
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
# "not 5", "n't 5", "not equal to $5$": the statement denies a value.
_NEGATED_RE = re.compile(r"(?i)^(?:not|n['’]t)\s+(?:(?:equal\s+to|just|simply)\s+)?[-+$\\(\[{\d.]")
_NEGATED_BUT_RE = re.compile(r"(?i)^(?:not|n['’]t)\b.{1,200}?,?\s+but\s+(?:rather\s+|instead\s+)?(\S.*)$", re.S)
# "The largest $n$ is 34", "the number of ways is 12": the answer is after the verb.
_LEAD_IN_RE = re.compile(
    r"(?i)^(?P<head>[a-z][^=<>\n]{0,120}?)\s+(?:is|are|was|equals|would\s+be|will\s+be|must\s+be)"
    r"\s*:?\s+(?P<tail>\S.*)$",
    re.S,
)
_OPTION_RE = re.compile(r"(?i)^(option\s*|choice\s*)?(?:\\text\{\s*)?\(?([a-e])\)?(?:\s*\})?$")
_OPTION_WORD_RE = re.compile(r"(?i)\b(?:option|choice)\b")
# "Final Answer: $n$ is 34": a math name, then the value.
_MATH_LEAD_IN_RE = re.compile(r"^\$[^$\n]{1,40}\$\s+(?:is|are|was|equals)\s*:?\s+")
_LEAD_APPROX_RE = re.compile(r"^(?:\\approx(?![a-zA-Z])|\u2248|\\sim(?![a-zA-Z])|~)\s*")
_SENTENCE_END_RE = re.compile(r"[ \t*]*(?:[.!?;:](?:\s|$)|\n|$|I hope)")
_VARIABLE_RE = re.compile(r"^[A-Za-z](?:_\{?\w{1,3}\}?)?$")
# "x \approx 11", "h_1\approx 2.5": a named approximate value is the value.
_VAR_APPROX_RE = re.compile(r"^(?:[A-Za-z](?:_\{?\w{1,3}\}?)?\s*)?(?:\\approx(?![a-zA-Z])|\u2248)\s*")
# "12 is the answer", "5 is our final answer": the value is before the verb.
_TRAILING_IS_ANSWER_RE = re.compile(r"(?i)\s+is\s+(?:the|our|my)\s+(?:final\s+|correct\s+)?answer\W*$")
_TRAILING_NOT_RE = re.compile(r"(?i)(?:,|;|\s)\s*(?:and\s+|but\s+)?not\s+(?=[-+$\\(\d])")
_QUOTES = (('\\"', '\\"'), ('"', '"'), ("'", "'"), ("\u201c", "\u201d"), ("\u2018", "\u2019"), ("``", "''"))
_REASON_RE = re.compile(r"(?i),?\s+(?:because|since|as|which|where|so|given|for|when)\s")
_CJK_RE = re.compile("[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_ONLY_ANSWER_RE = re.compile(r"(?i)^(?:the\s+)?(?:final\s+)?answer\s*(?:is)?\s*:?\s*")


def _truncate_turns(text: str) -> str:
    cut = len(text)
    for m in _TURN_MARKERS:
        j = text.find(m)
        if 0 <= j < cut:
            cut = j
    return text[:cut]


def _span_until_sentence_end(s: str) -> str:
    """The answer after a phrase: a $...$ block, or up to the end of its sentence."""
    s = s.lstrip()
    if s.startswith("$") or s.startswith("\\(") or s.startswith("\\["):
        got = spans.joined_at(s, 0)
        if got is not None and not spans.is_prose(got[1][0]):  # "$5. She has $": currency signs
            # One span: its content; "$2$ and $3$": the spans, joined later by _clean.
            if len(got[1]) == 1 or not _SENTENCE_END_RE.match(s, got[0]):
                return got[1][0]  # one span; or a list that does not end the sentence: its first item
            return s[: got[0]]
        if got is None and s.startswith("$$"):
            j = s.find("$$", 2)
            return s[2:j] if j > 0 else s[2:]
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
            if c in "\u3002\uff01\uff1f":  # CJK full stop, exclamation and question marks
                break
        i += 1
    return s[:i]


def _unwrap_math(ans: str) -> str:
    """``$x$`` -> ``x``, ``$12$ and $13$`` -> ``12, 13``, ``$1,600`` (currency) -> ``1,600``."""
    if not ans.startswith("$") and not ans.startswith("\\(") and not ans.startswith("\\["):
        return ans
    whole = spans.whole_math(ans)
    if whole is not None:
        return whole
    if ans.startswith("$") and ans.endswith("$") and len(ans) > 1:
        return ans.strip("$").strip()
    if ans.startswith("$") and "$" not in ans[1:]:
        return ans[1:].strip()  # a currency sign, not a math delimiter
    return ans


def _unquote(ans: str) -> str:
    """``"blue"`` -> ``blue``: quotes around a whole answer are not part of it."""
    for a, b in _QUOTES:
        if len(ans) > len(a) + len(b) and ans.startswith(a) and ans.endswith(b):
            inner = ans[len(a) : -len(b)]
            if a not in inner and b not in inner:
                return inner.strip()
    return ans


def _strip_lead_in(ans: str) -> str:
    """``The largest $n$ is 34`` -> ``34``: a sentence naming the quantity, then its value.

    Only a short word-led head counts ("x = 3 is ..." or a formula is left
    alone), and the tail must be non-empty.
    """
    m = _LEAD_IN_RE.match(ans)
    if m is None or len(m.group("head").split()) > 16:
        return ans
    tail = m.group("tail").strip()
    return _strip_lead_in(tail) if tail else ans


def _clean(ans: str) -> str | None:
    ans = ans.strip()
    m = _REASON_RE.search(ans)
    if m and m.start() > 0:
        ans = ans[: m.start()]
    ans = ans.strip().strip("*").strip()
    ans = ans.rstrip(".;:!?, ").strip()
    ans = _unwrap_math(ans)
    ans = _unwrap_math(_unquote(ans).rstrip(".;:!?, ").strip())
    # "\approx 11", "≈ 11": the value is what follows the sign.
    ans = _LEAD_APPROX_RE.sub("", ans)
    ans = _TRAILING_IS_ANSWER_RE.sub("", ans)
    # "12, not 13": the denied alternative is not part of the answer.
    m = _TRAILING_NOT_RE.search(ans)
    if m and m.start() > 0:
        ans = ans[: m.start()].rstrip(" ,;")
    return ans or None


def _negated(ans: str) -> str | None:
    """For a denied value: what the sentence offers instead ("not 5, but 6"), else ""."""
    if not _NEGATED_RE.match(ans):
        return None
    m = _NEGATED_BUT_RE.match(ans)
    return (_clean(m.group(1)) or "") if m else ""


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
            got = boxed_at(rest, box.start())
            if got is not None:
                # "The answer is \boxed{2} and \boxed{3}": the joined boxes.
                fb = final_boxes(rest)
                if fb is not None and fb[0] == box.start():
                    got = fb[1]
                return got.strip() or None
    lead = _MATH_LEAD_IN_RE.match(rest)
    raw = _span_until_sentence_end(rest[lead.end() :] if lead else rest)
    if _NEGATED_RE.match(raw.lstrip()):
        # Keep "not 5, but 6" whole past the comma; _negated decides.
        return raw.strip()
    got = _clean(raw)
    if got is not None and not _NEGATED_RE.match(got):
        got = _strip_lead_in(got)
        got = _clean(got) if got else None
    return got


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
            denied = _negated(got) if got is not None else None
            if denied is not None:
                # "The answer is not 5.": the last word denies the value; no answer.
                return denied[: _MAX_ANSWER + 1] or None
            opt = _OPTION_RE.match(got) if got is not None else None
            if opt and (opt.group(1) or _OPTION_WORD_RE.search(m_phrase.group(0))):
                # "The correct option is (b)", "the answer is option c": the letter.
                return f"({opt.group(2).upper()})"
            if got is not None and (_ONLY_ANSWER_RE.fullmatch(got) or _NOT_ANSWERS.match(got)):
                got = None
            elif got is not None and 0 <= box_pos < pos and not _MATHY.search(got):
                got = None  # a word after a boxed result is commentary; the box decides
            elif got is not None and _CJK_RE.search(got):
                got = _fallback_answer(got)  # "答案：每份是 (\frac{2}{5}) 吨": the maths in the sentence
        elif kind == "boxed":
            fb = final_boxes(text)
            if fb is not None and negated_before(text, fb[0]):
                return None  # "x is not $\boxed{5}$"
            got = fb[1].strip() if fb is not None else None
        else:
            line = text[pos:].split("\n", 1)[0]
            got = _clean(_HASH_RE.sub("", line, count=1))
        if got:
            return _finish(got)
    if fallback == "last_number":
        return _finish(_fallback_answer(text))
    return None


def _fallback_answer(text: str) -> str | None:
    """No marker: the last math span or the last number, whichever ends later.

    A span denied in prose ("x is not $5$") gives no answer; a lone variable
    span after a number in the same sentence ("12 ways to choose $k$.") is a
    name, and the number is the answer.
    """
    num = last_number(text)
    span = spans.last_span(text)
    if span is None or (num is not None and num[0] > span[1]):
        return num[1] if num is not None else None
    start, _, ans = span
    if negated_before(text, start):
        return None
    if num is not None and num[1] is not None and _VARIABLE_RE.match(ans):
        cut = text.rfind(". ", max(0, start - 400), start)
        cut = max(cut, text.rfind("\n", max(0, start - 400), start))
        if max(cut, start - 400) < num[0] <= start:
            return num[1]  # the number is in the span's sentence
    return ans


def _finish(ans: str | None) -> str | None:
    """Common last touches: single backslashes, ``x \\approx 11`` -> ``11``."""
    if not ans:
        return None
    ans = spans.undouble(ans)
    m = _VAR_APPROX_RE.match(ans)
    if m and m.end() < len(ans):
        ans = ans[m.end() :]
    return ans[: _MAX_ANSWER + 1]


def gold_from_solution(solution: str) -> str | None:
    """The reference answer of a worked solution (MATH: last box; GSM8K: ``####``)."""
    if "####" in solution:
        return _clean(solution[solution.rfind("####") + 4 :].split("\n", 1)[0])
    got = extract_answer(solution, fallback=None)
    if got is None and isinstance(solution, str) and len(solution) <= 4 * _MAX_ANSWER:
        # A gold that is only maths: "$(p,q)=(3,2)$", "$21,16$ or $11$" (a list).
        got = _finish(spans.whole_math(solution))
    return got


__all__ = ["extract_answer", "gold_from_solution", "find_balanced"]
