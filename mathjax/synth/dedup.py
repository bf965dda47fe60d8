"""Near-duplicate removal among generated questions: word shingles, MinHash, LSH bands.

Pairwise Jaccard over a million questions is 10^12 comparisons; MinHash
signatures split into LSH bands find the candidate pairs in linear time, and
each candidate is then confirmed with the exact Jaccard similarity of the two
shingle sets, so the band layout affects only recall, never precision.
Bands of ``rows`` hashes catch a pair of similarity ``s`` with probability
``1 - (1 - s**rows)**bands``: with the defaults (16 x 4) that is 0.98 at
``s = 0.8`` and 0.60 at ``s = 0.5``.

Which copy survives is deterministic: the first in input order (seed order).
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Sequence

import numpy as np

_WORD = re.compile(r"[a-z0-9]+|[^\sa-z0-9]", re.I)
# Mersenne prime modulus of the hash family; with 31-bit inputs and factors,
# a * x + b stays below 2**63, so numpy's uint64 arithmetic is exact.
_PRIME = (1 << 31) - 1


def words(text: str) -> list[str]:
    """Lower-cased word and symbol tokens (digits kept: numbers are what make two problems differ)."""
    return [w.lower() for w in _WORD.findall(text)]


def shingles(text: str, size: int = 3) -> set[tuple[str, ...]]:
    """The set of ``size``-word shingles (the whole text when it has fewer words)."""
    w = words(text)
    if len(w) < size:
        return {tuple(w)} if w else set()
    return {tuple(w[i : i + size]) for i in range(len(w) - size + 1)}


def jaccard(a: set, b: set) -> float:
    """|a & b| / |a | b| (0 for two empty sets)."""
    if not a and not b:
        return 0.0
    return len(a & b) / len(a | b)


def _shingle_hashes(s: set[tuple[str, ...]]) -> np.ndarray:
    # A stable hash (Python's hash() is salted per process; shards must agree).
    return np.asarray(
        [int.from_bytes(hashlib.blake2b("\x1f".join(t).encode("utf-8"), digest_size=4).digest(), "little") % _PRIME
         for t in s], dtype=np.uint64)


@dataclasses.dataclass(frozen=True)
class DedupOptions:
    """Near-duplicate settings.

    Attributes:
      threshold: Jaccard similarity of shingle sets at or above which two
        questions are duplicates.
      shingle_size: words per shingle.
      bands, rows: LSH layout (``bands * rows`` MinHash functions).
      seed: the hash functions' seed.
    """

    threshold: float = 0.8
    shingle_size: int = 3
    bands: int = 16
    rows: int = 4
    seed: int = 0

    def __post_init__(self):
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"dedup threshold must be in (0, 1], got {self.threshold}")
        if self.shingle_size < 1 or self.bands < 1 or self.rows < 1:
            raise ValueError("shingle_size, bands and rows must be >= 1")


class MinHasher:
    """MinHash signatures with ``num_perm`` functions ``(a * x + b) mod p``."""

    def __init__(self, num_perm: int, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.a = rng.integers(1, _PRIME, num_perm, dtype=np.uint64)
        self.b = rng.integers(0, _PRIME, num_perm, dtype=np.uint64)

    def signature(self, hashes: np.ndarray) -> np.ndarray:
        if len(hashes) == 0:
            return np.full(len(self.a), _PRIME, np.uint64)
        values = (hashes[:, None] * self.a[None, :] + self.b[None, :]) % np.uint64(_PRIME)
        return values.min(axis=0)


# Candidates whose MinHash estimate is this far below the threshold are not
# checked exactly: with 64 hashes the estimate's standard error is at most
# 0.0625, so this margin loses (almost) no true duplicate.
_ESTIMATE_MARGIN = 0.25


def near_duplicates(texts: Sequence[str], options: DedupOptions = DedupOptions()) -> dict[int, tuple[int, float]]:
    """Indices to drop, each mapped to ``(index of the earlier copy it duplicates, similarity)``.

    An item is compared only with earlier *kept* items, so chains (a~b, b~c,
    a!~c) keep a and c.
    """
    hasher = MinHasher(options.bands * options.rows, options.seed)
    buckets: list[dict[bytes, list[int]]] = [{} for _ in range(options.bands)]
    sets: dict[int, set] = {}
    sigs: dict[int, np.ndarray] = {}
    dropped: dict[int, tuple[int, float]] = {}
    r = options.rows
    for i, text in enumerate(texts):
        s = shingles(text, options.shingle_size)
        sig = hasher.signature(_shingle_hashes(s))
        keys = [sig[b * r : (b + 1) * r].tobytes() for b in range(options.bands)]
        candidates: set[int] = set()
        for band, key in zip(buckets, keys):
            candidates.update(band.get(key, ()))
        best = None
        if candidates:
            order = sorted(candidates)
            estimate = (np.stack([sigs[j] for j in order]) == sig[None, :]).mean(axis=1)
            for j, est in zip(order, estimate):
                if est < options.threshold - _ESTIMATE_MARGIN:
                    continue
                sim = jaccard(s, sets[j])
                if sim >= options.threshold and (best is None or sim > best[1]):
                    best = (j, sim)
        if best is not None:
            dropped[i] = best
            continue
        sets[i] = s
        sigs[i] = sig
        for band, key in zip(buckets, keys):
            band.setdefault(key, []).append(i)
    return dropped
