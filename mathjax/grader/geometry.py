"""Canonical spellings of geometric names, applied during normalisation.

* ``\\overline{AB}`` (a segment: exactly two capital letters under the bar) is
  written ``AB``, its endpoints in alphabetical order: a segment is unordered,
  so ``\\overline{BA}`` is ``\\overline{AB}``, and the bar is only notation for
  the length asked for (``\\overline{AB} = 5`` is the labelled answer 5, as
  ``AB = 5`` is). Bare ``AB`` and ``BA`` were already equal (a product of two
  variables); nothing outside the bar is reordered. Digits under the bar
  (``0.\\overline{3}``, a repeating decimal) are not touched.
* ``\\angle ABC`` is the angle with vertex B: ``\\angle CBA`` names the same
  angle (arms swapped) and is written ``\\angle ABC``; ``\\angle BAC`` (vertex
  A) stays a different angle. Angle names compare as text.
"""

from __future__ import annotations

import re

_SEGMENT_RE = re.compile(r"\\overline\s*\{\s*([A-Z])\s*([A-Z])\s*\}")
_ANGLE_RE = re.compile(r"\\angle\s*([A-Z])\s*([A-Z])\s*([A-Z])(?![A-Za-z])")


def _segment(m: re.Match) -> str:
    a, b = sorted((m.group(1), m.group(2)))
    return a + b


def _angle(m: re.Match) -> str:
    a, v, c = m.group(1), m.group(2), m.group(3)
    if c < a:
        a, c = c, a
    return f"\\angle {a}{v}{c}"


def canonical_names(s: str) -> str:
    """``\\overline{BA}`` -> ``AB``, ``\\angle CBA`` -> ``\\angle ABC``."""
    if "\\overline" in s:
        s = _SEGMENT_RE.sub(_segment, s)
    if "\\angle" in s:
        s = _ANGLE_RE.sub(_angle, s)
    return s
