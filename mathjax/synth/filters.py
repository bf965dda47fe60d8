"""Per-example quality filters: malformed outputs, leaked answers, seed copies, answer agreement.

The agreement filter is the one the paper does not have: ``k`` answers are
sampled for every new question and the question is kept only when the
largest group of equivalent final answers (grouped by the grader, so ``1/2``
and ``0.5`` vote together) holds at least ``threshold`` of the ``k``. A
question the generator cannot answer consistently is usually ambiguous or
unsolvable; one it answers consistently gets the majority answer as its label.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

from mathjax import grader
from mathjax.synth.dedup import jaccard, shingles
from mathjax.synth.parse import solution_target

# Drop reasons, in the order they are checked (stats.json lists them all).
MALFORMED_QUESTION = "malformed_question"
VERIFIER_REJECTED = "verifier_rejected"
GENERATOR_ERROR = "generator_error"
SEED_DUPLICATE = "seed_duplicate"
NO_FINAL_ANSWER = "no_final_answer"
NO_SOLUTION_STEPS = "no_solution_steps"
ANSWER_IN_QUESTION = "answer_in_question"
LOW_AGREEMENT = "low_agreement"
NEAR_DUPLICATE = "near_duplicate"
CONTAMINATED = "contaminated"
DROP_REASONS = (
    MALFORMED_QUESTION, VERIFIER_REJECTED, GENERATOR_ERROR, SEED_DUPLICATE, NO_FINAL_ANSWER,
    ANSWER_IN_QUESTION, LOW_AGREEMENT, NO_SOLUTION_STEPS, NEAR_DUPLICATE, CONTAMINATED,
)

_NUMBER = re.compile(r"(?<![\w.])-?\d[\d,]*(?:\.\d+)?(?![\w])")
_SENTENCE_END = re.compile(r"[.!?](?:\s|$)")


@dataclasses.dataclass(frozen=True)
class FilterOptions:
    """Thresholds of the per-example filters.

    Attributes:
      agreement: keep a question when its majority answer has at least this
        fraction of the sampled answers (0 keeps any question with an answer).
      seed_similarity: word-shingle Jaccard similarity to the seed at or above
        which the new question counts as a copy of it.
      shingle_size: words per shingle for ``seed_similarity``.
    """

    agreement: float = 0.5
    seed_similarity: float = 0.8
    shingle_size: int = 3

    def __post_init__(self):
        if not 0.0 <= self.agreement <= 1.0:
            raise ValueError(f"agreement must be in [0, 1], got {self.agreement}")
        if not 0.0 < self.seed_similarity <= 1.0:
            raise ValueError(f"seed_similarity must be in (0, 1], got {self.seed_similarity}")


@dataclasses.dataclass
class Vote:
    """The answers of stage (c): extracted answers, the majority and its share."""

    answers: list[str | None]
    majority: str | None
    count: int
    agreement: float
    group: list[int]  # indices of the samples in the majority group, in sample order


def _key(answer: str):
    # The grouping majority_answer uses, so "the majority group" means the same thing here.
    try:
        return grader.answer_key(answer)
    except Exception:  # noqa: BLE001 - untrusted text; mirror majority_answer's fallback
        return ("raw", answer)


def vote(texts: Sequence[str]) -> Vote:
    """Extracts each sample's final answer and groups them by equivalence.

    Only an explicit final answer votes (a phrase, a box or ``####``): the
    grader's last-number fallback would let a solution that never concludes
    vote with whatever number it stopped at.
    """
    answers = [grader.extract_answer(t, fallback=None) if isinstance(t, str) else None for t in texts]
    majority, count = grader.majority_answer(answers)
    group = []
    if majority is not None:
        key = _key(majority)
        group = [i for i, a in enumerate(answers) if isinstance(a, str) and a.strip() and _key(a) == key]
    return Vote(answers, majority, count, count / len(texts) if texts else 0.0, group)


def is_seed_duplicate(question: str, seed_question: str, options: FilterOptions = FilterOptions()) -> bool:
    """Whether the new question is (nearly) the seed itself."""
    a, b = " ".join(question.lower().split()), " ".join(seed_question.lower().split())
    if a == b:
        return True
    return jaccard(shingles(question, options.shingle_size), shingles(seed_question, options.shingle_size)) >= (
        options.seed_similarity)


def answer_in_question(question: str, answer: str | None) -> bool:
    """Whether a question gives away its answer.

    True when the question itself carries a final-answer marker (``The answer
    is``, ``\\boxed{}``, ``####``: the generator leaked its solution), or when
    the asking sentence (the last one) states the majority answer as a number
    (``How many are left if 12 are left?``). A number that merely also occurs
    among the givens is not flagged: that is common and legitimate.
    """
    if grader.extract_answer(question, fallback=None) is not None:
        return True
    if answer is None:
        return False
    sentences = [s for s in _SENTENCE_END.split(question.strip()) if s.strip()]
    if not sentences:
        return False
    asking = sentences[-1]
    for m in _NUMBER.finditer(asking):
        if grader.is_equiv(m.group(0).replace(",", ""), answer):
            return True
    return False


@dataclasses.dataclass
class Checked:
    """The outcome of the per-example filters for one question."""

    reason: str | None  # None: kept
    vote: Vote | None = None
    target: str = ""  # the SFT answer (steps + final line) when kept
    chosen: int | None = None  # the sample the target was made from


def check_answers(question: str, seed_question: str, texts: Sequence[str],
                  options: FilterOptions = FilterOptions()) -> Checked:
    """Runs the filters that need the question and its sampled answers, in ``DROP_REASONS`` order."""
    if is_seed_duplicate(question, seed_question, options):
        return Checked(SEED_DUPLICATE)
    v = vote(texts)
    if v.majority is None:
        return Checked(NO_FINAL_ANSWER, v)
    if answer_in_question(question, v.majority):
        return Checked(ANSWER_IN_QUESTION, v)
    if v.agreement < options.agreement:
        return Checked(LOW_AGREEMENT, v)
    for i in v.group:  # the first majority sample that shows its work
        target = solution_target(texts[i], v.majority)
        if target:
            return Checked(None, v, target, i)
    return Checked(NO_SOLUTION_STEPS, v)
