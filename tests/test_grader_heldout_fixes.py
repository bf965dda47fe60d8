"""Rules added after a held-out measurement (benchmarks/grader_heldout.py) on other projects' outputs.

Each rule has its own examples (EQUAL, checked both ways) and near misses (NOT_EQUAL, both ways);
the examples are ours, not the held-out cases. Extraction rules are checked on whole texts.
"""

import time

import pytest

from mathjax import grader
from mathjax.grader import modular, spans
from mathjax.grader.keys import answer_key
from mathjax.grader.prose_numbers import last_number

EQUAL = {
    # 1. labels.function_label: a lower-case letter with its variable in parentheses labels a function.
    "function_labels": [
        ("x(s) = 4s + 1", "4s+1"), ("v(t) = -9.8t + 20", "20 - 9.8t"), ("u(n) = n^2 - 1", "n^2-1"),
        ("x(s) = 4s+1", "x(t) = 4t + 1"), ("v(t) = 3t", "v = 3t"), ("a(n) = 2^n", "2^{n}"),
        ("u(n) = 2n", "u(k) = 2k"), ("f(x) = 2x+3", "2x+3"), ("W(n) = 1", "1"),
    ],
    # 2. normalize: currency signs are dropped like "\$".
    "currency": [
        ("\u20ac45", "45"), ("45 \u20ac", "45"), ("\u00a312.50", "12.5"), ("\u00a5300", "300"),
        ("\\euro 45", "45"), ("\\pounds 12", "12"), ("\\yen 300", "300"), ("\\textdollar 9", "9"),
        ("\\texteuro 1{,}200", "1200"), ("\\$45", "\u20ac 45"), ("\\text{\u20ac}45", "45"),
    ],
    # 3. modular: a congruence is its residue (reduced), or another congruence of the same class.
    "congruences": [
        ("m \\equiv 3 \\pmod{11}", "3"), ("\\equiv 0 \\pmod{4}", "0"), ("3 \\pmod{11}", "3"),
        ("m \\equiv 3 \\pmod {11}", "m \\equiv 14 \\pmod{11}"), ("k \\equiv 2 \\ (\\text{mod}\\ 9)", "2"),
        ("k \\equiv 2 (\\bmod 9)", "2"), ("k \\equiv 2 \\mod 9", "k \\equiv -7 \\pmod 9"),
        ("\u2261 4 (mod 6)", "4"), ("m \\equiv 3 \\pmod{11}", "m = 3"), ("\\equiv 3 \\pmod{11}", "m \\equiv 3 \\pmod{11}"),
    ],
    # 4. normalize: a lone backslash at the end (a cut-off control space) is nothing.
    "trailing_backslash": [("42\\", "42"), ("\\frac{3}{4}\\", "0.75"), ("x+1\\", "1+x"), ("7.\\", "7")],
    # 5. latex: "d \times 10^{k}" is one decimal literal, in the long-decimal rule (decimals.py).
    "scientific": [
        ("1.428571428571 \\times 10^{-1}", "\\frac{1}{7}"), ("8.33333333333333 \\cdot 10^{-2}", "\\frac1{12}"),
        ("2.5 \\times 10^{4}", "25000"), ("-3.2 \\times 10^{-2}", "-0.032"), ("2.5*10^-3", "0.0025"),
        ("6.02 \\times 10^{23}", "6.02e23"), ("1.5 \\times 10^{2} x", "150x"),
        ("3 \\times 10^{2}", "300"),
    ],
}

NOT_EQUAL = {
    "function_labels": [
        ("x(s) = 4s+1", "4s-1"), ("x(s) = 4s+1", "4t+1"), ("u(n) = n^2 - 1", "n^2"),
        # A number argument stays an equation (2u = 9 is a possible reading): never the bare value.
        ("u(2) = 9", "9"), ("f(2) = 9", "9"),
        ("x(x) = 6", "6"),  # a product, not a function
    ],
    "currency": [("\u20ac45", "46"), ("\u00a345", "4.5"), ("\\yen 300", "30")],
    "congruences": [
        ("\\equiv 3 \\pmod{11}", "14"),  # another member of the class: not the reduced residue
        ("\\equiv 3 \\pmod{11}", "4"), ("m \\equiv 14 \\pmod{11}", "14"), ("m \\equiv 14 \\pmod{11}", "3"),
        ("m \\equiv 3 \\pmod{11}", "m \\equiv 3 \\pmod{12}"), ("m \\equiv 3 \\pmod{11}", "n \\equiv 3 \\pmod{11}"),
        ("m \\equiv 3 \\pmod{11}", "n = 3"), ("m \\equiv 3 \\pmod{11}", "(3, 11)"), ("3 \\pmod{11}", "11"),
    ],
    "trailing_backslash": [("42\\", "43"), ("42\\", "4.2")],
    "scientific": [
        ("1.43 \\times 10^{-1}", "\\frac{1}{7}"),  # a short rounding stays unequal
        ("1.428571428572 \\times 10^{-1}", "\\frac{1}{7}"),  # off in the last digit
        ("1.414213562373 \\times 10^{0}", "\\sqrt{2}"),  # an irrational value stays unequal
        ("2.5 \\times 10^{4}", "2500"), ("2.5 \\times 10^{4}", "2.5"), ("2.5 \\times 10^{x}", "25"),
    ],
}


def _pairs(table):
    return [(rule, a, b) for rule, pairs in table.items() for a, b in pairs]


@pytest.mark.parametrize("rule,a,b", _pairs(EQUAL))
def test_equal_both_ways(rule, a, b):
    assert grader.is_equiv(a, b), (rule, a, b)
    assert grader.is_equiv(b, a), (rule, b, a)


@pytest.mark.parametrize("rule,a,b", _pairs(NOT_EQUAL))
def test_near_misses_both_ways(rule, a, b):
    assert not grader.is_equiv(a, b), (rule, a, b)
    assert not grader.is_equiv(b, a), (rule, b, a)


def test_congruence_parse():
    assert modular.parse_congruence("n \\equiv 5 \\pmod{17}") == ("mod", "n", 5, 17)
    assert modular.parse_congruence("x_1 \\equiv -2 \\pmod 7") == ("mod", "x_1", -2, 7)
    assert modular.parse_congruence("n \\equiv 5 \\pmod{1}") is None  # modulus 1: no congruence
    assert modular.parse_congruence("n \\equiv a \\pmod{17}") is None  # a residue must be an integer
    assert modular.parse_congruence("5 \\bmod 17 + 1") is None


def test_majority_keys_pool_congruences_only_with_their_class():
    assert answer_key("n \\equiv 5 \\pmod{17}") == answer_key("n \\equiv 22 \\pmod{17}")
    assert answer_key("n \\equiv 5 \\pmod{17}") != answer_key("n \\equiv 5 \\pmod{18}")
    assert answer_key("x(s) = 4s+1") != answer_key("4s-1")


@pytest.mark.parametrize(
    "text,expected",
    [
        # 6. spans.is_prose: a "span" with a question mark or two real words is prose, not maths.
        ("Is that cheap at $? well maybe 4$", "4"),
        ("It cost me $3 then roughly 5$", "5"),
        ("so we get $x = 3$.", "x = 3"),  # maths stays maths
        ("hence $5 \\bmod 7$", "5 \\bmod 7"),  # "bmod" is a maths word
        ("the area is $\\int_0^1 x dx$", "\\int_0^1 x dx"),
        # 7. prose_numbers: "#N" and "No. N" name items; "#### N" is still a marker.
        ("In total 8 runners beat runner #5 to the line.", "8"),
        ("So 31 tickets, and ticket No. 7 won.", "31"),
        ("Then 9 cars passed car \\#2.", "9"),
        ("The winner is #4.", "4"),  # no other number: the identifier is all there is
        ("So 12 apples.\n#### 12", "12"),
        ("Step 3 gives 40.\n####40", "40"),
        # 8. CJK: a digit run between CJK characters is a number; CJK answer markers.
        ("\u6240\u4ee5\u4e00\u5171\u670957\u4e2a\u82f9\u679c", "57"),  # 所以一共有57个苹果
        ("\u6bd4\u4e3a5/9", "5/9"),  # 比为5/9
        ("\u7b54\u6848\u662f 31\u3002\u7b2c2\u6b65\u662f\u68c0\u67e5", "31"),  # 答案是 31。第2步是检查
        ("\u7b54\u6848\uff1a12", "12"),  # 答案：12
        # A CJK answer sentence after the marker: the maths in it (答案：每人分到 \frac{3}{4} 块。).
        ("\u7b54\u6848\uff1a\u6bcf\u4eba\u5206\u5230 \\frac{3}{4} \u5757\u3002", "\\frac{3}{4}"),
        ("Respuesta: 81\nPaso 2 fue 3.", "81"),
        ("R\u00e9ponse : 14\n(\u00e9tape 3)", "14"),
        ("Antwort: 6\nSchritt 2", "6"),
    ],
)
def test_extraction(text, expected):
    assert grader.extract_answer(text) == expected


def test_lone_variable_after_prose_span_is_not_maths():
    # "$? ...$" is two currency signs; the number after it is the answer.
    assert grader.grade("How much was it $? roughly 20$ in the end", "20")


def test_regexes_are_linear_on_large_inputs():
    worst = 0.0
    bodies = [
        "#" * 20000, "No. " * 5000, "\u6709" * 20000 + "9", "1" * 20000, "$? " * 7000,
        "ab cd " * 3500, "\\equiv 5 \\pmod{" * 1300, "2.5 \\times 10^{" * 1300, "\\" * 20000,
        "\u20ac" * 20000, "x(" * 10000, "答案" * 10000, "R\u00e9ponse:" * 2000,
    ]
    for body in bodies:
        t = time.perf_counter()
        grader.extract_answer(body)
        last_number(body)
        spans.is_prose(body)
        modular.parse_congruence(body[:1000])
        grader.is_equiv(body[:1000], "5")
        worst = max(worst, time.perf_counter() - t)
    assert worst < 1.0
