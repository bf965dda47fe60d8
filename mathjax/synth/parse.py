"""Reading the generator's replies: the new question, the verdict, the worked answer.

Parsing is lenient where a generator commonly drops a marker (a reply that is
just the question) and strict where guessing would let bad data through (a
rejected question is never kept).
"""

from __future__ import annotations

import dataclasses
import re

from mathjax.data.templates import FINAL_ANSWER_PREFIX, final_answer_line

_NEW_Q = re.compile(r"(?im)^[ \t*#>]*new\s+(?:question|problem)\s*:\**[ \t]*")
_QUESTION = re.compile(r"(?im)^[ \t*#>]*(?:final\s+|revised\s+)?(?:question|problem)\s*:\**[ \t]*")
_VERDICT = re.compile(r"(?im)^[ \t*#>]*verdict\s*:\**\s*\**\s*(ok|revised|reject(?:ed)?)\b")
# A reply that goes on to solve its own question: the question ends where these begin.
_TAIL = re.compile(
    r"(?im)^[ \t*#>]*(?:solution|answer|verdict|explanation|note|step\s*1)\s*[:.]"
    r"|\bthe answer is\b|\\boxed|####"
)
MAX_QUESTION_CHARS = 4000


def _clean_question(text: str) -> str:
    text = text.strip().strip('"').strip()
    m = _TAIL.search(text)
    if m:
        text = text[: m.start()].rstrip()
    return text if len(text) <= MAX_QUESTION_CHARS else ""


def parse_new_question(reply: str) -> str:
    """The question of a stage (a) reply ("" when there is none).

    The text after the last ``New question:`` marker, or the whole reply when
    it has no marker; cut before any solution, answer or verdict that follows.
    """
    if not isinstance(reply, str):
        return ""
    last = None
    for last in _NEW_Q.finditer(reply):
        pass
    return _clean_question(reply[last.end():] if last else reply)


@dataclasses.dataclass(frozen=True)
class Verification:
    """A stage (b) reply: ``verdict`` is ``ok``, ``revised``, ``reject`` or ``unparsed``."""

    verdict: str
    question: str


def parse_verification(reply: str, draft: str) -> Verification:
    """The verdict and final question of a stage (b) reply.

    No ``Question:`` line means the draft stands (verdict ``ok``) or, without
    a verdict either, ``unparsed`` with the draft: the answer-agreement filter
    downstream is the real quality gate, and a verifier that only said "looks
    fine" should not cost the example. ``reject`` always wins.
    """
    if not isinstance(reply, str):
        return Verification("unparsed", draft)
    verdict = None
    for m in _VERDICT.finditer(reply):
        verdict = m.group(1).lower()
    if verdict and verdict.startswith("reject"):
        return Verification("reject", "")
    last = None
    for last in _QUESTION.finditer(reply):
        pass
    question = _clean_question(reply[last.end():]) if last else ""
    if not question:
        return Verification(verdict or "unparsed", draft)
    return Verification(verdict or ("ok" if _same(question, draft) else "revised"), question)


def _same(a: str, b: str) -> bool:
    return " ".join(a.split()).lower() == " ".join(b.split()).lower()


def solution_target(text: str, answer: str) -> str:
    """A sampled solution as an SFT target: its steps, then ``The answer is: <answer>.``

    Anything after the last final-answer phrase (a model rambling on, a
    hallucinated next turn) is cut, and the closing line is rewritten in the
    exact training format, so every kept example ends like the real data.
    Returns "" when no steps precede the final answer.
    """
    idx = text.rfind(FINAL_ANSWER_PREFIX.strip())
    steps = text[:idx] if idx >= 0 else text
    steps = steps.rstrip()
    if not steps.strip():
        return ""
    return f"{steps.strip()}\n{final_answer_line(answer)}"
