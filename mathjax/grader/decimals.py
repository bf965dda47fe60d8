"""Long decimals: a machine's rendering of an exact value.

Policy: numbers are exact (``0.33 != 1/3``, ``1.414 != \\sqrt2``: a short
rounded decimal of a non-terminating value is a wrong answer). A model that
computes in floating point, however, writes ``0.0833333333333333`` for
``\\frac{1}{12}``. Rule: a decimal literal with at least
:data:`LONG_DECIMAL_DIGITS` (12) significant digits equals a *rational*
constant ``X`` when it is ``X`` correctly rounded or truncated to its own digits, i.e. with ``u`` one
unit in its last digit, ``-u/2 <= |X| - |L| < u`` (same sign); from
:data:`FLOAT_DIGITS` digits on, binary floating-point noise is also accepted
(``|X - L| <= 2^-49 |X|``: ``0.30000000000000004`` is ``0.3``).

Why rationals only, and why 12 digits: twelve digits of a repeating decimal
show its period over and over (``0.0833333333333`` can only be ``1/12``), as
``0.\\overline{3}`` does; a decimal of an irrational (``1.4142135623730951``
for ``\\sqrt2``, ``3.141592653589793`` for ``\\pi``) is a numerical
approximation, not the closed form the question asks for, and stays unequal.
Ten digits (``0.3333333333``) is still a rounded answer, and so is a large value rounded to a few
places (``158323.333333``, 12 digits): the rule also needs :data:`MIN_DECIMAL_PLACES` (10) decimals.

Two literals of the same length stay exact (``12345678901.5 != 12345678901.6``);
of different lengths, the shorter one is tested against the longer one's value
when both are long, else the long one against the short one's. Variables never take part (``0.0833333333333333 x`` is an
expression, compared as before).
"""

from __future__ import annotations

from fractions import Fraction

from mathjax.grader import numeric

LONG_DECIMAL_DIGITS = 12
FLOAT_DIGITS = 15
_FLOAT_REL = 2.0**-49
MIN_DECIMAL_PLACES = 10  # and the period must show after the point, not in a large integer part
_MAX_ULP = Fraction(1, 10**MIN_DECIMAL_PLACES)


def literal(n: tuple):
    """(value, significant digits) of a decimal literal ``1.25``, ``-1.25``, ``12.5\\%``, else None."""
    sign, scale = 1, 1
    if n[0] == "pct":  # 66.66666666666667% is 2/3
        scale, n = Fraction(1, 100), n[1]
    if n[0] == "neg":
        sign, n = -1, n[1]
    if n[0] == "num" and n[2]:
        return sign * scale * n[1], n[2]
    return None


def _ulp(value: Fraction, sig: int) -> Fraction:
    """One unit in the last of ``sig`` significant digits of ``value``."""
    mag = abs(value)
    e = 0
    if mag:
        e = len(str(mag.numerator)) - len(str(mag.denominator))  # within one of floor(log10)
        while Fraction(10) ** e > mag:
            e -= 1
        while Fraction(10) ** (e + 1) <= mag:
            e += 1
    return Fraction(10) ** (e - sig + 1)


def long_decimal_match(a: tuple, b: tuple):
    """True/False when the long-decimal rule decides ``a`` vs ``b``, None when it does not apply."""
    la, lb = literal(a), literal(b)
    if la is not None and lb is not None:
        if la[1] == lb[1]:
            return None
        if (la[1] > lb[1]) == (min(la[1], lb[1]) >= LONG_DECIMAL_DIGITS):
            a, b, la, lb = b, a, lb, la  # the shorter if both are long, else the longer
    elif la is None:
        a, b, la, lb = b, a, lb, la
    if la is None or la[1] < LONG_DECIMAL_DIGITS:
        return None
    if numeric.free_symbols(b) or numeric.contains(b, {"const"}):
        return None  # a variable, pi or infinity: not a rational constant
    value, sig = la
    try:
        exact = numeric.exact(b)
    except numeric.EvalError:
        return False
    if exact is None:
        return None  # an irrational value: a decimal stays an approximation (policy above)
    u = _ulp(value, sig)
    if u > _MAX_ULP:
        return None  # 158323.333333: twelve digits, but a value rounded to 6 places (exact policy)
    if value and exact and (exact > 0) != (value > 0):
        return False
    d = abs(exact) - abs(value)
    if -u / 2 <= d < u:
        return True
    return sig >= FLOAT_DIGITS and abs(exact - value) <= abs(exact) * Fraction(_FLOAT_REL)
