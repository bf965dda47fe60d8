"""The pretraining corpus of the demo's miniature "common base model".

The paper's finding is about base models that already hold the capability
(LLaMA-2 read a lot of arithmetic and worked examples in pretraining) and a
small SFT that only teaches the answer format. The demo's stand-in for that
pretraining is this procedural corpus, with no question/answer format in it:

* ``story`` documents: a training-split procedural problem told as prose, its
  facts and then its worked steps (``He bakes 8 * 20 = 160 cookies.``), with
  the question sentence kept in half of them and never a final-answer line
  (``The answer is: ...`` only comes with SFT);
* ``arithmetic`` documents: lists of exact facts ``a op b = c`` over the ranges
  the stories use (small operands, sums and differences up to ``max_value``,
  products of a small and a larger number, exact divisions).

Held-out problems stay held out: stories come from the ``train`` split only,
whose equation chains never occur in the ``test`` split (see
:mod:`mathjax.data.procedural`), and from at most ``max_steps`` reasoning steps,
so test problems one step longer are beyond pretraining too.

Records are ``{"text": ...}`` (the SFT trainer's ``text`` dataset preset:
every token is trained on). The output is a pure function of the arguments.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from mathjax.data import procedural
from mathjax.data.templates import FINAL_ANSWER_PREFIX

STORY_SHARE = 0.6  # the rest are arithmetic documents


def _story_text(record: dict, rng: random.Random) -> str:
    """Facts, then (maybe) the question, then the worked steps; no final-answer line."""
    lines = [ln for ln in record["answer"].splitlines() if ln.strip() and not ln.startswith(FINAL_ANSWER_PREFIX)]
    question = record["question"]
    if rng.random() < 0.5:  # drop the closing question: the facts read as a story
        sentences = question.split(". ")
        if sentences[-1].endswith("?") and len(sentences) > 1:
            question = ". ".join(sentences[:-1]) + "."
    sep = "\n" if rng.random() < 0.5 else " "
    return question + sep + sep.join(lines)


def _fact(rng: random.Random, max_number: int, max_value: int) -> str:
    """One exact ``a op b = c`` over the ranges procedural problems use."""
    kind = rng.random()
    if kind < 0.3:  # small operands, any operation
        a, b = rng.randint(0, max_number), rng.randint(0, max_number)
        op = rng.choice("+-*")
        if op == "-" and b > a:
            a, b = b, a
    elif kind < 0.55:  # sums and differences of totals
        a, b = rng.randint(0, max_value), rng.randint(0, max_value // 2)
        op = rng.choice("+-")
        if op == "+" and a + b > max_value:
            a = rng.randint(0, max_value - b)
        if op == "-" and b > a:
            a, b = b, a
    elif kind < 0.85:  # a count times a rate
        a = rng.randint(1, max_number)
        b = rng.randint(1, max(1, min(5 * max_number, max_value // a)))
        op = "*"
        if rng.random() < 0.5:
            a, b = b, a
    else:  # exact divisions
        b = rng.randint(1, max_number)
        a = b * rng.randint(0, max(1, max_value // b // 4))
        op = "/"
    c = {"+": a + b, "-": a - b, "*": a * b, "/": a // b if b else 0}[op]
    return f"{a} {op} {b} = {c}"


def _arithmetic_text(rng: random.Random, max_number: int, max_value: int) -> str:
    facts = [_fact(rng, max_number, max_value) for _ in range(rng.randint(6, 14))]
    return ("\n" if rng.random() < 0.7 else ", ").join(facts)


def generate_corpus(num_docs: int, seed: int = 0, max_steps: int = 4, max_number: int = 20,
                    max_value: int = 1000) -> list[dict]:
    """``num_docs`` pretraining documents (``{"text", "kind"}``), stories and arithmetic mixed.

    Args:
      num_docs: documents to make.
      seed: the corpus seed (stories use training-split problems of this seed).
      max_steps: longest story in reasoning steps.
      max_number, max_value: number ranges, as in :func:`mathjax.data.procedural.generate`.
    """
    if num_docs < 0:
        raise ValueError(f"num_docs must be >= 0, got {num_docs}")
    rng = random.Random(f"base-corpus-{seed}")
    kinds = ["story" if rng.random() < STORY_SHARE else "arithmetic" for _ in range(num_docs)]
    stories: Iterator[dict] = iter(procedural.generate(
        kinds.count("story"), "train", seed=1_000_003 + seed, min_steps=1, max_steps=max_steps,
        max_number=max_number, max_value=max_value))
    docs = []
    for kind in kinds:
        text = _story_text(next(stories), rng) if kind == "story" else _arithmetic_text(rng, max_number, max_value)
        docs.append({"text": text, "kind": kind})
    return docs
