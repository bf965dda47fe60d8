"""Rewards for RL on math: the shared grader decides correctness (no JAX here).

A reward function takes ``(text, gold)`` and returns a float. ``correct`` is
the grader's verdict on the final answer (1 or 0); ``format`` is 1 when the
text states a final answer with an explicit marker (``The answer is``,
``\\boxed{}``, ``####``), not just a last number. ``combined_reward`` adds
them with weights; ``register`` adds project-specific ones.
"""

from __future__ import annotations

from collections.abc import Callable

from mathjax import grader

RewardFn = Callable[[str, str], float]


def correct(text: str, gold: str) -> float:
    """1.0 when the grader finds the text's final answer equal to ``gold``."""
    return 1.0 if grader.grade(text, gold) else 0.0


def answer_format(text: str, gold: str) -> float:
    """1.0 when an explicit final-answer marker is present (no last-number fallback)."""
    del gold
    return 1.0 if grader.extract_answer(text, fallback=None) is not None else 0.0


REWARDS: dict[str, RewardFn] = {"correct": correct, "format": answer_format}


def register(name: str, fn: RewardFn) -> None:
    """Makes ``fn`` usable as ``config.rl.rewards`` entry ``name``."""
    REWARDS[name] = fn


def parse_weights(spec: str) -> dict[str, float]:
    """``"correct:1,format:0.1"`` -> ``{"correct": 1.0, "format": 0.1}`` (names checked)."""
    weights = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, w = part.partition(":")
        if name not in REWARDS:
            raise ValueError(f"unknown reward {name!r} in {spec!r}; known: {sorted(REWARDS)}")
        weights[name] = float(w) if w else 1.0
    if not weights:
        raise ValueError("no reward given (e.g. config.rl.rewards='correct:1')")
    return weights


def combined_reward(text: str, gold: str, weights: dict[str, float]) -> tuple[float, dict[str, float]]:
    """Weighted sum of the named rewards, and each one's value."""
    parts = {name: REWARDS[name](text, gold) for name in weights}
    return sum(weights[n] * v for n, v in parts.items()), parts
