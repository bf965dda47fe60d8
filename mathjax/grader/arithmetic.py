"""Exact checking of the arithmetic written in a solution (``a op b = c``).

Finds every ``a op b (op c ...) = c`` with ASCII ``+ - * /``, ``×``, ``÷``,
``x`` between numbers, parentheses, decimals, thousands commas, ``$`` and ``%``
on a number (``25% of 80 = 20`` too), and checks it exactly with
``fractions.Fraction``; nothing is ever evaluated as code. Used for the
paper's "calculation vs reasoning error" analysis and by the procedural data
generator to prove its worked solutions right.

What is *not* checked (so that no false slip is reported): algebra with
variables (``x + 3 = 5``), exponents (``2^3 + 1 = 9``), right-hand sides that
are expressions (``3 * 12 = 36 + 4``; the next ``= 40`` is checked instead),
and ``=`` inside ``<=``, ``>=``, ``==``, ``!=``. GSM8K calculator annotations
``<<48/2=24>>`` are removed first (the text around them is checked).
"""

from __future__ import annotations

import dataclasses
import re
from fractions import Fraction

__all__ = ["ArithmeticCheck", "ArithmeticProfile", "arithmetic_profile", "check_arithmetic", "has_arithmetic_slip",
           "slip_flags"]


@dataclasses.dataclass(frozen=True)
class ArithmeticCheck:
    """One equation found in a text.

    Attributes:
      expression: the equation as written, e.g. ``"3 * 12 = 36"``.
      claimed: the value on the right of ``=`` (``25%`` is 1/4 unless the
        plain number is what the left side computes).
      actual: the exact value of the left side; ``None`` if undefined (x/0).
      ok: ``actual == claimed``.
    """

    expression: str
    claimed: Fraction
    actual: Fraction | None
    ok: bool


_TOKEN_RE = re.compile(
    r"(?P<num>(?:\$\s*)?(?:\d{1,3}(?:,\d{3})+(?![\d,])|\d+)(?:\.\d+)?(?:\s?%)?|(?:\$\s*)?\.\d+(?:\s?%)?)"
    r"|(?P<op>[-+*/\u00d7\u00f7])"
    r"|(?P<lp>\()"
    r"|(?P<rp>\))"
    r"|(?P<cmp><=|>=|==|!=|=>|=<|\u2248|\u2260|\u2264|\u2265)"
    r"|(?P<eq>=)"
    r"|(?P<word>[A-Za-z]+)"
    r"|(?P<ws>\s+)"
    r"|(?P<other>.)"
)
_CALC_RE = re.compile(r"<<[^<>\n]{0,300}>>")
_LATEX_FRAC_RE = re.compile(r"\\[dt]?frac\s*\{\s*(\d+(?:\.\d+)?)\s*\}\s*\{\s*(\d+(?:\.\d+)?)\s*\}")
_LATEX_SUBS = (
    ("\\times", "\u00d7"), ("\\cdot", "*"), ("\\div", "\u00f7"), ("\\left(", "("), ("\\right)", ")"),
    ("\\left", ""), ("\\right", ""), ("\\$", "$"), ("\\%", "%"), ("{,}", ","), ("\\!", ""), ("\\,", ""),
    ("\u2212", "-"), ("\u00b7", "*"), ("\u22c5", "*"), ("**", " "), ("__", " "), ("\\(", " "), ("\\)", " "),
)
# A token right before the left-hand side that makes it part of a bigger
# expression we do not evaluate (an exponent, a variable, a subscript, ...).
_BLOCKING_OTHER = set("^_}]|!\\.'")
_MAX_DEPTH = 40
_WINDOW = 240
_RIGHT_WINDOW = 48
_ARITH_CHARS = frozenset("0123456789 \t+-*/\u00d7\u00f7().,$%xX")
_CANDIDATE_RE = re.compile(r"[\d)%]\s*(=)(?![=>])\s*(?:-\s*)?(?:\$\s*)?\.?\d")
_MAX_DIGITS = 60


@dataclasses.dataclass
class _Tok:
    kind: str
    text: str
    start: int
    end: int


def _tokenize_at(text: str, start: int, end: int) -> list[_Tok]:
    out = []
    for m in _TOKEN_RE.finditer(text, start, end):
        kind = m.lastgroup
        if kind != "ws":
            out.append(_Tok(kind, m.group(0), m.start(), m.end()))
    return out


def _mark_times(out: list[_Tok]) -> None:
    """"x"/"X" between numbers is multiplication ("3 x 4")."""
    for i, t in enumerate(out):
        if (
            t.kind == "word"
            and t.text in ("x", "X")
            and 0 < i < len(out) - 1
            and out[i - 1].kind in ("num", "rp")
            and out[i + 1].kind in ("num", "lp")
        ):
            out[i] = _Tok("op", "\u00d7", t.start, t.end)


def _num_value(text: str) -> tuple[Fraction, bool]:
    pct = text.endswith("%")
    t = text.rstrip("%").replace("$", "").replace(",", "").strip()
    if len(t) > _MAX_DIGITS:
        raise ValueError("number too long")
    return Fraction(t), pct


class _Eval:
    """Recursive descent over a token span, exact."""

    def __init__(self, toks: list[_Tok]):
        self.t = toks
        self.i = 0
        self.depth = 0

    def peek(self) -> _Tok | None:
        return self.t[self.i] if self.i < len(self.t) else None

    def run(self) -> Fraction | None:
        v = self.expr()
        if self.i != len(self.t):
            raise ValueError("trailing tokens")
        return v

    def expr(self):
        v = self.term()
        while (p := self.peek()) is not None and p.kind == "op" and p.text in "+-":
            self.i += 1
            w = self.term()
            v = None if v is None or w is None else (v + w if p.text == "+" else v - w)
        return v

    def term(self):
        v = self.unary()
        while (p := self.peek()) is not None:
            if p.kind == "op" and p.text in "*/\u00d7\u00f7":
                self.i += 1
                w = self.unary()
                if p.text in "/\u00f7":
                    v = None if v is None or w is None or w == 0 else v / w
                else:
                    v = None if v is None or w is None else v * w
            elif p.kind == "word" and p.text == "of":
                self.i += 1
                w = self.unary()
                v = None if v is None or w is None else v * w
            elif p.kind == "lp":  # implicit product: 2(3 + 4)
                w = self.unary()
                v = None if v is None or w is None else v * w
            else:
                break
        return v

    def unary(self):
        p = self.peek()
        if p is None:
            raise ValueError("unexpected end")
        if p.kind == "op" and p.text == "-":
            self.i += 1
            v = self.unary()
            return None if v is None else -v
        if p.kind == "num":
            self.i += 1
            value, pct = _num_value(p.text)
            return value / 100 if pct else value
        if p.kind == "lp":
            self.depth += 1
            if self.depth > _MAX_DEPTH:
                raise ValueError("too deep")
            self.i += 1
            v = self.expr()
            q = self.peek()
            if q is None or q.kind != "rp":
                raise ValueError("unbalanced")
            self.i += 1
            self.depth -= 1
            return v
        raise ValueError(f"unexpected {p.text!r}")


def _left_span(toks: list[_Tok], e: int) -> list[_Tok] | None:
    j = e - 1
    while j >= 0:
        t = toks[j]
        if t.kind in ("num", "op", "lp", "rp"):
            j -= 1
        elif t.kind == "word" and t.text == "of" and j > 0 and toks[j - 1].text.endswith("%"):
            j -= 1
        else:
            break
    span = toks[j + 1 : e]
    # Markdown bullets/bold and unmatched opening brackets are not part of it.
    while span and span[0].kind == "op" and span[0].text == "*":
        span = span[1:]
    while span and span[0].kind == "lp" and sum(t.kind == "lp" for t in span) > sum(t.kind == "rp" for t in span):
        span = span[1:]
    if not span:
        return None
    prev = toks[j] if j >= 0 and span[0] is toks[j + 1] else None
    if prev is not None:
        if prev.kind == "word" and len(prev.text) == 1 and prev.text not in ("a", "A", "I"):
            # A single letter right before: a variable ("x + 3 = 5", "f(2) = 4").
            return None
        if prev.kind == "other" and prev.text in _BLOCKING_OTHER:
            return None
    first = span[0]
    if first.kind == "op" and first.text != "-":
        return None
    if first.kind == "rp":
        return None
    nums = sum(t.kind == "num" for t in span)
    ops = sum(t.kind == "op" for t in span) + sum(t.kind == "word" for t in span)
    if nums < 2 or ops < 1 or (first.kind == "op" and ops < 2):
        return None
    # "80 - 25%": a percent next to + or - is ambiguous (of what?); skip it.
    for k, t in enumerate(span):
        if t.kind == "num" and t.text.endswith("%"):
            near = [span[x] for x in (k - 1, k + 1) if 0 <= x < len(span)]
            if any(n.kind == "op" and n.text in "+-" for n in near):
                return None
    return span


def _claim(toks: list[_Tok], e: int):
    """(value, is_percent, end_index) of a plain number after '=', else None."""
    k = e + 1
    sign = 1
    if k < len(toks) and toks[k].kind == "op" and toks[k].text == "-":
        sign = -1
        k += 1
    if k >= len(toks) or toks[k].kind != "num":
        return None
    value, pct = _num_value(toks[k].text)
    end = k
    nxt = toks[k + 1] if k + 1 < len(toks) else None
    if (
        nxt is not None
        and nxt.kind == "op"
        and nxt.text == "/"
        and not pct
        and k + 2 < len(toks)
        and toks[k + 2].kind == "num"
        and not toks[k + 2].text.endswith("%")
    ):
        den, _ = _num_value(toks[k + 2].text)
        if den == 0:
            return None
        value = value / den
        end = k + 2
        nxt = toks[k + 3] if k + 3 < len(toks) else None
    if nxt is not None:
        if nxt.kind == "op":
            return None  # the right side is an expression, not a result
        if nxt.kind == "lp" and nxt.start == toks[end].end:
            return None
        if nxt.kind == "other" and nxt.text in "^_":
            return None
        if nxt.kind == "word" and len(nxt.text) == 1 and nxt.start == toks[end].end:
            return None  # "= 3x"
    return sign * value, pct, end


def _rounds_to(actual: Fraction, claimed_text: str, claimed: Fraction) -> bool:
    t = claimed_text.rstrip("%").strip()
    if "." not in t:
        return False
    d = len(t.split(".")[-1])
    return abs(actual - claimed) <= Fraction(1, 2 * 10**d)


def _prepare(text: str) -> str:
    text = _CALC_RE.sub("", text)
    if "\\" in text or "*" in text or "_" in text or "\u2212" in text or "{" in text:
        text = _LATEX_FRAC_RE.sub(r"(\1/\2)", text)
        for a, b in _LATEX_SUBS:
            text = text.replace(a, b)
    return text


def check_arithmetic(text: str, *, rounding: bool = False) -> list[ArithmeticCheck]:
    """Every checkable ``a op b ... = c`` in ``text``, in order, checked exactly.

    Args:
      text: a solution or model output.
      rounding: also accept a decimal result rounded to its written places
        (``10 / 3 = 3.33``). Off by default: the check is exact.
    """
    if not isinstance(text, str) or "=" not in text:
        return []
    text = _prepare(text)
    out: list[ArithmeticCheck] = []
    # Only "=" right after a number, ")" or "%" and before a number can be a
    # checkable equation; tokenising just around those keeps prose cheap.
    for m in _CANDIDATE_RE.finditer(text):
        p = m.start(1)
        check = _check_at(text, p, rounding)
        if check is not None:
            out.append(check)
    return out


def _check_at(text: str, p: int, rounding: bool) -> ArithmeticCheck | None:
    line_start = text.rfind("\n", 0, p) + 1
    line_end = text.find("\n", p)
    if line_end < 0:
        line_end = len(text)
    floor = max(line_start, p - _WINDOW, text.rfind("=", line_start, p) + 1)
    # Walk back over characters an arithmetic expression can hold, then to the
    # start of the word before it (the tokens then decide what is what).
    left = p
    while left > floor:
        if text[left - 1] in _ARITH_CHARS:
            left -= 1
        elif text.startswith("of", left - 2):
            left -= 2
        else:
            break
    left = max(floor, left - 1)  # the token before the expression matters too
    while left > line_start and text[left - 1].isalpha():
        left -= 1
    toks = _tokenize_at(text, left, p)
    e = len(toks)
    toks.append(_Tok("eq", "=", p, p + 1))
    toks.extend(_tokenize_at(text, p + 1, min(line_end, p + 1 + _RIGHT_WINDOW)))
    _mark_times(toks)
    span = _left_span(toks, e)
    if span is None:
        return None
    try:
        claim = _claim(toks, e)
        if claim is None:
            return None
        actual = _Eval(span).run()
    except (ValueError, ZeroDivisionError, ArithmeticError):
        return None
    value, pct, end = claim
    claimed = value / 100 if pct else value
    ok = actual is not None and actual == claimed
    if not ok and pct and actual is not None and actual == value:
        claimed, ok = value, True
    if not ok and rounding and actual is not None:
        ok = _rounds_to(actual, toks[end].text, claimed)
    return ArithmeticCheck(text[span[0].start : toks[end].end].strip(), claimed, actual, ok)


def has_arithmetic_slip(text: str, *, rounding: bool = False) -> bool:
    """Whether any checked equation in ``text`` is wrong (see :func:`check_arithmetic`)."""
    return any(not c.ok for c in check_arithmetic(text, rounding=rounding))


@dataclasses.dataclass(frozen=True)
class ArithmeticProfile:
    """What the checker found in one solution.

    Attributes:
      slip: some equation is wrong (exactly).
      slip_rounding: some equation is wrong even when rounded decimals are accepted.
      equations: equations checked.
      first_wrong: 0-based index (among the checked equations, in text order) of
        the first exactly-wrong one; None when all are right.
    """

    slip: bool
    slip_rounding: bool
    equations: int
    first_wrong: int | None


def arithmetic_profile(text: str) -> ArithmeticProfile:
    """The checker's findings for ``text`` in one pass (see :class:`ArithmeticProfile`)."""
    exact_slip = rounded_slip = False
    first_wrong = None
    checks = check_arithmetic(text, rounding=False)
    for i, c in enumerate(checks):
        if not c.ok:
            if first_wrong is None:
                first_wrong, exact_slip = i, True
            if c.actual is None or not _rounds_to(c.actual, _claim_text(c.expression), c.claimed):
                rounded_slip = True
    return ArithmeticProfile(exact_slip, rounded_slip, len(checks), first_wrong)


def slip_flags(text: str) -> tuple[bool, bool]:
    """(exact slip, slip even when rounded decimals are accepted), in one pass."""
    p = arithmetic_profile(text)
    return p.slip, p.slip_rounding


def _claim_text(expression: str) -> str:
    return expression.rsplit("=", 1)[-1].strip().lstrip("$").strip()
