"""Stop strings: end a sample when its text contains e.g. ``USER:`` (the next turn).

Stop strings are text, and a string can be split across tokens in many ways,
so they are checked on the host, on decoded text. During decoding only the
newest tokens (plus an overlap) are decoded at each check, so a check costs
O(new tokens), not O(sample length). The final text is always decided on the
full decode, so a match the window missed is still cut.
"""

from __future__ import annotations

from collections.abc import Sequence


class StopStrings:
    """Finds stop strings in generated tokens.

    Args:
      tokenizer: anything with ``decode(ids) -> str``.
      stops: the stop strings (empty ones are ignored).
    """

    def __init__(self, tokenizer, stops: Sequence[str]):
        self.tokenizer = tokenizer
        self.stops = tuple(s for s in stops if s)
        if self.stops and tokenizer is None:
            raise ValueError("stop strings need a tokenizer")
        # A token is at least one byte; byte-fallback tokens can be a quarter of
        # a character, so this overlap always covers a stop string split
        # across the previous check's boundary.
        self.overlap = 4 * max((len(s.encode("utf-8")) for s in self.stops), default=0) + 4

    def __bool__(self) -> bool:
        return bool(self.stops)

    def first_stop(self, text: str) -> int | None:
        """Character offset of the earliest stop string in ``text``, or None."""
        hits = [i for i in (text.find(s) for s in self.stops) if i >= 0]
        return min(hits) if hits else None

    def maybe_stopped(self, ids: Sequence[int], checked: int) -> bool:
        """Whether ``ids[:len(ids)]`` may contain a stop string that ``ids[:checked]`` did not."""
        if not self.stops or len(ids) <= checked:
            return False
        start = max(0, checked - self.overlap)
        return self.first_stop(self.tokenizer.decode(list(ids[start:]))) is not None

    def stop_length(self, ids: Sequence[int]) -> int | None:
        """Fewest leading tokens whose text contains a stop string, or None if none does."""
        if not self.stops or self.first_stop(self.tokenizer.decode(list(ids))) is None:
            return None
        lo, hi = 1, len(ids)  # invariant: ids[:hi] contains a stop
        while lo < hi:
            mid = (lo + hi) // 2
            if self.first_stop(self.tokenizer.decode(list(ids[:mid]))) is not None:
                hi = mid
            else:
                lo = mid + 1
        return hi

    def cut(self, text: str) -> tuple[str, bool]:
        """``text`` up to (not including) its first stop string, and whether one was found."""
        pos = self.first_stop(text)
        return (text, False) if pos is None else (text[:pos], True)
