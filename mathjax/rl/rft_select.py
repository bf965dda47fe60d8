"""Which sampled reasoning paths become RFT training data, and how many samples a question gets.

Rejection-sampling fine-tuning (Yuan et al. 2023, "Scaling Relationship on
Learning Mathematical Reasoning with Large Language Models") keeps the sampled
paths whose final answer is right, and of those only one per distinct list of
equations: two paths that compute the same things in other words teach the
model nothing new. DART-Math's difficulty-aware budget spends more samples on
the questions the model rarely solves.

Imports no JAX: this is grading-side code (it runs beside the grader's worker
pool, and the tests exercise it without a model).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence

from mathjax import grader
from mathjax.data import templates

# Per-sample outcomes, in the order they are checked (stats.json counts each).
KEPT = "kept"
NO_FINAL_LINE = "no_final_line"
NO_STEPS = "no_steps"
WRONG_ANSWER = "wrong_answer"
ARITHMETIC_SLIP = "arithmetic_slip"
DUPLICATE = "duplicate"
OUTCOMES = (KEPT, NO_FINAL_LINE, NO_STEPS, WRONG_ANSWER, ARITHMETIC_SLIP, DUPLICATE)

# The template's closing line ("The answer is: 72."); the colon is optional because
# models write both forms and the grader reads both.
_FINAL_LINE_RE = re.compile(r"\bthe answer is\b", re.I)
_WS_RE = re.compile(r"\s+")
_THOUSANDS_RE = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
# Spellings of the same operation, so "3 x 4 = 12" and "3*4=12" are one calculation.
_OPS = str.maketrans({"\u00d7": "*", "x": "*", "X": "*", "\u00f7": "/", "$": None})


def equation_signature(text: str) -> tuple[str, ...]:
    """The equations a text computes (``a op b = c``, in order), normalised: its calculation sequence.

    Uses the grader's arithmetic checker to find them (GSM8K calculator
    annotations ``<<...>>`` are ignored there). Whitespace, ``$`` and
    thousands commas are dropped and ``x``/``×``/``÷`` spelled ``*``/``/``, so
    only the calculation itself tells two paths apart, not their layout.
    """
    out = []
    for check in grader.check_arithmetic(text or ""):
        expr = _THOUSANDS_RE.sub("", _WS_RE.sub("", check.expression))
        out.append(expr.translate(_OPS))
    return tuple(out)


def final_response(text: str) -> str | None:
    """A sample cut right after its final-answer line (``The answer is: X.``), or None without one.

    What follows the closing line (a model rambling on, a check, a new turn) is
    not trained on: every kept example ends like the SFT data, with the line as
    the model wrote it.
    """
    if not isinstance(text, str):
        return None
    last = None
    for last in _FINAL_LINE_RE.finditer(text):
        pass
    if last is None:
        return None
    end = text.find("\n", last.end())
    return (text if end < 0 else text[:end]).strip()


def _has_steps(response: str) -> bool:
    """Whether anything but the final-answer line is there (a bare answer teaches guessing)."""
    last = None
    for last in _FINAL_LINE_RE.finditer(response):
        pass
    return last is not None and bool(response[: last.start()].strip())


def gold_answer(record: dict) -> str | None:
    """The gold final answer of an SFT record: ``final_answer`` when given, else the one in ``answer``.

    ``answer`` is a worked solution ending in a final-answer line (GSM8K
    ``#### 72``, ``The answer is: 72.``, a last ``\\boxed{}``) or a bare answer.
    """
    final = record.get("final_answer")
    if final is not None and str(final).strip():
        return str(final).strip()
    answer = record.get("answer")
    if not isinstance(answer, str) or not answer.strip():
        return None
    gold = grader.gold_from_solution(answer)
    if gold is None and "\n" not in answer.strip() and len(answer) <= 100:
        gold = answer.strip()  # a bare answer ("72")
    return gold


def reference_target(record: dict) -> str | None:
    """The record's own solution as an SFT target (steps then ``The answer is: X.``), or None if it has no steps.

    GSM8K's ``#### 72`` and MATH's last box become the template's final line,
    as the SFT trainer's presets do, so the gold example reads like the samples.
    """
    answer = record.get("answer")
    if not isinstance(answer, str) or not answer.strip():
        return None
    try:
        if "####" in answer:
            target = templates.gsm8k_to_target(answer)
        elif final_response(answer) is None and templates.last_boxed(answer) is not None:
            target = templates.math_to_target(answer)
        else:
            target = answer.strip()
    except ValueError:
        return None
    response = final_response(target)
    return response if response and _has_steps(response) else None


@dataclasses.dataclass
class Selection:
    """What happened to each sample of one question.

    Attributes:
      kept: the kept responses (cut after the final-answer line), in sample order.
      outcomes: per sample, one of :data:`OUTCOMES`.
      num_correct: samples whose final answer equals the gold (pass rate numerator).
    """

    kept: list[str]
    outcomes: list[str]
    num_correct: int

    def counts(self) -> dict[str, int]:
        return {o: self.outcomes.count(o) for o in OUTCOMES}


def sample_texts(samples: Sequence) -> list[str]:
    """Texts of the sampler's sample dicts (plain strings accepted too)."""
    return [(s.get("text") or "") if isinstance(s, dict) else (s if isinstance(s, str) else "") for s in samples]


def classify_paths(
    question_record: dict,
    samples: Sequence,
    gold: str | None,
    *,
    correct: Sequence[bool] | None = None,
    require_correct_arithmetic: bool = True,
    dedup_with_reference: bool = False,
) -> Selection:
    """Keeps the correct samples with a new equation sequence (see :func:`select_paths`)."""
    texts = sample_texts(samples)
    responses = [final_response(t) for t in texts]
    if correct is None:
        # One question at a time (tests, small runs); run_rft grades in bulk with the worker pool.
        correct = [r is not None and gold is not None and grader.grade(r, gold) for r in responses]
    if len(correct) != len(texts):
        raise ValueError(f"{len(correct)} grades for {len(texts)} samples")
    seen: set[tuple[str, ...]] = set()
    if dedup_with_reference:
        reference = reference_target(question_record)
        if reference is not None:
            # The gold solution is in the training data too: a sample that redoes its
            # calculations adds nothing (Yuan et al. deduplicate against the SFT set).
            seen.add(equation_signature(reference))
    kept, outcomes = [], []
    for response, ok in zip(responses, correct):
        if response is None:
            outcomes.append(NO_FINAL_LINE)
        elif not _has_steps(response):
            outcomes.append(NO_STEPS)
        elif not ok:
            outcomes.append(WRONG_ANSWER)
        elif require_correct_arithmetic and grader.has_arithmetic_slip(response, rounding=True):
            outcomes.append(ARITHMETIC_SLIP)
        elif (sig := equation_signature(response)) in seen:
            outcomes.append(DUPLICATE)
        else:
            seen.add(sig)
            kept.append(response)
            outcomes.append(KEPT)
    return Selection(kept, outcomes, sum(bool(c) for c in correct))


def select_paths(question_record: dict, samples: Sequence, gold: str | None, **kwargs) -> list[str]:
    """The RFT paths of one question: correct, arithmetic right, one per distinct equation sequence.

    Args:
      question_record: the input record (``question``, ``answer``); its own
        solution's equations count as seen with ``dedup_with_reference=True``.
      samples: the sampler's sample dicts (``text``) or plain strings, in order.
      gold: the gold final answer (:func:`gold_answer`).
      correct: per sample, whether its final response is right (from the
        grader's bulk API); None grades each here with ``grader.grade``.
      require_correct_arithmetic: drop a path with any wrong ``a op b = c``
        (a decimal rounded to its written places, ``10 / 3 = 3.33``, is not wrong).
      dedup_with_reference: see ``question_record``.

    Returns:
      The kept responses, each cut after its final-answer line; the first
      sample of each equation sequence wins.
    """
    return classify_paths(question_record, samples, gold, **kwargs).kept


def extra_samples(num_samples: int, num_kept: int, *, min_correct: int, max_samples: int, step: int) -> int:
    """How many more samples a question gets in the next pass of the difficulty budget.

    A question with ``num_kept >= min_correct`` distinct correct paths, or at
    the cap, gets none. Otherwise the estimate is what the observed rate of
    distinct correct paths per sample needs for the missing ones (half a path
    counted when none was found yet, so an unsolved question asks for
    ``2 * min_correct * num_samples``), rounded up to a multiple of ``step``
    (the per-pass sample count, which keeps the number of distinct pass sizes,
    one runner call each, small) and cut to the cap. So the lower a
    question's pass rate, the more samples it gets (DART-Math's idea).
    """
    if min(step, max_samples) < 1 or num_kept >= min_correct or num_samples >= max_samples:
        return 0
    rate = max(num_kept, 0.5) / max(num_samples, 1)
    want = math.ceil((min_correct - num_kept) / rate)
    want = step * math.ceil(want / step)
    return max(1, min(want, max_samples - num_samples))
