"""Held-out evaluation of a policy, per question, and paired comparisons between models.

The RL trainer's ``eval_*`` lines and ``scripts/compare_models.py`` both grade a
greedy answer and ``k`` samples per question with the grader. Comparing two
models on the *same* questions, the question-to-question spread (easy and hard
questions) cancels: the paired standard error of a difference is far smaller
than either model's own, which is what makes a few points on a few hundred
questions readable.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from mathjax import grader
from mathjax.grader import metrics as grader_metrics
from mathjax.grader.api import vote_key
from mathjax.sample import Sampler, SamplingRules


@dataclasses.dataclass
class QuestionResults:
    """Per-question outcomes of one model on one list of records (same order)."""

    ids: list[str]
    greedy: np.ndarray  # [Q] bool: the greedy answer is right
    hits: np.ndarray  # [Q, k] bool: sample j of question q is right (k may be 0)
    wrong_with_slip: int = 0  # wrong samples holding an arithmetic slip (grader.has_arithmetic_slip)
    wrong: int = 0  # wrong samples
    # [Q, k] int: each sample's answer group (0 = right, 1.. = one wrong answer up to equivalence keys,
    # -1 = no answer), as the report's maj@k reads it; None when not computed.
    clusters: np.ndarray | None = None

    @property
    def pass_ratio(self) -> np.ndarray:
        """[Q] share of right samples per question."""
        return self.hits.mean(axis=1) if self.hits.shape[1] else np.zeros(len(self.ids))

    @property
    def solved(self) -> np.ndarray:
        """[Q] some sample is right (Pass@k's per-question outcome)."""
        return self.hits.any(axis=1) if self.hits.shape[1] else np.zeros(len(self.ids), bool)

    @property
    def majority(self) -> np.ndarray:
        """[Q] maj@k per question: 1 when the right answer has the most votes among the k samples (a tie
        shares the credit, as the report's ``maj@k``); the ceiling sharpening the sampled distribution
        toward its mode can lift PassRatio to."""
        if self.clusters is None or not self.clusters.shape[1]:
            return np.zeros(len(self.ids))
        k = self.clusters.shape[1]
        return np.asarray([grader_metrics.maj_at_k(list(row), k) for row in self.clusters.tolist()])

    def summary(self) -> dict[str, float]:
        """The trainer's eval metrics: greedy accuracy, Pass@k and PassRatio at k, question count."""
        k = self.hits.shape[1]
        out = {"eval_greedy_accuracy": float(self.greedy.mean())}
        if k:
            out[f"eval_pass_at_{k}"] = float(self.solved.mean())
            out["eval_pass_ratio"] = float(self.pass_ratio.mean())
        out["eval_questions"] = len(self.ids)
        return out


def question_results(policy, tokenizer, records: Sequence[dict], template: str, max_new_tokens: int, k: int,
                     rules: SamplingRules, seed: int, batch_size: int, slips: bool = False,
                     votes: bool = False) -> QuestionResults:
    """A greedy answer and ``k`` samples under ``rules`` for each record (``question``, ``gold``), graded.

    ``slips``: also count the wrong samples that hold an arithmetic slip. ``votes``: also group each
    question's answers for majority voting (``clusters``, ``majority``).
    """
    from mathjax.data.templates import get_template

    tmpl = get_template(template)
    prompts = [tmpl.format_prompt(r["question"]) for r in records]
    ids = [r["id"] for r in records]
    greedy = Sampler(policy, tokenizer, SamplingRules(temperature=0.0), batch_size=batch_size,
                     max_new_tokens=max_new_tokens, stop=tmpl.stop).sample(prompts, 1, seed, ids)
    right = np.asarray([grader.grade(s[0].text, r["gold"]) for s, r in zip(greedy, records)], bool)
    hits = np.zeros((len(records), k), bool)
    clusters = np.zeros((len(records), k), np.int64) if votes else None
    wrong = with_slip = 0
    if k > 0:
        sampled = Sampler(policy, tokenizer, rules, batch_size=batch_size, max_new_tokens=max_new_tokens,
                          stop=tmpl.stop).sample(prompts, k, seed, ids)
        for q, (group, r) in enumerate(zip(sampled, records)):
            for j, s in enumerate(group):
                hits[q, j] = grader.grade(s.text, r["gold"])
                if slips and not hits[q, j]:
                    wrong += 1
                    with_slip += int(grader.has_arithmetic_slip(s.text))
            if votes:
                clusters[q] = answer_clusters([s.text for s in group], hits[q])
    return QuestionResults(ids=ids, greedy=right, hits=hits, wrong_with_slip=with_slip, wrong=wrong,
                           clusters=clusters)


def answer_clusters(texts: Sequence[str], right: Sequence[bool]) -> list[int]:
    """Each sample's answer group for majority voting: 0 for the right ones (graded against the gold),
    1, 2, ... for the wrong answers grouped as ``grader.majority_answer`` groups them (``vote_key``),
    -1 where no answer could be extracted."""
    groups: dict = {}
    out = []
    for text, ok in zip(texts, right):
        if ok:
            out.append(0)
            continue
        answer = grader.extract_answer(text)
        if answer is None or not answer.strip():
            out.append(-1)
            continue
        out.append(groups.setdefault(vote_key(answer), len(groups) + 1))
    return out


def paired_difference(treated: Sequence[float], control: Sequence[float]) -> tuple[float, float]:
    """``(mean, standard error)`` of ``treated - control`` over the same questions, in the units given."""
    a, b = np.asarray(treated, np.float64), np.asarray(control, np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired values need one per question in both: got shapes {a.shape} and {b.shape}")
    d = a - b
    n = len(d)
    if n < 2:
        raise ValueError("a paired standard error needs at least 2 questions")
    return float(d.mean()), float(d.std(ddof=1) / math.sqrt(n))
