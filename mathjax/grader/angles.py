"""The angle-unit policy: what a degree sign means when comparing answers.

Two policies (``angles=`` on every public grading entry point):

* ``"degrees"`` (default): a degree sign on a whole answer is a unit that is
  dropped, as ``x%`` may be: ``30^\\circ == 30``. Radians are not converted:
  ``30^\\circ != \\frac{\\pi}{6}``, ``180^\\circ != \\pi``. This is MATH's
  convention (angle answers in degrees are written as plain numbers) and
  Math-Verify's (it parses with ``convert_degrees=False``).
* ``"convert"``: additionally a degree-marked value equals its radian value:
  ``30^\\circ == \\frac{\\pi}{6}``, ``180^\\circ == \\pi``. A bare number is
  never read as degrees: ``30 != \\frac{\\pi}{6}`` under both policies.

Degrees inside an expression are always converted (``\\sin 30^\\circ`` is
``1/2``): only the unit of the answer itself is a policy question.

The policy reaches the comparison code through a context variable set by
:func:`mathjax.grader.equiv.compare` (no extra argument on every internal
function); worker jobs receive it explicitly as an argument.
"""

from __future__ import annotations

import contextlib
import functools
import contextvars
from fractions import Fraction

from mathjax.grader import numeric

DEGREES, CONVERT = "degrees", "convert"
POLICIES = (DEGREES, CONVERT)
DEFAULT = DEGREES

_default = DEFAULT
_current: contextvars.ContextVar[str] = contextvars.ContextVar("mathjax_grader_angles", default=DEFAULT)


def check(policy: str | None) -> str:
    """The policy to use: ``policy`` validated, or the process default for None.

    Raises:
      ValueError: for an unknown policy name.
    """
    if policy is None:
        return _default
    if policy not in POLICIES:
        raise ValueError(f"angles must be one of {POLICIES}, got {policy!r}")
    return policy


def set_default(policy: str) -> str:
    """Set this process's default policy (what ``angles=None`` means); returns the old one.

    Only affects calls made in this process: the grading entry points resolve
    the policy here and pass it to their worker processes explicitly.
    """
    global _default
    old, _default = _default, check(policy)
    return old


def get_default() -> str:
    return _default


def current() -> str:
    """The policy of the comparison in progress."""
    return _current.get()


@contextlib.contextmanager
def using(policy: str):
    token = _current.set(policy)
    try:
        yield
    finally:
        _current.reset(token)


def to_radians(inner: tuple) -> tuple:
    """``x°`` in radians: an exact ``(q/180)·π`` for rational ``x``, else ``x°`` (evaluated as x·π/180)."""
    try:
        q = numeric.exact(inner)
    except Exception:
        q = None
    if q is None:
        return ("deg", inner)
    q = Fraction(q) / 180
    if q == 0:
        return ("num", Fraction(0), 0)
    return ("mul", (("num", q, 0), ("const", "pi")))


def in_policy(n: tuple | None) -> tuple | None:
    """The tree as the current policy reads it.

    Under "degrees" a degree sign inside an answer is dropped as well: in
    ``x = 30^\\circ``, ``0^\\circ < x < 90^\\circ`` or ``30^\\circ + 45^\\circ`` the
    numbers are degrees, not ``x·π/180`` (which is what a ``("deg", x)`` node
    evaluates to). It stays on function arguments (``\\sin 30^\\circ`` is 1/2)
    and on whole answers and the items of lists, tuples and sets, where
    :func:`alternatives` reads it (so ``20^\\circ`` still differs from ``20\\%``).
    """
    if n is None or current() != DEGREES:
        return n
    return _drop(n, True)


@functools.lru_cache(maxsize=1 << 14)
def _drop(n: tuple, keep: bool) -> tuple:
    kind = n[0]
    if kind == "func":
        return n
    if kind == "deg":
        return ("deg", _drop(n[1], False)) if keep else _drop(n[1], False)
    if kind == "neg":
        return ("neg", _drop(n[1], keep))
    if kind in ("list", "set", "union"):
        return (kind, tuple(_drop(k, True) for k in n[1]))
    if kind == "seq":
        return n[:3] + (tuple(_drop(k, True) for k in n[3]),)
    if kind == "matrix":
        return ("matrix", tuple(tuple(_drop(k, True) for k in row) for row in n[1]))
    if kind == "rel":
        return ("rel", n[1], tuple(_drop(k, False) for k in n[2]))
    if kind in ("add", "mul"):
        return (kind, tuple(_drop(k, False) for k in n[1]))
    if kind == "pct":
        return ("pct", _drop(n[1], False))
    if kind in ("div", "pow", "pm"):
        return (kind, _drop(n[1], False), _drop(n[2], False))
    return n


def alternatives(n: tuple) -> tuple[tuple, ...]:
    """Readings of a top-level unit: ``x%`` is x/100 or x; ``x°`` is x (and x·π/180 under "convert")."""
    if n[0] == "pct":
        return (n, n[1])
    if n[0] == "deg":
        if current() == CONVERT:
            return (n[1], to_radians(n[1]))
        return (n[1],)
    return (n,)


__all__ = ["CONVERT", "DEFAULT", "DEGREES", "POLICIES", "alternatives", "check", "current", "get_default", "in_policy",
           "set_default", "to_radians", "using"]
