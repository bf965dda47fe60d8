"""Prompt templates of the three synthesis stages, one set per seed style.

Edit :data:`PROMPT_SETS` (or pass a JSON file to :func:`load_prompt_sets`) to
change what the generator is asked. Each set has three ``str.format``
templates, and the parsers in :mod:`mathjax.synth.parse` read the markers the
templates ask for, so keep those markers when editing:

``question``  (stage a) fields ``{seed_question}``, ``{seed_solution}``;
              the reply gives the new question after ``New question:``.
``verify``    (stage b) field ``{question}``; the reply has a line
              ``Verdict: OK|REVISED|REJECT`` and then ``Question: <final text>``.
``answer``    (stage c) field ``{question}``; the reply is a step-by-step
              solution ending with ``The answer is: <ANSWER>.``, the final line
              of every SFT target (:func:`mathjax.data.templates.final_answer_line`).

The ``answer`` wording equals the ``xwin_math`` training template's user turn,
so an HTTP generator is asked exactly what the fine-tuned model is asked; a
local mathjax model gets the training prompt itself (see
:class:`mathjax.synth.generators.LocalGenerator`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

_ANSWER = (
    "{question} Give your solution in detail. In the end, write your final answer in the format of "
    "'The answer is: <ANSWER>.'."
)

_VERIFY = (
    "Check the following math question. It must be self-contained, unambiguous, consistent, and have "
    "exactly one correct answer; it must not state or hint at its own answer.\n"
    "Question: {question}\n\n"
    "Reply with two parts. First a line 'Verdict: OK' if the question is fine as it is, 'Verdict: REVISED' "
    "if you fixed it, or 'Verdict: REJECT' if it cannot be fixed. Then, unless rejected, a line starting "
    "with 'Question:' followed by the final question (the original if OK, your fixed version if REVISED). "
    "Write nothing after the question."
)


@dataclasses.dataclass(frozen=True)
class PromptSet:
    """The three stage prompts for one style of seed (fields as in the module docstring)."""

    name: str
    question: str
    verify: str
    answer: str

    def format_question(self, seed_question: str, seed_solution: str) -> str:
        return self.question.format(seed_question=seed_question.strip(), seed_solution=seed_solution.strip())

    def format_verify(self, question: str) -> str:
        return self.verify.format(question=question.strip())

    def format_answer(self, question: str) -> str:
        return self.answer.format(question=question.strip())

    def fingerprint(self) -> str:
        """A short hash of the texts: a resumed run refuses to mix outputs of edited prompts."""
        blob = json.dumps(dataclasses.asdict(self), sort_keys=True).encode("utf-8")
        return hashlib.sha256(blob).hexdigest()[:12]


PROMPT_SETS: dict[str, PromptSet] = {
    "gsm8k": PromptSet(
        name="gsm8k",
        question=(
            "You are writing new grade-school math word problems. Here is an example problem and its "
            "solution.\nProblem: {seed_question}\nSolution: {seed_solution}\n\n"
            "Write one brand-new word problem inspired by the example: change the setting, the names and "
            "the numbers, and make it need two to eight steps of basic arithmetic. Its answer must be a "
            "single number. Do not include the solution or the answer. Reply with 'New question:' followed "
            "by the problem and nothing else."
        ),
        verify=_VERIFY,
        answer=_ANSWER,
    ),
    "math": PromptSet(
        name="math",
        question=(
            "You are writing new competition mathematics problems (algebra, counting and probability, "
            "geometry, number theory, precalculus, ...). Here is an example problem and its solution.\n"
            "Problem: {seed_question}\nSolution: {seed_solution}\n\n"
            "Write one brand-new problem of the same subject and similar difficulty: not a rewording of "
            "the example, but a different problem that needs related ideas. It must have a single exact "
            "final answer (a number, expression, interval or set); use LaTeX for mathematics. Do not "
            "include the solution or the answer. Reply with 'New question:' followed by the problem and "
            "nothing else."
        ),
        verify=_VERIFY,
        answer=_ANSWER,
    ),
}


def get_prompt_set(name: str, sets: dict[str, PromptSet] | None = None) -> PromptSet:
    """A prompt set by style name; unknown names list the known ones."""
    sets = PROMPT_SETS if sets is None else sets
    try:
        return sets[name]
    except KeyError:
        raise ValueError(f"unknown prompt style {name!r}; known: {sorted(sets)}") from None


def load_prompt_sets(path: str) -> dict[str, PromptSet]:
    """Prompt sets from a JSON file ``{"gsm8k": {"question": ..., "verify": ..., "answer": ...}, ...}``.

    Styles the file omits keep the built-in prompts; a style the file gives
    may omit stages, which then keep the built-in text of that style (or of
    ``gsm8k`` for a new style).
    """
    try:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}:{e.lineno}: invalid JSON: {e.msg}") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected an object mapping style -> prompts")
    sets = dict(PROMPT_SETS)
    for style, texts in raw.items():
        if not isinstance(texts, dict) or set(texts) - {"question", "verify", "answer"}:
            raise ValueError(f"{path}: style {style!r} must map some of question/verify/answer to strings")
        base = sets.get(style, PROMPT_SETS["gsm8k"])
        fields = {k: v for k, v in texts.items()}
        for stage, text in fields.items():
            if not isinstance(text, str):
                raise ValueError(f"{path}: {style}.{stage} must be a string")
        ps = dataclasses.replace(base, name=style, **fields)
        _check_fields(ps, path)
        sets[style] = ps
    return sets


def _check_fields(ps: PromptSet, source: str) -> None:
    """Formats each template once so a typo in a field name fails at load, not mid-run."""
    try:
        ps.format_question("q", "s")
        ps.format_verify("q")
        ps.format_answer("q")
    except (KeyError, IndexError, ValueError) as e:
        raise ValueError(f"{source}: prompt style {ps.name!r} has a bad template field: {e!r}") from None
