"""A small, safe recursive-descent parser for LaTeX / plain-text maths answers.

Why our own parser: sympy's ``parse_latex`` needs one exact antlr4 runtime
version and, with the wrong one, fails silently (the Xwin-Math eval bug), and
``sympify``/``parse_expr`` evaluate Python code. This parser only ever builds
data: nested tuples (see below). Nothing in the input is executed, numbers are
exact ``Fraction`` s, and the input length and nesting depth are bounded, so
parsing is linear and cannot recurse without limit.

Input is the output of :func:`normalize.normalize_answer`. Output nodes are
plain tuples (hashable, so they can be cached and compared structurally):

=============================  =================================================
``("num", Fraction, sig)``     a literal; ``sig`` = significant digits of a
                               decimal literal (0 for integers/fractions)
``("sym", name)``              a variable; ``e`` and ``i`` are evaluated as
                               Euler's number and the imaginary unit
``("const", "pi"|"inf")``      pi, infinity
``("add", terms)``             sum
``("mul", factors)``           product
``("neg", x)`` ``("div", a, b)`` ``("pow", b, e)``
``("func", name, args)``       sqrt, root, sin, ..., log (args: x[, base]),
                               abs, floor, ceil, factorial, binom, gcd, ...
``("pct", x)`` ``("deg", x)``  ``x%`` and ``x°``
``("pm", a, b)``               ``a ± b``
``("rel", ops, parts)``        relation chain ``parts[0] ops[0] parts[1] ...``
``("seq", open, close, items)``  bracketed tuple / interval
``("set", items)``             ``\\{...\\}``
``("list", items)``            a bare comma-separated answer list
``("union", items)``           ``A \\cup B``
``("matrix", rows)``           ``\\begin{pmatrix}...``
``("text", s)``                a plain-text answer
``("reals",)`` ``("empty",)``  the real line, the empty set
``("bigop", op, k, lo, hi, body)``  ``\\sum_{k=lo}^{hi} body`` (op ``sum``/``prod``)
=============================  =================================================
"""

from __future__ import annotations

import re
from fractions import Fraction

# Deeper nesting than this is not a real answer (and would blow the stack).
MAX_DEPTH = 60

Node = tuple


class ParseError(ValueError):
    """The string is not an expression this parser understands."""


class TooDeep(ParseError):
    """Nesting beyond :data:`MAX_DEPTH` (counted as "oversize")."""


_NUM_RE = re.compile(r"(\d+\.\d*|\.\d+|\d+)(?:[eE]([+-]?\d+)(?![a-zA-Z]))?")
_MIXED_RE = re.compile(r"\s*\\frac\s*(?:\{\s*(\d+)\s*\}\s*\{\s*(\d+)\s*\}|(\d)(\d))")
_PLAIN_MIXED_RE = re.compile(r" +(\d+)/(\d+)(?![\d.^])()()")
_CMD_RE = re.compile(r"\\([a-zA-Z]+|.)")
_WORD_RE = re.compile(r"[a-zA-Z]+")
_WS = " \t\n\r"
_END = "\x00"

FUNCS_1 = {
    "sin", "cos", "tan", "sec", "csc", "cot", "arcsin", "arccos", "arctan", "arcsec", "arccsc",
    "arccot", "sinh", "cosh", "tanh", "coth", "sech", "csch", "exp", "ln", "log", "lg", "sqrt", "abs",
    "arg", "re", "im", "sgn", "sign", "det",
}
FUNCS_N = {"gcd", "lcm", "max", "min"}
_FUNC_ALIASES = {"lg": "log10", "sign": "sgn", "asin": "arcsin", "acos": "arccos", "atan": "arctan"}
GREEK = {
    "alpha", "beta", "gamma", "delta", "epsilon", "varepsilon", "zeta", "eta", "theta", "vartheta",
    "iota", "kappa", "lambda", "mu", "nu", "xi", "rho", "sigma", "tau", "upsilon", "phi", "varphi",
    "chi", "psi", "omega", "Gamma", "Delta", "Theta", "Lambda", "Xi", "Sigma", "Phi", "Psi", "Omega",
}
# Words (>= 2 letters) that are units or filler: dropped when next to maths.
UNIT_WORDS = {
    "cm", "mm", "km", "kg", "mg", "ft", "mi", "mph", "kph", "hr", "hrs", "min", "mins", "sec", "secs",
    "lb", "lbs", "oz", "ml", "yd", "yds", "sq", "cu", "in", "inch", "inches", "am", "pm",
}
# Two-letter words that are text, not a product of two variables.
TEXT_2 = {"no", "ok", "is", "it", "on", "of", "to", "be", "an", "as", "at", "by", "if", "up", "we", "so", "do"}
_REL_CMDS = {
    "le": "<=", "leq": "<=", "leqslant": "<=", "ge": ">=", "geq": ">=", "geqslant": ">=",
    "lt": "<", "gt": ">", "ne": "!=", "neq": "!=", "in": "in", "approx": "~", "equiv": "=",
}
_MUL_CMDS = {"cdot", "times", "ast", "bullet", "cross"}
_MATRIX_ENVS = {"pmatrix", "bmatrix", "Bmatrix", "vmatrix", "Vmatrix", "matrix", "smallmatrix", "array"}
_OPEN = {"(": ")", "[": "]"}
_CLOSER_CMDS = {"}", "rangle", "rfloor", "rceil", "rvert", "end", "\\"}
_PLAIN_FUNCS = FUNCS_1 | FUNCS_N | {"asin", "acos", "atan"}
# Commands that may start an implicit-multiplication factor.
_VALUE_CMDS = (
    {"frac", "sqrt", "pi", "infty", "binom", "lfloor", "lceil", "langle", "lvert", "reals", "emptyset",
     "varnothing", "begin", "overline", "exp", "e"}
    | FUNCS_1 | FUNCS_N | GREEK
)


def _isdigit(s: str) -> bool:
    """ASCII digits only ("¹".isdigit() is True, but the number regex is ASCII)."""
    return bool(s) and s.isascii() and s.isdigit()


def _isalpha(s: str) -> bool:
    return bool(s) and s.isascii() and s.isalpha()


def _num(value: Fraction, sig: int = 0) -> Node:
    return ("num", value, sig)


def _sig_digits(text: str) -> int:
    digits = text.replace(".", "").lstrip("0")
    return max(len(digits), 1)


class _Parser:
    """One-shot parser over a normalised answer string."""

    def __init__(self, s: str):
        self.s = s
        self.i = 0
        self.n = len(s)
        self.depth = 0
        self.words: list[str] = []

    # ---- low level -------------------------------------------------------
    def ws(self) -> None:
        s, i, n = self.s, self.i, self.n
        while i < n and s[i] in _WS:
            i += 1
        self.i = i

    def peek(self) -> str:
        self.ws()
        # NUL at the end, never "": `"" in "+-"` is True in Python.
        return self.s[self.i] if self.i < self.n else _END

    def peek_cmd(self) -> str | None:
        """Name of the command at the cursor (without consuming it), if any."""
        self.ws()
        if self.i < self.n and self.s[self.i] == "\\":
            m = _CMD_RE.match(self.s, self.i)
            if m:
                return m.group(1)
        return None

    def take_cmd(self) -> str:
        m = _CMD_RE.match(self.s, self.i)
        if not m:
            raise ParseError("bad command")
        self.i = m.end()
        return m.group(1)

    def expect(self, ch: str) -> None:
        if self.peek() != ch:
            raise ParseError(f"expected {ch!r} at {self.i}")
        self.i += 1

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise TooDeep("nesting too deep")

    def leave(self) -> None:
        self.depth -= 1

    def at_end(self, closers: str = "") -> bool:
        c = self.peek()
        return c == _END or c in closers

    # ---- grammar ----------------------------------------------------------
    def parse(self) -> Node:
        items = self.items(closers="")
        if self.i < self.n:
            raise ParseError(f"trailing input at {self.i}")
        if not items:
            if self.words:
                return ("text", " ".join(self.words))
            raise ParseError("empty")
        if len(items) == 1:
            return items[0]
        return ("list", tuple(items))

    def items(self, closers: str) -> list[Node]:
        """Comma/semicolon separated items up to (not including) a closer."""
        out: list[Node] = []
        while True:
            if self.at_end(closers):
                break
            if self.peek() in ",;":
                self.i += 1
                continue
            item = self.union()
            if item is not None:
                out.append(item)
            c = self.peek()
            if c in ",;":
                self.i += 1
                continue
            break
        return out

    def union(self) -> Node | None:
        first = self.relation()
        parts = [first] if first is not None else []
        while self.peek_cmd() == "cup":
            self.take_cmd()
            nxt = self.relation()
            if nxt is None:
                raise ParseError("dangling union")
            parts.append(nxt)
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else ("union", tuple(parts))

    def rel_op(self) -> str | None:
        c = self.peek()
        s, i = self.s, self.i
        if c == "=":
            self.i += 2 if s.startswith("==", i) else 1
            return "="
        if c in "<>":
            if s.startswith("=", i + 1):
                self.i += 2
                return c + "="
            self.i += 1
            return c
        if c == "!" and s.startswith("!=", i):
            self.i += 2
            return "!="
        if c == ":" and s.startswith(":=", i):
            self.i += 2
            return "="
        cmd = self.peek_cmd()
        if cmd in _REL_CMDS:
            self.take_cmd()
            return _REL_CMDS[cmd]
        return None

    def relation(self) -> Node | None:
        first = self.expr()
        ops, parts = [], [first]
        while True:
            op = self.rel_op()
            if op is None:
                break
            ops.append(op)
            parts.append(self.expr())
        if len(parts) == 1:
            return first
        if any(p is None for p in parts):
            raise ParseError("incomplete relation")
        return ("rel", tuple(ops), tuple(parts))

    def expr(self) -> Node | None:
        self.enter()
        terms: list[Node] = []
        pm: list[tuple[Node, Node]] = []
        sign = 1
        c = self.peek()
        if c in "+-":
            self.i += 1
            sign = -1 if c == "-" else 1
        elif self.peek_cmd() in ("pm", "mp"):
            # "\pm 3" alone: both signs.
            self.take_cmd()
            t = self.term()
            self.leave()
            if t is None:
                raise ParseError("dangling pm")
            return ("pm", _num(Fraction(0)), t)
        first = self.term()
        if first is None:
            self.leave()
            if sign == -1:
                raise ParseError("dangling minus")
            return None
        terms.append(("neg", first) if sign == -1 else first)
        while True:
            c = self.peek()
            if c in "+-":
                self.i += 1
                t = self.term()
                if t is None:
                    raise ParseError("dangling operator")
                terms.append(("neg", t) if c == "-" else t)
                continue
            cmd = self.peek_cmd()
            if cmd in ("pm", "mp"):
                self.take_cmd()
                t = self.term()
                if t is None:
                    raise ParseError("dangling pm")
                pm.append((tuple(terms), t))
                terms = []
                continue
            break
        self.leave()
        node = terms[0] if len(terms) == 1 else ("add", tuple(terms)) if terms else None
        # a \pm b (+ c): fold left, keeping the rest as a shared tail.
        for head, t in reversed(pm):
            base = head[0] if len(head) == 1 else ("add", head)
            pm_node = ("pm", base, t)
            node = pm_node if node is None else ("add", (pm_node, node))
        return node

    def term(self) -> Node | None:
        first = self.factor()
        if first is None:
            return None
        factors = [first]
        while True:
            c = self.peek()
            if c == "*" or c == "/":
                self.i += 1
                if c == "*" and self.peek() == "*":  # "**" power (plain text)
                    self.i += 1
                    e = self.factor()
                    if e is None:
                        raise ParseError("dangling power")
                    factors[-1] = ("pow", factors[-1], e)
                    continue
                f = self.factor()
                if f is None:
                    raise ParseError("dangling operator")
                sci = _scientific(factors[-1], f) if c == "*" else None
                if sci is not None:
                    factors[-1] = sci  # "2.5*10^-3"
                    continue
                factors.append(("div", _num(Fraction(1)), f) if c == "/" else f)
                continue
            cmd = self.peek_cmd()
            if cmd in _MUL_CMDS or cmd == "div":
                self.take_cmd()
                f = self.factor()
                if f is None:
                    raise ParseError("dangling operator")
                sci = _scientific(factors[-1], f) if cmd != "div" else None
                if sci is not None:
                    factors[-1] = sci  # "2.5 \times 10^{-3}" is the literal 2.5e-3
                    continue
                factors.append(("div", _num(Fraction(1)), f) if cmd == "div" else f)
                continue
            if self.starts_value(implicit=True):
                prev = factors[-1]
                f = self.factor(allow_sign=False)
                if f is None:
                    break
                if prev[0] == "num" and f[0] == "num" and not prev[2] and not f[2]:
                    raise ParseError("two numbers side by side")
                factors.append(f)
                continue
            break
        if len(factors) == 1:
            return factors[0]
        return _fold_mul(factors)

    def starts_value(self, implicit: bool = False) -> bool:
        c = self.peek()
        if c == _END:
            return False
        if _isdigit(c) or c == "." or _isalpha(c) or c in "({":
            return True
        if c == "[" and not implicit:
            return True
        if c == "\\":
            cmd = self.peek_cmd()
            return cmd in _VALUE_CMDS or cmd == "{"
        if c == "|" and not implicit:
            return True
        return False

    def factor(self, allow_sign: bool = True) -> Node | None:
        c = self.peek()
        if allow_sign and c in "+-":
            self.i += 1
            self.enter()
            f = self.factor()
            self.leave()
            if f is None:
                raise ParseError("dangling sign")
            return ("neg", f) if c == "-" else f
        return self.power()

    def power(self) -> Node | None:
        base = self.postfix()
        if base is None:
            return None
        while self.peek() == "^":
            self.i += 1
            if self.peek_cmd() == "circ":
                self.take_cmd()
                base = ("deg", base)
                continue
            if self.peek() == "{" and self.s.startswith("\\circ", self.i + 1):
                j = self.i + 1 + len("\\circ")
                while j < self.n and self.s[j] in _WS:
                    j += 1
                if j < self.n and self.s[j] == "}":
                    self.i = j + 1
                    base = ("deg", base)
                    continue
            exp = self.exponent()
            base = ("pow", base, exp)
            base = self.postfix_ops(base)
        return base

    def exponent(self) -> Node:
        self.enter()
        try:
            c = self.peek()
            if c == "{":
                self.i += 1
                e = self.relation_in_group("}")
                return e
            if c in "+-":
                self.i += 1
                e = self.exponent()
                return ("neg", e) if c == "-" else e
            if _isdigit(c):
                # Plain-text semantics: "2^10" is 2^{10} (TeX would read 2^{1}0).
                m = _NUM_RE.match(self.s, self.i)
                self.i = m.end()
                return self.number_node(m)
            if _isalpha(c):
                self.i += 1
                return ("sym", c)
            if c == "(" or c == "\\":
                e = self.primary()
                if e is None:  # "x^\\}": a closer is no exponent
                    raise ParseError("missing exponent")
                return e
            raise ParseError("bad exponent")
        finally:
            self.leave()

    def relation_in_group(self, closer: str) -> Node:
        items = self.items(closers=closer)
        self.expect(closer)
        if len(items) != 1:
            if not items:
                raise ParseError("empty group")
            return ("list", tuple(items))
        return items[0]

    def postfix(self) -> Node | None:
        p = self.primary()
        if p is None:
            return None
        return self.postfix_ops(p)

    def postfix_ops(self, p: Node) -> Node:
        while True:
            c = self.peek()
            if c == "!" and not self.s.startswith("!=", self.i):
                self.i += 1
                p = ("func", "factorial", (p,))
            elif c == "%":
                self.i += 1
                p = ("pct", p)
            elif c == "'" :
                raise ParseError("derivative prime")
            elif self.peek_cmd() == "circ":
                self.take_cmd()
                p = ("deg", p)
            elif c == "_" and p[0] == "num":
                # "1011_2": a base subscript; the digits are the answer.
                self.i += 1
                self.subscript_text()
            else:
                return p

    def subscript_text(self) -> str:
        c = self.peek()
        if c == "{":
            start = self.i + 1
            depth = 0
            while self.i < self.n:
                ch = self.s[self.i]
                if ch == "{":
                    depth += 1
                elif ch == "}":
                    depth -= 1
                    if depth == 0:
                        self.i += 1
                        return self.s[start : self.i - 1].strip()
                self.i += 1
            raise ParseError("unbalanced subscript")
        if c == "\\":
            return self.take_cmd()
        if c != _END:
            self.i += 1
            return c
        raise ParseError("empty subscript")

    def number_node(self, m: re.Match) -> Node:
        text, exp = m.group(1), m.group(2)
        if text.endswith(".") and not self.s.startswith("\\overline", m.end()):
            text = text[:-1]
        value = Fraction(text)
        sig = _sig_digits(text) if "." in text else 0
        if exp is not None:
            e = int(exp)
            if abs(e) > 400:
                raise ParseError("exponent too large")
            value *= Fraction(10) ** e
            sig = sig or _sig_digits(text)
        return _num(value, sig)

    def primary(self) -> Node | None:
        self.enter()
        try:
            return self._primary()
        finally:
            self.leave()

    def _primary(self) -> Node | None:
        c = self.peek()
        if c == _END:
            return None
        s = self.s
        if _isdigit(c) or (c == "." and self.i + 1 < self.n and _isdigit(s[self.i + 1])):
            m = _NUM_RE.match(s, self.i)
            self.i = m.end()
            node = self.number_node(m)
            if s.startswith("\\overline", self.i) and "." in m.group(1):
                node = self.repeating(m.group(1))
            elif m.group(2) is None and m.group(1).isdigit():
                node = self.mixed_number(node)
            return node
        if _isalpha(c):
            return self.word()
        if c == "(" or c == "[":
            return self.bracket(c)
        if c == "{":
            self.i += 1
            if self.peek() == "}":
                self.i += 1
                return ("empty",)
            return self.relation_in_group("}")
        if c == "|":
            self.i += 1
            inner = self.expr()
            if inner is None:
                raise ParseError("empty abs")
            self.expect("|")
            return ("func", "abs", (inner,))
        if c == "\\":
            return self.command()
        return None

    def mixed_number(self, whole: Node) -> Node:
        """``2\\frac{1}{2}`` and ``2 1/2`` are the mixed number 5/2 (as in MATH
        answers and grade-school text), not 2 * 1/2."""
        m = _MIXED_RE.match(self.s, self.i) or _PLAIN_MIXED_RE.match(self.s, self.i)
        if not m:
            return whole
        a, b = int(m.group(1) or m.group(3)), int(m.group(2) or m.group(4))
        if not 0 < a < b:
            return whole
        self.i = m.end()
        return _num(whole[1] + Fraction(a, b))

    def repeating(self, text: str) -> Node:
        """``0.1\\overline{6}`` -> 1/6 exactly."""
        self.take_cmd()  # overline
        rep = self.subscript_text() if self.peek() != "{" else self.subscript_text()
        if not _isdigit(rep) or len(rep) > 50:
            raise ParseError("bad repeating decimal")
        whole, _, frac = text.partition(".")
        whole = whole or "0"
        k, r = len(frac), len(rep)
        base = Fraction(int(whole + frac), 10**k)
        value = base + Fraction(int(rep), (10**r - 1) * 10**k)
        return _num(value, 0)

    def bracket(self, c: str) -> Node:
        self.i += 1
        items = self.items(closers=")]")
        close = self.peek()
        if close not in ")]":
            raise ParseError("unclosed bracket")
        self.i += 1
        if not items:
            raise ParseError("empty brackets")
        if len(items) == 1 and close == _OPEN[c]:
            return items[0]
        return ("seq", c, close, tuple(items))

    def word(self) -> Node | None:
        m = _WORD_RE.match(self.s, self.i)
        w = m.group(0)
        if len(w) == 1:
            self.i = m.end()
            return self.symbol(w)
        lw = w.lower()
        name = lw if lw in _PLAIN_FUNCS else "sqrt" if lw.startswith("sqrt") else None
        if name is not None:
            self.i += len(name)
            return self.function(_FUNC_ALIASES.get(name, name))
        if lw in ("pi",):
            self.i = m.end()
            return ("const", "pi")
        if lw in ("inf", "infty", "infinity"):
            self.i = m.end()
            return ("const", "inf")
        prev = self.s[self.i - 1] if self.i > 0 else " "
        after = self.s[m.end()] if m.end() < self.n else " "
        attached = _isdigit(prev) or prev in ")}" or after in "^_("
        if lw in UNIT_WORDS and (lw != "in" or not attached):
            self.i = m.end()
            self.skip_unit_power()
            self.words.append(w)
            return self.unit_placeholder()
        if attached and len(w) <= 4 and lw not in TEXT_2:
            # "2xy", "xyz^2": a product of single-letter variables.
            self.i += 1
            return self.symbol(w[0])
        if len(w) == 2 and lw not in TEXT_2:
            self.i += 1
            return self.symbol(w[0])
        # A word: a unit or filler next to maths, or a text answer on its own.
        self.i = m.end()
        self.skip_unit_power()
        self.words.append(w)
        return self.unit_placeholder()

    def skip_unit_power(self) -> None:
        # "cm^2", "units^{3}"
        if self.peek() == "^":
            j = self.i
            self.i += 1
            c = self.peek()
            if _isdigit(c):
                self.i += 1
            elif c == "{":
                self.subscript_text()
            else:
                self.i = j

    def unit_placeholder(self) -> Node | None:
        """After a dropped word: parse what follows, or nothing."""
        if self.starts_value(implicit=True):
            return self.primary()
        return None

    def symbol(self, name: str) -> Node:
        if self.peek() == "_":
            self.i += 1
            sub = self.subscript_text()
            if len(sub) > 20:
                raise ParseError("long subscript")
            name = f"{name}_{sub}"
        return ("sym", name)

    def arg(self) -> Node:
        """A TeX macro argument: ``{...}`` or a single token."""
        c = self.peek()
        if c == "{":
            self.i += 1
            return self.relation_in_group("}")
        if _isdigit(c):
            self.i += 1
            return _num(Fraction(int(c)))
        if _isalpha(c):
            self.i += 1
            return self.symbol(c)
        if c == "\\":
            node = self.command()
            if node is None:  # a closer ("\\}", "\\end") is no argument: "\\frac(x)\\}"
                raise ParseError("missing macro argument")
            return node
        if c == "(":
            return self.bracket("(")
        raise ParseError("bad macro argument")

    def command(self) -> Node | None:
        start = self.i
        name = self.take_cmd()
        if name == "frac":
            a = self.arg()
            b = self.arg()
            return ("div", a, b)
        if name == "sqrt":
            if self.peek() == "[":
                self.i += 1
                idx = self.relation_in_group("]")
                x = self.arg()
                return ("func", "root", (x, idx))
            return ("func", "sqrt", (self.arg(),))
        if name == "binom":
            a = self.arg()
            b = self.arg()
            return ("func", "binom", (a, b))
        if name == "pi":
            return ("const", "pi")
        if name == "infty" or name == "infin":
            return ("const", "inf")
        if name == "reals":
            return ("reals",)
        if name in ("emptyset", "varnothing"):
            return ("empty",)
        if name == "{":
            items = self.items(closers="")
            if self.peek_cmd() != "}":
                raise ParseError("unclosed set")
            self.take_cmd()
            return ("set", tuple(items)) if items else ("empty",)
        if name == "langle":
            items = self.items(closers="")
            if self.peek_cmd() != "rangle":
                raise ParseError("unclosed angle")
            self.take_cmd()
            return items[0] if len(items) == 1 else ("seq", "(", ")", tuple(items))
        if name in ("lfloor", "lceil"):
            inner = self.expr()
            closer = "rfloor" if name == "lfloor" else "rceil"
            if self.peek_cmd() != closer:
                raise ParseError("unclosed floor")
            self.take_cmd()
            return ("func", "floor" if name == "lfloor" else "ceil", (inner,))
        if name in ("lvert", "vert"):
            inner = self.expr()
            if self.peek_cmd() not in ("rvert", "vert"):
                raise ParseError("unclosed abs")
            self.take_cmd()
            return ("func", "abs", (inner,))
        if name in ("sum", "prod"):
            return self.big_operator(name)
        if name in GREEK:
            return self.symbol(name)
        if name == "e":
            return ("sym", "e")
        if name in FUNCS_1 or name in FUNCS_N:
            return self.function(_FUNC_ALIASES.get(name, name))
        if name == "begin":
            return self.matrix()
        if name == "circ":
            raise ParseError("stray degree")
        self.i = start
        if name in _CLOSER_CMDS:
            return None
        raise ParseError(f"unknown command \\{name}")

    def big_operator(self, name: str) -> Node:
        """``\\sum_{k=0}^{n-1} body``: ``("bigop", name, index, lo, hi, body)``; the body is one term."""
        if self.peek() != "_":
            raise ParseError("big operator without index")
        self.i += 1
        self.expect("{")
        low = self.relation_in_group("}")
        if low[0] != "rel" or low[1] != ("=",) or len(low[2]) != 2 or low[2][0][0] != "sym":
            raise ParseError("big operator index")
        if self.peek() != "^":
            raise ParseError("big operator without upper bound")
        self.i += 1
        hi = self.exponent()
        body = self.term()
        if body is None:
            raise ParseError("big operator without body")
        return ("bigop", name, low[2][0][1], low[2][1], hi, body)

    def function(self, name: str) -> Node:
        power = None
        base = None
        for _ in range(2):
            c = self.peek()
            if c == "^":
                self.i += 1
                power = self.exponent()
            elif c == "_":
                self.i += 1
                if self.peek() == "{":
                    self.i += 1
                    base = self.relation_in_group("}")
                else:
                    base = self.arg()
        c = self.peek()
        if c == "(":
            self.i += 1
            args = self.items(closers=")")
            self.expect(")")
            if not args:
                raise ParseError("empty call")
        elif c == "{":
            args = [self.arg()]
        else:
            arg = self.func_arg()
            args = [arg]
        if name in FUNCS_N:
            node = ("func", name, tuple(args))
        else:
            if len(args) != 1:
                raise ParseError("bad arity")
            fargs = (args[0], base) if (name == "log" and base is not None) else (args[0],)
            node = ("func", name, fargs)
        if power is not None:
            if name in ("sin", "cos", "tan", "sec", "csc", "cot") and power == ("neg", _num(Fraction(1))):
                node = ("func", "arc" + name, node[2])
            else:
                node = ("pow", node, power)
        return node

    def func_arg(self) -> Node:
        """Argument of ``\\sin 2x``: juxtaposed factors, no sums, no other function."""
        factors = []
        sign = None
        if self.peek() == "-":
            self.i += 1
            sign = -1
        while self.starts_value(implicit=True):
            cmd = self.peek_cmd()
            if factors and cmd in FUNCS_1:
                break
            f = self.power()
            if f is None:
                break
            factors.append(f)
        if not factors:
            raise ParseError("missing function argument")
        node = factors[0] if len(factors) == 1 else _fold_mul(factors)
        return ("neg", node) if sign else node

    def matrix(self) -> Node:
        self.expect("{")
        m = _WORD_RE.match(self.s, self.i)
        if not m or m.group(0) not in _MATRIX_ENVS:
            raise ParseError("unknown environment")
        env = m.group(0)
        self.i = m.end()
        self.expect("}")
        if env == "array" and self.peek() == "{":
            self.subscript_text()  # column spec
        rows: list[tuple[Node, ...]] = []
        row: list[Node] = []
        while True:
            cell = self.expr()
            if cell is None:
                cell = ("empty",)
            row.append(cell)
            c = self.peek()
            if c == "&":
                self.i += 1
                continue
            cmd = self.peek_cmd()
            if cmd == "\\":
                self.take_cmd()
                rows.append(tuple(row))
                row = []
                continue
            if cmd == "end":
                self.take_cmd()
                self.subscript_text()
                break
            raise ParseError("bad matrix")
        if row and not (len(row) == 1 and row[0] == ("empty",)):
            rows.append(tuple(row))
        if not rows or len({len(r) for r in rows}) != 1:
            raise ParseError("ragged matrix")
        return ("matrix", tuple(rows))


def _power_of_ten(n: Node) -> int | None:
    """``k`` for ``10^{k}`` / ``10^{-k}`` with an integer literal ``k`` (|k| <= 400), else None."""
    if n[0] != "pow" or n[1] != ("num", Fraction(10), 0):
        return None
    e, sign = n[2], 1
    if e[0] == "neg":
        e, sign = e[1], -1
    if e[0] != "num" or e[2] or e[1].denominator != 1 or e[1] > 400:
        return None
    return sign * int(e[1])


def _scientific(mantissa: Node, f: Node) -> Node | None:
    """``2.314814814815 \\times 10^{-3}``: a decimal literal times a power of ten is one decimal
    literal (its significant digits kept), read as ``2.314814814815e-3`` is (see :mod:`decimals`)."""
    sign = 1
    if mantissa[0] == "neg":
        mantissa, sign = mantissa[1], -1
    if mantissa[0] != "num" or not mantissa[2]:
        return None
    k = _power_of_ten(f)
    if k is None:
        return None
    lit = ("num", mantissa[1] * Fraction(10) ** k, mantissa[2])
    return lit if sign == 1 else ("neg", lit)


def _fold_mul(factors: list[Node]) -> Node:
    """Turn [a, ("div", 1, b), c] into a/b*c as mul/div nodes."""
    num: list[Node] = []
    den: list[Node] = []
    for f in factors:
        if f[0] == "div" and f[1] == ("num", Fraction(1), 0):
            den.append(f[2])
        else:
            num.append(f)
    top = num[0] if len(num) == 1 else ("mul", tuple(num)) if num else _num(Fraction(1))
    if not den:
        return top
    bottom = den[0] if len(den) == 1 else ("mul", tuple(den))
    return ("div", top, bottom)


def parse(s: str) -> Node:
    """Parse a normalised answer string into a node tree.

    Raises:
      ParseError: for anything outside the grammar (callers then compare the
        answers as text); :class:`TooDeep` for excessive nesting.
    """
    p = _Parser(s)
    try:
        return p.parse()
    except RecursionError as e:  # belt and braces; MAX_DEPTH should stop first
        raise TooDeep("recursion") from e
