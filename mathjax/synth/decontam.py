"""Test-set leakage check: word n-gram overlap between synthetic examples and benchmark test sets.

As in GPT-3's contamination study (and the paper's leakage table), an
example is flagged when it shares any ``n``-word sequence (default 13) with a
test item, after lower-casing and dropping punctuation; a test item shorter
than ``n`` words counts as one whole-item n-gram (below 8 words it must equal
the example's whole question, not just occur in it). The index holds 8-byte
hashes of the test n-grams only, so GSM8K + MATH test (6,319 items) take a few
MB and every synthetic example is checked in time linear in its length.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
from collections.abc import Iterable, Sequence

_TOKEN = re.compile(r"[a-z0-9]+")
MIN_SHORT_WORDS = 8


def normalized_words(text: str) -> list[str]:
    """Lower-cased alphanumeric words; punctuation, LaTeX braces and spacing are ignored."""
    return _TOKEN.findall(text.lower())


def _h(gram: Sequence[str]) -> bytes:
    return hashlib.blake2b(" ".join(gram).encode("utf-8"), digest_size=8).digest()


@dataclasses.dataclass(frozen=True)
class Hit:
    """One flagged example: which test item it overlaps and one shared n-gram."""

    test_set: str
    test_id: str
    ngram: str

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


class TestSetIndex:
    """Hashed n-grams of test items, for :meth:`check`.

    Args:
      n: words per n-gram (13 as in GPT-3; 8 is stricter for short questions).
    """

    __test__ = False  # not a pytest class

    def __init__(self, n: int = 13):
        if n < 1:
            raise ValueError(f"n-gram size must be >= 1, got {n}")
        self.n = n
        self._grams: dict[bytes, tuple[str, str]] = {}
        self._short: dict[int, dict[bytes, tuple[str, str]]] = {}  # whole items shorter than n, by length
        self.items: dict[str, int] = {}

    def add(self, test_set: str, test_id: str, text: str) -> None:
        """Indexes one test item (question, or question plus solution)."""
        w = normalized_words(text)
        if not w:
            return
        self.items[test_set] = self.items.get(test_set, 0) + 1
        if len(w) < self.n:
            self._short.setdefault(len(w), {}).setdefault(_h(w), (test_set, test_id))
            return
        for i in range(len(w) - self.n + 1):
            self._grams.setdefault(_h(w[i : i + self.n]), (test_set, test_id))

    def check(self, text: str) -> Hit | None:
        """The first test item ``text`` shares an n-gram with, or None."""
        w = normalized_words(text)
        for i in range(len(w) - self.n + 1):
            got = self._grams.get(_h(w[i : i + self.n]))
            if got:
                return Hit(got[0], got[1], " ".join(w[i : i + self.n]))
        for length, grams in self._short.items():
            if length < MIN_SHORT_WORDS:
                # A 4-word test item ("Compute 8 choose 4.") inside a longer question
                # is coincidence more often than leakage: only an equal text counts.
                got = grams.get(_h(w)) if len(w) == length else None
                if got:
                    return Hit(got[0], got[1], " ".join(w))
                continue
            for i in range(len(w) - length + 1):
                got = grams.get(_h(w[i : i + length]))
                if got:
                    return Hit(got[0], got[1], " ".join(w[i : i + length]))
        return None

    def __len__(self) -> int:
        return len(self._grams) + sum(len(g) for g in self._short.values())


def build_index(test_sets: Iterable[str], n: int = 13, include_solutions: bool = False) -> TestSetIndex:
    """An index over benchmark test sets.

    Args:
      test_sets: JSONL files or directories (``test.jsonl`` inside), or
        ``gsm8k`` / ``math`` for the hub test splits; any layout
        :func:`mathjax.data.sources.load_eval_set` reads.
      n: n-gram size.
      include_solutions: index the reference solutions too (stricter: also
        catches a synthetic answer copied from a test solution).
    """
    from mathjax.data.sources import load_eval_set

    index = TestSetIndex(n)
    for spec in test_sets:
        name = os.path.basename(spec.rstrip("/")) or spec
        for record in load_eval_set(spec, "test"):
            text = record["question"]
            if include_solutions and isinstance(record.get("solution"), str):
                text += "\n" + record["solution"]
            index.add(name, str(record["id"]), text)
    return index
