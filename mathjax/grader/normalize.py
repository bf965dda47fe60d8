"""String-level clean-up of an extracted answer before it is parsed.

Everything here is plain string surgery (no evaluation): it removes LaTeX
presentation noise (``$``, ``\\left``, spacing, ``\\dfrac``, ``\\text{}``
wrappers, unicode operators, quotes, a leading ``\\approx``, number words,
trailing units) so that the parser in :mod:`latex` sees one canonical spelling,
and so that two answers that differ only in presentation are already equal as
strings (the cheapest possible comparison). A parenthesised variable after a
number is kept (``2(a)``, ``\\sin^2(x)``): only words are units.

Each step is linear in the input; inputs longer than :data:`MAX_ANSWER_CHARS`
are refused (:class:`AnswerTooLong`) before any work is done.
"""

from __future__ import annotations

import re

from mathjax.grader import latex
from mathjax.grader.boxes import (  # noqa: F401  (re-exported: older import sites)
    all_boxed_spans,
    boxed_at as _boxed_at,
    find_balanced,
    last_boxed,
)
from mathjax.grader.numwords import words_to_number
from mathjax.grader.geometry import canonical_names

# Longer answers are not answers; refusing them bounds every later step.
MAX_ANSWER_CHARS = 1000


class AnswerTooLong(ValueError):
    """The answer exceeds :data:`MAX_ANSWER_CHARS` (counted as "oversize")."""


# Wrappers whose content is kept as plain text/maths (balanced-brace aware).
_UNWRAP_CMDS = (
    "text", "textbf", "textit", "textrm", "textsf", "texttt", "textnormal", "mathrm", "mathbf",
    "mathit", "mathsf", "mathtt", "mbox", "hbox", "operatorname", "boldsymbol", "bm", "emph",
    "textup", "mathnormal", "displaystyle", "boxed", "fbox", "framebox", "underline",
)
_UNWRAP_RE = re.compile(r"\\(" + "|".join(_UNWRAP_CMDS) + r")\s*\*?\s*\{")

_UNICODE = {
    "\u2212": "-", "\u2013": "-", "\u2014": "-", "\u00d7": "\\times ", "\u00f7": "\\div ",
    "\u00b7": "\\cdot ", "\u22c5": "\\cdot ", "\u2264": "\\le ", "\u2265": "\\ge ", "\u2260": "\\ne ",
    "\u221e": "\\infty ", "\u03c0": "\\pi ", "\u221a": "\\sqrt", "\u00b0": "^\\circ ", "\u222a": "\\cup ",
    "\u2208": "\\in ", "\u2205": "\\emptyset ", "\u00bd": "(1/2)", "\u00bc": "(1/4)", "\u00be": "(3/4)",
    "\u2061": "", "\u200b": "", "\u00a0": " ", "\u2009": " ", "\u202f": " ", "\u2032": "'",
    "\u2248": "\\approx ", "\u00b2": "^2", "\u00b3": "^3", "\uff0c": ",", "\u3002": ".", "\uff1a": ":",
}
_UNICODE_RE = re.compile("|".join(re.escape(k) for k in _UNICODE))

# Pure presentation: sizing, spacing, style switches.
_NOISE_RE = re.compile(
    r"\\(?:left|right|bigl|bigr|Bigl|Bigr|biggl|biggr|Biggl|Biggr|big|Big|bigg|Bigg|middle)(?![a-zA-Z])"
    r"|\\(?:displaystyle|textstyle|scriptstyle|limits|nolimits|quad|qquad|enspace|thinspace|negthinspace)(?![a-zA-Z])"
    r"|(?<!\\)\\[;: ]|\\hspace\*?\{[^{}]*\}|\\vspace\*?\{[^{}]*\}|\\phantom\{[^{}]*\}|\\mathstrut"
)
_THOUSANDS_BANG_RE = re.compile(r"(?<=\d),\\!\s*(?=\d{3})")
_TIGHT_SPACE_RE = re.compile(r"(?<!\\)\\[,!]")
_FRAC_RE = re.compile(r"\\[dtc]frac(?![a-zA-Z])")
_BINOM_RE = re.compile(r"\\[dt]binom(?![a-zA-Z])")
_THOUSANDS_RE = re.compile(r"^-?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
# "1{,}234", "14 {, }916": a LaTeX thousands comma, spaced or not.
_LATEX_THOUSANDS_RE = re.compile(r"(?<=\d)\s?\{\s?,\s?\}\s?(?=\d{3}(?!\d))")
_EMBEDDED_THOUSANDS_RE = re.compile(r"(?<![\d.,])\d{1,3}(?:,\d{3})+(?![\d,])")
_SPACE_THOUSANDS_RE = re.compile(r"^-?\d{1,3}(?: \d{3})+(?:\.\d+)?$")
_SEPARATOR_WORDS_RE = re.compile(r"(?i)(?<![a-zA-Z\\])(?:and|or)(?![a-zA-Z])")
_UNION_U_RE = re.compile(r"([)\]])\s*U\s*([(\[])")
# "18 (dollars)": a trailing parenthetical of words after a number is a unit.
# "2(a)", "x^2(y)", "\sin^2(x)", "f^{-1}(x)" are products / function
# arguments, not units: see _is_unit_words.
_PAREN_WORDS_RE = re.compile(r"(?<=[\d}%])\s*\(\s*([A-Za-z][A-Za-z .]*)\)\s*\.?\s*$")
# Leading "≈ 11", "\approx 11", "\sim 11": the value after the sign.
_LEAD_APPROX_RE = re.compile(r"^(?:\\approx|\\sim|\\simeq)(?![a-zA-Z])\s*")
_QUOTE_PAIRS = (('"', '"'), ("\u201c", "\u201d"), ("``", "''"), ("'", "'"), ("\u2018", "\u2019"))
# In "(sin x)" a function name owns an argument; "(pi)", "(theta)" are values.
_FUNCTION_WORDS = frozenset(latex.FUNCS_1 | latex.FUNCS_N)
_SYMBOL_WORDS = frozenset(w.lower() for w in latex.GREEK) | {"pi", "e", "i", "inf", "infty", "infinity"}
_TEXT_UNIT_RE = re.compile(
    r"(?<=[\d}%)])\s*\\(?:text|mbox|mathrm|textrm|textnormal|textit|mathit)\s*"
    r"\{\s*(?!(?:and|or|[ap]\.?\s*m\.?)\s*\})[A-Za-z][A-Za-z .]*\}\s*(?:\^\s*\{?\s*\d\s*\}?)?(?=\s*(?:$|[,;]))"
)
_MATHBB_RE = re.compile(r"\\mathbb\s*\{?\s*R\s*\}?")
_PERCENT_WORD_RE = re.compile(r"(?i)\s*(?:percent|per cent)(?![a-zA-Z])")
_TRAILING_PUNCT = " \t\n.,;:?"
_WS_RE = re.compile(r"\s+")
_LETTER_RE = re.compile(r"[A-Za-z]{3}")
_MARKDOWN_RE = re.compile(r"\*\*|__")
# Currency signs are dropped like "\$": "€77", "77 €", "\pounds 5", "\textdollar 5".
_CURRENCY_RE = re.compile(
    r"[\u20ac\u00a3\u00a5]|\\(?:euro|pounds|yen|textdollar|texteuro|textsterling|textyen)(?![a-zA-Z])"
)
# "\\frac{1}{5}" written out of a string literal: every command doubled.
_DOUBLED_CMD_RE = re.compile(r"\\\\[a-zA-Z]")
_SINGLE_CMD_RE = re.compile(r"(?<!\\)\\[a-zA-Z]")
# "\\dfrac{1}{2} +\frac{1}{72}" (MATH, MARIO_EVAL golds): a doubled backslash before a
# fraction or root that takes an argument ("{" or a digit) is that command, even when other
# commands are single (undouble_escapes then does nothing). A row break followed by the
# literal text "frac{" is never meant. Only these names: "1\\pi" in a matrix is a row break.
_DOUBLED_FRAC_RE = re.compile(r"(?<!\\)\\\\(?=(?:[dt]?frac|sqrt)[{\d])")
# Opening and closing a matrix environment (the names the parser reads, latex._MATRIX_ENVS).
_MATRIX_ENV_RE = re.compile(r"\\(begin|end)\s*\{\s*(?:" + "|".join(sorted(latex._MATRIX_ENVS)) + r")\s*\}")
# "-6\6", "0\-3", "11\-36" inside a matrix: a row break "\\" that lost one backslash (MATH
# golds, JSON-mangled outputs). "\6", "\-", "\+", "\." are no commands a matrix entry can hold.
_LOST_ROW_BREAK_RE = re.compile(r"(?<!\\)\\(?=[-+.\d])")
# "\quadx_{2}": a space command glued to the next name.
_GLUED_QUAD_RE = re.compile(r"\\q?quad(?=[a-zA-Z])")


def _unwrap_commands(s: str) -> str:
    """Replace ``\\text{X}``-like wrappers by `` X `` (balanced braces)."""
    # Bounded: each pass removes one wrapper, and there are at most len(s)/5.
    while True:
        m = _UNWRAP_RE.search(s)
        if not m:
            return s
        end = find_balanced(s, m.end() - 1)
        if end < 0:
            # Unbalanced: drop the command name, keep the rest.
            s = s[: m.start()] + s[m.end() - 1 :]
            continue
        s = s[: m.start()] + " " + s[m.end() : end] + " " + s[end + 1 :]


def strip_dollars(s: str) -> str:
    """Remove math delimiters: ``$``, ``$$``, ``\\(\\)``, ``\\[\\]`` and ``\\$``."""
    s = s.replace("\\$", " ").replace("$", " ")
    s = s.replace("\\(", " ").replace("\\)", " ")
    # "\[" at the start and "\]" at the end only: "\[" may not be an interval end.
    t = s.strip()
    if t.startswith("\\[") and t.endswith("\\]"):
        t = t[2:-2]
    return t


def normalize_answer(ans: str, *, thousands: bool = True) -> str:
    """Canonical spelling of an answer string, as the parser expects it.

    ``thousands=False`` keeps ``1,234`` as written (the list reading of an
    ambiguous ``70,110``).

    Raises:
      AnswerTooLong: when the input exceeds :data:`MAX_ANSWER_CHARS`.
    """
    if len(ans) > MAX_ANSWER_CHARS:
        raise AnswerTooLong(len(ans))
    s = ans.strip()
    boxed = last_boxed(s) if "box" in s else None
    if boxed is not None:
        s = boxed
    s = _UNICODE_RE.sub(lambda m: _UNICODE[m.group(0)], s)
    s = _MARKDOWN_RE.sub("", s)
    s = undouble_escapes(s)
    if "\\\\" in s:
        s = _DOUBLED_FRAC_RE.sub(r"\\", s)  # before _FRAC_RE, which would leave "\\frac"
    if "begin" in s:
        s = restore_row_breaks(s)
    s = _GLUED_QUAD_RE.sub(" ", s)
    s = _CURRENCY_RE.sub(" ", s)
    s = strip_dollars(s)
    s = _LATEX_THOUSANDS_RE.sub("", s)
    s = s.replace("\\%", "%").replace("\\#", "#").replace("\\&", "&")
    # Negative and thin spaces vanish ("1,\\!000", "5\\,000"); others become spaces.
    s = _THOUSANDS_BANG_RE.sub(",", s)
    s = _TIGHT_SPACE_RE.sub("", s)
    s = _NOISE_RE.sub(" ", s)
    s = s.replace("~", " ")
    s = _FRAC_RE.sub("\\\\frac", s)
    s = _BINOM_RE.sub("\\\\binom", s)
    s = _MATHBB_RE.sub("\\\\reals ", s)
    if "{" in s:
        # "144 \\mbox{ m}^3", "3\\text{ cm}": a text unit after a quantity (at the end
        # of the answer or of a list item) goes, even a one-letter one.
        s = _TEXT_UNIT_RE.sub("", s)
        s = _unwrap_commands(s)
    s = canonical_names(s)  # \overline{BA} -> AB, \angle CBA -> \angle ABC
    s = _PERCENT_WORD_RE.sub("%", s)
    if _LETTER_RE.search(s):
        # "eighteen", "one hundred and five", "1.5 million" (before "and" becomes ",").
        spelled = words_to_number(s.strip().rstrip(_TRAILING_PUNCT))
        if spelled is not None:
            s = spelled
    s = _SEPARATOR_WORDS_RE.sub(",", s)
    s = _UNION_U_RE.sub(r"\1\\cup \2", s)
    s = _PAREN_WORDS_RE.sub(_drop_unit_words, s)
    s = _WS_RE.sub(" ", s).strip().rstrip(_TRAILING_PUNCT)
    if s.endswith("\\") and not s.endswith("\\\\"):
        # A lone backslash left at the end (a control space cut off: 185 then a backslash) is nothing.
        s = s[:-1].rstrip().rstrip(_TRAILING_PUNCT)
    # Leading "=" or ":" left over from "is: x" style extractions, and a leading
    # "\approx 11" (the value is after the sign). Each pass shortens s.
    while True:
        if s[:1] in ("=", ":"):
            s = s[1:].lstrip()
            continue
        m = _LEAD_APPROX_RE.match(s)
        if not m or not m.end():
            break
        s = s[m.end() :]
    s = _unquote(s)
    # A lone "," from "and"/"or" at the ends means nothing.
    s = s.strip(" ,")
    if not thousands:
        return s
    if _THOUSANDS_RE.match(s):
        s = s.replace(",", "")
    elif _SPACE_THOUSANDS_RE.match(s):
        s = s.replace(" ", "")
    elif "," in s and _EMBEDDED_THOUSANDS_RE.search(s):
        s = _collapse_thousands(s)
    return s


def undouble_escapes(s: str) -> str:
    """``\\\\left( \\\\frac{1}{5} \\\\right)`` -> ``\\left( \\frac{1}{5} \\right)``.

    An escaping artifact (a string literal printed with its escapes): every
    command has a doubled backslash and none has a single one. Then every
    ``\\\\`` is halved (a doubled row separator ``\\\\\\\\`` becomes ``\\\\``).
    A single-escaped answer is left alone (``\\\\`` is a matrix row break).
    """
    if "\\\\" in s and _DOUBLED_CMD_RE.search(s) and not _SINGLE_CMD_RE.search(s):
        return s.replace("\\\\", "\\")
    return s


def restore_row_breaks(s: str) -> str:
    """``\\begin{pmatrix}-6\\6\\end{pmatrix}`` -> ``\\begin{pmatrix}-6\\\\6\\end{pmatrix}``.

    Inside a matrix environment only, a single backslash directly before a digit,
    a sign or a decimal point is a row break that lost its twin. Outside one,
    nothing changes (there ``\\6`` stays an unknown command).
    """
    out = []
    depth = last = 0
    for m in _MATRIX_ENV_RE.finditer(s):  # one pass; nesting is counted, never recursed
        piece = s[last : m.start()]
        out.append(_LOST_ROW_BREAK_RE.sub(r"\\\\", piece) if depth > 0 else piece)
        out.append(m.group(0))
        depth = depth + 1 if m.group(1) == "begin" else max(depth - 1, 0)
        last = m.end()
    tail = s[last:]
    out.append(_LOST_ROW_BREAK_RE.sub(r"\\\\", tail) if depth > 0 else tail)
    return "".join(out)


def _is_unit_words(content: str) -> bool:
    """Whether ``(content)`` after a number is a unit: ``(dollars)``, ``(cm)``,
    ``(sec)``, ``(square units)``. Not variables (``2(a)`` is 2a, ``2(abc)``),
    a constant (``2(pi)``) or a function with its argument (``\\sin^2(x)``)."""
    words = content.split()
    if not words:
        return False
    for w in words:
        lw = w.lower().strip(".")
        if lw in _SYMBOL_WORDS or (len(words) > 1 and lw in _FUNCTION_WORDS):
            return False
        if lw in latex.UNIT_WORDS or len(lw) >= 4:
            continue
        # A 3-letter word ("day", "box", "ton") has a vowel in the middle; "abc", "xyz" are products.
        if len(lw) != 3 or lw[1] not in "aeiou":
            return False
    return True


def _drop_unit_words(m: re.Match) -> str:
    return "" if _is_unit_words(m.group(1)) else m.group(0)


def _unquote(s: str) -> str:
    """``"blue"`` -> ``blue``: quotes around the whole answer are not part of it."""
    for a, b in _QUOTE_PAIRS:
        if len(s) > len(a) + len(b) and s.startswith(a) and s.endswith(b):
            inner = s[len(a) : -len(b)]
            if a not in inner and b not in inner:
                return inner.strip()
    return s


def _collapse_thousands(s: str) -> str:
    """``1,600 dollars`` -> ``1600 dollars``, but ``(100,101)`` stays a pair:
    only numbers outside brackets, with exact three-digit groups, are joined."""
    out = []
    last = 0
    for m in _EMBEDDED_THOUSANDS_RE.finditer(s):
        before = s[: m.start()]
        depth = sum(before.count(c) for c in "([{") - sum(before.count(c) for c in ")]}")
        if depth == 0:
            out.append(s[last : m.start()])
            out.append(m.group(0).replace(",", ""))
            last = m.end()
    out.append(s[last:])
    return "".join(out)


def loose_text(s: str) -> str:
    """Comparison key for answers the parser cannot read ("3:1", "9 a.m."):
    case, spaces, text wrappers and trailing dots do not matter; symbols do."""
    s = _unwrap_commands(s) if "{" in s else s
    return _WS_RE.sub("", s).replace(".", "").lower()


def normalize_text(s: str) -> str:
    """Normalisation for plain-text answers: lower case, letters/digits only."""
    s = s.lower()
    s = re.sub(r"\\[a-z]+", " ", s)
    s = re.sub(r"[^a-z0-9]+", " ", s).strip()
    if s.startswith("the "):
        s = s[4:]
    return s.replace(" ", "")


def is_thousands_number(s: str) -> bool:
    """True for ``1,234`` or ``12,345.5`` (commas every three digits, no space)."""
    return bool(_THOUSANDS_RE.match(s.strip()))
