"""Exact and high-precision evaluation of parsed scalar expressions.

Two evaluators over the tuple trees of :mod:`latex`:

* :func:`exact` returns a ``Fraction`` when the expression is a rational
  constant (``\\frac{3}{4}``, ``0.75``, ``75\\%``, ``\\sqrt{16}``, ``2^{-3}``,
  ``\\log_2 8``) and ``None`` otherwise. This is the fast path that decides
  most comparisons, and the reason ``0.33`` can never equal ``1/3``.
* :func:`approx` evaluates at 50 significant digits with mpmath in a private
  context (sympy's global mpmath context is left alone), substituting fixed
  pseudo-random values for free variables (point ``k``), so that
  ``\\frac{\\sqrt2}{2}`` vs ``\\frac{1}{\\sqrt2}`` or ``(x+1)^2`` vs
  ``x^2+2x+1`` are decided without sympy.

Both are bounded: integer powers, factorials and binomials refuse results
beyond :data:`MAX_BITS` bits, and floating magnitudes beyond
:data:`MAX_MAG_BITS` (raising :class:`Oversize`), so a hostile
``10^{10^{10}}`` costs microseconds, not hours.
"""

from __future__ import annotations

import math
import zlib
from fractions import Fraction

from mpmath.ctx_mp import MPContext

MAX_BITS = 100_000
MAX_MAG_BITS = 200_000
MAX_FACTORIAL = 5_000
NUM_POINTS = 3

# A sum this much smaller than its largest term has lost most of its digits.
_CANCELLATION = 10**-20

_ctx = MPContext()
_ctx.dps = 50


class EvalError(ArithmeticError):
    """Undefined (1/0, log 0) or not a scalar expression."""


class Oversize(ArithmeticError):
    """A value too large to compute within the bounds."""


_ONE = Fraction(1)


def _int_root(n: int, k: int) -> int | None:
    """Exact k-th root of a non-negative int, or None."""
    if n < 2:
        return n
    if n.bit_length() > MAX_BITS:
        raise Oversize("root of huge int")
    r = round(n ** (1.0 / k)) if n.bit_length() < 1000 else _iroot(n, k)
    for c in (r - 1, r, r + 1):
        if c >= 0 and c**k == n:
            return c
    return None


def _iroot(n: int, k: int) -> int:
    # Newton on integers for big n.
    x = 1 << ((n.bit_length() + k - 1) // k)
    while True:
        y = ((k - 1) * x + n // x ** (k - 1)) // k
        if y >= x:
            return x
        x = y


def _rational_root(q: Fraction, k: int) -> Fraction | None:
    if k <= 0 or k > 1000:
        return None
    neg = q < 0
    if neg and k % 2 == 0:
        return None
    a = _int_root(abs(q.numerator), k)
    b = _int_root(q.denominator, k)
    if a is None or b is None:
        return None
    r = Fraction(a, b)
    return -r if neg else r


def _pow_exact(b: Fraction, e: Fraction) -> Fraction | None:
    if e.denominator != 1:
        root = _rational_root(b, e.denominator)
        if root is None:
            return None
        return _pow_exact(root, Fraction(e.numerator))
    n = e.numerator
    if b == 0:
        if n < 0:
            raise EvalError("0 to a negative power")
        return Fraction(0) if n > 0 else _ONE
    if b in (1, -1):
        return b ** (n % 2) if b == -1 else _ONE
    bits = max(b.numerator.bit_length(), b.denominator.bit_length())
    if abs(n) > MAX_BITS or bits * abs(n) > MAX_BITS:
        raise Oversize("power too large")
    return b**n


def exact(node: tuple) -> Fraction | None:
    """The exact rational value of a constant expression, else ``None``.

    Raises:
      EvalError: undefined (division by zero) or a non-scalar node.
      Oversize: a result beyond :data:`MAX_BITS`.
    """
    kind = node[0]
    if kind == "num":
        return node[1]
    if kind == "add":
        total = Fraction(0)
        for t in node[1]:
            v = exact(t)
            if v is None:
                return None
            total += v
        return total
    if kind == "mul":
        prod = _ONE
        for f in node[1]:
            v = exact(f)
            if v is None:
                return None
            prod *= v
        return prod
    if kind == "neg":
        v = exact(node[1])
        return None if v is None else -v
    if kind == "div":
        a = exact(node[1])
        if a is None:
            return None
        b = exact(node[2])
        if b is None:
            return None
        if b == 0:
            raise EvalError("division by zero")
        return a / b
    if kind == "pow":
        b = exact(node[1])
        if b is None:
            return None
        e = exact(node[2])
        if e is None:
            return None
        return _pow_exact(b, e)
    if kind == "pct":
        v = exact(node[1])
        return None if v is None else v / 100
    if kind == "func":
        return _exact_func(node[1], node[2])
    if kind in ("sym", "const", "deg"):
        return None
    raise EvalError(f"not a scalar: {kind}")


def _exact_func(name: str, args: tuple) -> Fraction | None:
    vals = []
    for a in args:
        v = exact(a)
        if v is None:
            return None
        vals.append(v)
    x = vals[0]
    if name == "sqrt":
        if x < 0:
            return None
        return _rational_root(x, 2)
    if name == "root":
        k = vals[1]
        if k.denominator != 1:
            return None
        return _rational_root(x, int(k))
    if name == "abs":
        return abs(x)
    if name == "floor":
        return Fraction(math.floor(x))
    if name == "ceil":
        return Fraction(math.ceil(x))
    if name == "sgn":
        return Fraction((x > 0) - (x < 0))
    if name == "factorial":
        if x.denominator != 1 or x < 0:
            return None
        if x > MAX_FACTORIAL:
            raise Oversize("factorial too large")
        return Fraction(math.factorial(int(x)))
    if name == "binom":
        n, k = vals
        if n.denominator != 1 or k.denominator != 1 or n < 0:
            return None
        if n > 20 * MAX_FACTORIAL:
            raise Oversize("binomial too large")
        return Fraction(math.comb(int(n), int(k))) if k >= 0 else Fraction(0)
    if name in ("gcd", "lcm"):
        if any(v.denominator != 1 for v in vals):
            return None
        ints = [int(v) for v in vals]
        if any(i.bit_length() > MAX_BITS for i in ints):
            raise Oversize("gcd of huge ints")
        return Fraction(math.gcd(*ints) if name == "gcd" else math.lcm(*ints))
    if name == "max":
        return max(vals)
    if name == "min":
        return min(vals)
    if name == "log" and len(vals) == 2:
        return _exact_log(x, vals[1])
    if name == "log10":
        return _exact_log(x, Fraction(10))
    if name in ("re",):
        return x
    if name in ("im",):
        return Fraction(0)
    return None


def _exact_log(x: Fraction, b: Fraction) -> Fraction | None:
    """log_b(x) when it is an integer (log_2 8 = 3), else None."""
    if x <= 0 or b <= 0 or b == 1:
        return None
    if max(x.numerator.bit_length(), x.denominator.bit_length()) > MAX_BITS:
        raise Oversize("log of huge value")
    guess = round(math.log(x) / math.log(b))
    for k in (guess - 1, guess, guess + 1):
        if abs(k) <= 4 * MAX_BITS and _pow_exact(b, Fraction(k)) == x:
            return Fraction(k)
    return None


# ---- approximate evaluation -------------------------------------------------

_SPECIAL = {"e": _ctx.e, "i": _ctx.mpc(0, 1)}


def symbol_value(name: str, k: int):
    """The fixed value substituted for variable ``name`` at point ``k``.

    Two positive points and one negative one: ``|x|`` vs ``x`` and
    ``\\sqrt{x^2}`` vs ``x`` differ on the negative one. Values depend only on
    the name, so every process and both sides of a comparison agree.
    """
    if name in _SPECIAL:
        return _SPECIAL[name]
    h = zlib.crc32(f"{name}|{k}".encode()) % 1_000_003
    u = _ctx.mpf(h) / 1_000_003
    if k == 0:
        return _ctx.mpf("0.5") + u
    if k == 1:
        return _ctx.mpf("1.5") + u * _ctx.mpf("1.5")
    if k == 2:
        return -(_ctx.mpf("0.5") + u * _ctx.mpf("1.5"))
    # Extra points (equations in many variables): spread over [-3, 3].
    return _ctx.mpf(-3) + 6 * u


def _check(v):
    if not _ctx.isfinite(v):
        raise EvalError("not finite")
    if v != 0 and _ctx.mag(v) > MAX_MAG_BITS:
        raise Oversize("magnitude")
    return v


def _real(v):
    if isinstance(v, _ctx.mpc):
        if abs(v.imag) > abs(v.real) * _ctx.mpf(10) ** -40 + _ctx.mpf(10) ** -45:
            raise EvalError("complex where real needed")
        return v.real
    return v


def approx(node: tuple, k: int):
    """Value at 50 digits with variables set by :func:`symbol_value` (point ``k``).

    Raises:
      EvalError, Oversize: undefined, infinite, or too large.
    """
    kind = node[0]
    ctx = _ctx
    if kind == "num":
        v = node[1]
        return ctx.mpf(v.numerator) / v.denominator if v.denominator != 1 else ctx.mpf(v.numerator)
    if kind == "sym":
        return symbol_value(node[1], k)
    if kind == "const":
        if node[1] == "pi":
            return +ctx.pi
        raise EvalError("infinity in arithmetic")
    if kind == "add":
        total = ctx.mpf(0)
        biggest = 0
        for t in node[1]:
            v = approx(t, k)
            total += v
            biggest = max(biggest, abs(v))
        if biggest and abs(total) < biggest * _CANCELLATION:
            # Most of the 50 digits cancelled: the value cannot be trusted here.
            raise EvalError("catastrophic cancellation")
        return _check(total)
    if kind == "mul":
        prod = ctx.mpf(1)
        for f in node[1]:
            prod *= approx(f, k)
        return _check(prod)
    if kind == "neg":
        return -approx(node[1], k)
    if kind == "div":
        a = approx(node[1], k)
        b = approx(node[2], k)
        if b == 0:
            raise EvalError("division by zero")
        return _check(a / b)
    if kind == "pow":
        b = approx(node[1], k)
        e = approx(node[2], k)
        return _pow_approx(b, e)
    if kind == "pct":
        return approx(node[1], k) / 100
    if kind == "deg":
        return approx(node[1], k) * ctx.pi / 180
    if kind == "func":
        return _check(_approx_func(node[1], [approx(a, k) for a in node[2]]))
    raise EvalError(f"not a scalar: {kind}")


def _pow_approx(b, e):
    ctx = _ctx
    if b == 0:
        if ctx.re(e) > 0:
            return ctx.mpf(0)
        raise EvalError("0 to a non-positive power")
    mag_b = abs(ctx.mag(b)) + 1
    if abs(ctx.re(e)) * mag_b > MAX_MAG_BITS or ctx.mag(e) > 64:
        raise Oversize("power too large")
    if isinstance(e, ctx.mpf) and ctx.isint(e):
        return _check(ctx.power(b, int(e)))
    if isinstance(b, ctx.mpf) and b < 0 and isinstance(e, ctx.mpf):
        # Real odd roots of negatives: (-8)^(1/3) = -2, as competition maths means it.
        q = Fraction(float(e)).limit_denominator(1000)
        if abs(ctx.mpf(q.numerator) / q.denominator - e) < ctx.mpf(10) ** -40 and q.denominator % 2 == 1:
            r = ctx.root(-b, q.denominator)
            return _check((-r if q.numerator % 2 else r) ** q.numerator)
    return _check(ctx.power(b, e))


def _approx_func(name: str, vals: list):
    ctx = _ctx
    x = vals[0]
    if name in ("sin", "cos", "tan", "sec", "csc", "cot"):
        if abs(x) > 10**40:
            raise Oversize("trig of huge argument")
        if name in ("tan", "sec") and abs(ctx.cos(x)) < ctx.mpf(10) ** -40:
            raise EvalError("pole")
        if name in ("cot", "csc") and abs(ctx.sin(x)) < ctx.mpf(10) ** -40:
            raise EvalError("pole")
        return getattr(ctx, name)(x)
    if name in ("arcsin", "arccos", "arctan"):
        return getattr(ctx, "a" + name[3:])(x)
    if name in ("arcsec", "arccsc", "arccot"):
        if x == 0:
            raise EvalError("pole")
        return getattr(ctx, "a" + {"arcsec": "cos", "arccsc": "sin", "arccot": "tan"}[name])(1 / x)
    if name in ("sinh", "cosh", "tanh", "coth", "sech", "csch"):
        if abs(x) > 10**6:
            raise Oversize("hyperbolic of huge argument")
        return getattr(ctx, name)(x)
    if name == "exp":
        if ctx.re(x) > 10**5:
            raise Oversize("exp too large")
        return ctx.exp(x)
    if name in ("ln", "log", "log10"):
        if x == 0:
            raise EvalError("log 0")
        if name == "log10":
            return ctx.log(x, 10)
        if len(vals) == 2:
            if vals[1] == 0 or vals[1] == 1:
                raise EvalError("bad log base")
            return ctx.log(x) / ctx.log(vals[1])
        return ctx.log(x)
    if name == "sqrt":
        return ctx.sqrt(x)
    if name == "root":
        n = vals[1]
        if isinstance(x, ctx.mpf) and x < 0 and ctx.isint(n) and int(n) % 2 == 1:
            return -ctx.root(-x, int(n))
        if ctx.isint(n) and n > 0:
            return ctx.root(x, int(n))
        return _pow_approx(x, 1 / n)
    if name == "abs":
        return abs(x)
    if name == "floor":
        return ctx.floor(_real(x))
    if name == "ceil":
        return ctx.ceil(_real(x))
    if name == "sgn":
        return ctx.sign(x)
    if name == "factorial":
        if abs(x) > 10**6:
            raise Oversize("factorial too large")
        if isinstance(x, ctx.mpf) and ctx.isint(x) and x < 0:
            raise EvalError("factorial of negative integer")
        return ctx.gamma(x + 1)
    if name == "binom":
        if abs(vals[0]) > 10**7:
            raise Oversize("binomial too large")
        return ctx.binomial(vals[0], vals[1])
    if name in ("max", "min"):
        reals = [_real(v) for v in vals]
        return max(reals) if name == "max" else min(reals)
    if name in ("gcd", "lcm"):
        ints = []
        for v in vals:
            v = _real(v)
            if not ctx.isint(v) or abs(v) > 10**30:
                raise EvalError("gcd of non-integers")
            ints.append(int(v))
        return ctx.mpf(math.gcd(*ints) if name == "gcd" else math.lcm(*ints))
    if name == "arg":
        return ctx.arg(x)
    if name == "re":
        return ctx.re(x)
    if name == "im":
        return ctx.im(x)
    raise EvalError(f"unsupported function {name}")


def children(node: tuple) -> tuple:
    """Direct sub-expressions of any node kind."""
    kind = node[0]
    if kind in ("add", "mul", "list", "set", "union"):
        return node[1]
    if kind in ("neg", "pct", "deg"):
        return (node[1],)
    if kind in ("div", "pow", "pm"):
        return (node[1], node[2])
    if kind in ("func", "rel"):
        return node[2]
    if kind == "seq":
        return node[3]
    if kind == "matrix":
        return tuple(c for row in node[1] for c in row)
    return ()


def _walk(node: tuple):
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(children(n))


def free_symbols(node: tuple) -> frozenset[str]:
    """Names of the variables in ``node`` (``e`` and ``i`` are constants)."""
    return frozenset(n[1] for n in _walk(node) if n[0] == "sym" and n[1] not in _SPECIAL)


def max_decimal_digits(node: tuple) -> int:
    """Most significant digits of any decimal literal in ``node`` (0 if none)."""
    return max((n[2] for n in _walk(node) if n[0] == "num"), default=0)


def contains(node: tuple, kinds: frozenset[str] | set[str]) -> bool:
    """Whether any sub-node has one of ``kinds``."""
    return any(n[0] in kinds for n in _walk(node))


def close(a, b, rel: float = 1e-30) -> bool:
    """``|a - b| <= rel * max(1, |a|, |b|)``."""
    return abs(a - b) <= _ctx.mpf(rel) * max(1, abs(a), abs(b))


def far(a, b, rel: float = 1e-20) -> bool:
    """Clearly different: beyond any rounding of a 50-digit evaluation."""
    return abs(a - b) > _ctx.mpf(rel) * max(1, abs(a), abs(b))


def infinity(sign: int):
    """+inf or -inf in the evaluation context (interval end points)."""
    return _ctx.inf * sign


def is_finite(v) -> bool:
    return bool(_ctx.isfinite(v))


def fingerprint(v, digits: int = 15) -> str:
    """A value rounded to ``digits`` significant digits, as a hashable string."""
    return _ctx.nstr(v, digits)


def imag_part(v):
    """Imaginary part (0 for reals)."""
    return _ctx.im(v)


def real_value(v):
    """Real part when the imaginary part is negligible, else raise EvalError."""
    return _real(v)
