"""Verdicts of a comparison and how partial verdicts combine."""

from __future__ import annotations

import enum


class Verdict(enum.IntEnum):
    """Outcome of one comparison. Only ``EQUAL`` counts as correct."""

    NOT_EQUAL = 0
    EQUAL = 1
    UNDECIDED = 2  # the fast path could not settle it (needs sympy) or sympy could not
    OVERSIZE = 3  # refused: too long, too deep or too large to evaluate
    TIMEOUT = 4  # the symbolic check ran past its hard timeout
    ERROR = 5  # an internal error (a grader bug); counted in reports


_E, _N, _U, _O = Verdict.EQUAL, Verdict.NOT_EQUAL, Verdict.UNDECIDED, Verdict.OVERSIZE


def any_of(verdicts) -> Verdict:
    """EQUAL if any alternative is equal; else the most informative failure."""
    worst = _N
    for v in verdicts:
        if v == _E:
            return _E
        if v != _N and (worst == _N or v == _O):
            worst = v
    return worst


def all_of(verdicts) -> Verdict:
    """EQUAL only if every part is equal; NOT_EQUAL as soon as one part is not."""
    pending = _E
    for v in verdicts:
        if v == _N:
            return _N
        if v != _E:
            pending = v
    return pending
