"""Process supervision from the grader's arithmetic check: a verified reward per written step.

The outcome reward says only whether the final answer is right; a wrong sample's
every token is pushed down alike, though most of its steps were right. Here each
``a op b = c`` a sample writes is a step, checked exactly by
:func:`mathjax.grader.arithmetic.check_arithmetic` (a calculator, not a learned
reward model), and its verdict is credited to the tokens up to it, as
DeepSeekMath's GRPO with process supervision (Shao et al. 2024, sec. 4.1.3):

* step rewards ``r = 1`` (right) or ``0`` (wrong) are normalised over all steps
  of the prompt's group: ``r~ = (r - mean) / (std + eps)`` (0 when all agree);
* a response token's process advantage is the sum of ``r~`` over the steps of its
  sample that end at or after it (a token earns what follows from it);
* the trainer adds ``process_coef`` x that to the outcome advantage (GRPO's
  group-normalised final-answer reward), token by token.

Steps are located in the sample's token ids by decoding prefixes (any
tokenizer), by bisection: ``O(steps x log(tokens))`` decodes per sample.
A step whose text the checker rewrote first (LaTeX fractions, calculator
annotations) and so cannot be found verbatim gets no process credit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from mathjax.grader.arithmetic import check_arithmetic


def locate_steps(text: str) -> list[tuple[int, int, bool]]:
    """``(start, end, ok)`` character spans of the checkable equations of ``text``, in order."""
    out = []
    pos = 0
    for check in check_arithmetic(text):
        start = text.find(check.expression, pos)
        if start < 0:
            continue  # rewritten by the checker (LaTeX, <<calc>>): no span to credit
        end = start + len(check.expression)
        out.append((start, end, bool(check.ok)))
        pos = end
    return out


def token_ends(decode: Callable[[Sequence[int]], str], ids: Sequence[int], char_ends: Sequence[int]) -> list[int]:
    """For each character offset, the number of leading tokens whose decoding reaches it.

    ``decode(ids[:k])`` is taken to be a prefix of ``decode(ids)`` (true of
    SentencePiece and byte-level BPE away from split UTF-8 characters); each
    answer is the smallest ``k`` with ``len(decode(ids[:k])) >= offset``.
    """
    out = []
    lo_floor = 0
    for c in char_ends:
        lo, hi = lo_floor, len(ids)
        while lo < hi:
            mid = (lo + hi) // 2
            if len(decode(ids[:mid])) >= c:
                hi = mid
            else:
                lo = mid + 1
        out.append(lo)
        lo_floor = lo  # offsets are increasing
    return out


def sample_steps(text: str, ids: Sequence[int], decode: Callable[[Sequence[int]], str]) -> list[tuple[int, bool]]:
    """``(end_token, ok)`` per located step of one sample: the step's last token is ``end_token - 1``."""
    spans = locate_steps(text)
    if not spans:
        return []
    ends = token_ends(decode, ids, [e for _, e, _ in spans])
    return [(max(1, min(k, len(ids))), ok) for k, (_, _, ok) in zip(ends, spans)]


def process_advantages(steps: Sequence[Sequence[tuple[int, bool]]], lengths: Sequence[int], group_size: int,
                       eps: float = 1e-6) -> list[np.ndarray]:
    """Per sample, ``[length]`` float32 process advantages of its response tokens (module docstring).

    ``steps[i]``: sample ``i``'s ``(end_token, ok)``; samples come in groups of
    ``group_size`` consecutive ones (one prompt each).
    """
    if len(steps) % group_size or len(steps) != len(lengths):
        raise ValueError(f"{len(steps)} samples / {len(lengths)} lengths do not form groups of {group_size}")
    out = []
    for g in range(0, len(steps), group_size):
        group = steps[g : g + group_size]
        rewards = np.asarray([float(ok) for sample in group for _, ok in sample], np.float64)
        if rewards.size >= 2:
            mean, std = rewards.mean(), rewards.std(ddof=1)
        else:
            mean, std = (rewards.mean() if rewards.size else 0.0), 0.0
        for i, sample in enumerate(group):
            adv = np.zeros(int(lengths[g + i]), np.float64)
            for end, ok in sample:
                r = (float(ok) - mean) / (std + eps) if std > 0 else 0.0
                adv[: min(end, adv.size)] += r  # every token up to the step's end earns the step
            out.append(adv.astype(np.float32))
    return out
