"""Extraction without a final-answer marker (math spans), number formats, lead-ins, gold lists.

Every rule has its own examples and near misses that must not extract (or
grade as) the wrong thing. None of these are copied from a peer's test set.
"""

import time

import pytest

from mathjax import grader
from mathjax.grader import spans
from mathjax.grader.boxes import is_joiner, last_boxed

# ---- the last math span, when there is no marker --------------------------------

SPANS = [
    # an output that is one span: the whole span, not its last number
    ("$(4,-1)$", "(4,-1)"),
    ("$$(-\\infty, 2]$$", "(-\\infty, 2]"),
    ("$(2,5]$", "(2,5]"),
    ("$y \\in [1,4]$", "y \\in [1,4]"),
    ("$-2x < 6$", "-2x < 6"),
    ("$\\begin{pmatrix}2&1\\\\1&3\\end{pmatrix}$", "\\begin{pmatrix}2&1\\\\1&3\\end{pmatrix}"),
    ("\\[ x = 4 \\]", "x = 4"),
    ("\\( \\frac{2}{3} \\)", "\\frac{2}{3}"),
    ("$$\nx = 2\n$$", "x = 2"),
    ("$\\text{odd}$", "\\text{odd}"),
    ("$C$", "C"),
    ("$a_{12}$", "a_{12}"),  # a number inside the span is not a number after it
    # a span closing a sentence; a relation stays a relation
    ("The rotation matrix is $ \\begin{pmatrix}0&-1\\\\1&0\\end{pmatrix} $.",
     "\\begin{pmatrix}0&-1\\\\1&0\\end{pmatrix}"),
    ("Hence $t \\le 4$ holds.", "t \\le 4"),
    ("So we conclude $y > -2$.", "y > -2"),
    ("So we choose $B$.", "B"),
    # TeX grouping braces and end punctuation are not part of the answer
    ("$${4, 6, 8}$$", "4, 6, 8"),
    ("the count is $2{,}024.$", "2{,}024"),
    ("we get $7,$", "7"),
    # spans joined by "," / "and" / "or" form one list
    ("The roots are $2$ and $5$.", "2, 5"),
    ("$1$, $4$, or $9$", "1, 4, 9"),
    ("so $x = 2$ or $x = -3$", "x = 2, x = -3"),
    ("$a$ \\text{and} $b$", "a, b"),
]


@pytest.mark.parametrize("text,expected", SPANS)
def test_last_span(text, expected):
    assert grader.extract_answer(text) == expected


SPAN_NEAR_MISSES = [
    # a plain number written after the last span is the later item
    ("We have $x = 3$, so there are 12 apples.", "12"),
    ("Let $n = 4$. Then we need 3 more.", "3"),
    # currency signs pair up into "spans" of prose: the number after them wins
    ("She had $5 and spent $2, so she has $3 left.", "3"),
    ("Tickets cost $5 each. So 4 tickets cost $20.", "20"),
    ("He paid $4 for the book and then some more money $", "4"),
    # a lone variable after a number in the same sentence names the quantity
    ("There are 12 ways to choose $k$.", "12"),
    # spans next to each other, or of different kinds, are not one list
    ("$y = 8 - 2$ $y = 6$", "y = 6"),
    ("We know $5 > 3$, and $x = 2$.", "x = 2"),
    ("first $3$ then $4$", "4"),
    # a span cannot run over a blank line (an unmatched "$" was currency)
    ("$x$\n\n$$y = 3", "3"),
    # no span at all: the last number, as before
    ("Total = 3 + 4 = 7, so the final count is 7 apples.", "7"),
]


@pytest.mark.parametrize("text,expected", SPAN_NEAR_MISSES)
def test_span_near_misses(text, expected):
    assert grader.extract_answer(text) == expected


def test_spans_need_the_fallback():
    # Without the fallback only explicit markers count (format rewards, question filters).
    assert grader.extract_answer("$x = 3$", fallback=None) is None
    assert grader.extract_answer("We get $\\frac12$.", fallback=None) is None
    assert grader.extract_answer("The answer is $\\frac12$.", fallback=None) == "\\frac12"


GRADE = [
    ("$(4,-1)$", "(4,-1)", True),
    ("$(4,-1)$", "-1", False),  # the last number of a pair is not the pair
    ("So she needs $12 - 5 = 7$ more apples.", "7", True),
    ("So she needs $12 - 5 = 7$ more apples.", "5", False),
    ("Hence $t \\le 4$ holds.", "t \\leq 4", True),
    ("Hence $t \\le 4$ holds.", "4", False),  # a relation is not its number
    ("The roots are $2$ and $5$.", "2, 5", True),
    ("The roots are $2$ and $5$.", "5", False),
    ("$-(1,2]$", "(1,2]", False),  # a sign in front of the span is kept
]


@pytest.mark.parametrize("text,gold,expected", GRADE)
def test_span_grades(text, gold, expected):
    assert grader.grade(text, gold) is expected


# ---- a relation with \neq, and denials -------------------------------------------

def test_neq_relation_is_extracted_as_a_relation():
    assert grader.extract_answer("So $y \\neq 4$.") == "y \\neq 4"
    assert grader.extract_answer("We get $y != 4$") == "y != 4"
    assert grader.grade("So $y \\neq 4$.", "y \\ne 4")
    assert grader.grade("We get $y != 4$", "y \\neq 4")
    # ... and never grades as the value it excludes
    assert not grader.grade("So $y \\neq 4$.", "4")
    assert not grader.grade("We get $y != 4$", "4")


@pytest.mark.parametrize("text", [
    "t is not $4$.",  # a prose denial of the span
    "The answer is not $4$.",
    "Then t is not 4.",
    "We get $\\neq 4$",  # a span that is only a denial
    "so t \\neq 4",  # a relation in prose, not in a span: the number is denied
])
def test_denials_give_no_answer(text):
    assert grader.extract_answer(text) is None
    assert not grader.grade(text, "4")


# ---- signs and number formats -----------------------------------------------------

FORMATS = [
    ("-\\frac{7}{3}", "-\\frac{7}{3}"),
    ("so y = -\\sqrt{5}", "-\\sqrt{5}"),
    ("x = 5 - \\frac{1}{2}", "\\frac{1}{2}"),  # a binary minus is not a sign
    (".25", ".25"),
    ("the ratio is .75 overall", ".75"),
    ("2 500", "2500"),
    ("12 345 678", "12345678"),
    ("1\\,500", "1500"),
    ("12 3456", "3456"),  # not groups of three: not one number
    ("it is 3/7.", "3/7"),  # a fraction before a full stop
    ("$\\frac25 $", "\\frac25"),
    ("$\\sqrt5 $", "\\sqrt5"),
    ("$-(1,2]$", "-(1,2]"),
]


@pytest.mark.parametrize("text,expected", FORMATS)
def test_number_formats(text, expected):
    assert grader.extract_answer(text) == expected


def test_format_grades():
    assert grader.grade("-\\frac{7}{3}", "-7/3")
    assert not grader.grade("-\\frac{7}{3}", "7/3")  # a lost sign would be a false "equal"
    assert grader.grade(".25", "\\frac14")
    assert grader.grade("2 500", "2500")
    assert not grader.grade("12 3456", "123456")


# ---- lead-ins, approximations, turns, quotes ---------------------------------------

LEAD_INS = [
    ("Final Answer: The smallest possible number of red marbles left in the jar after the second draw is 23.",
     "23"),
    ("Final Answer: The total number of handshakes among the guests at the party of $n$ people is 45.", "45"),
    ("$h\\approx 2.5$", "2.5"),
    ("$\\approx 7$", "7"),
    ("$2x \\approx 5$", "2x \\approx 5"),  # not a name: left alone
    ("The answer is 4.<|start_header_id|>user<|end_header_id|> 9", "4"),
    ("It is 4.<start_of_turn>user 9", "4"),
    ("It is 4. [INST] What is 9? [/INST] 9", "4"),
    ('The final answer is \\"$4 $ and $9 $\\". I hope it is correct.', "4, 9"),
    ("The final answer is $4$ and $9$. I hope it is correct.", "4, 9"),
    ("The answer is $5. She also has $3.", "5"),  # currency signs, not a span
    # a list only when it ends the answer sentence
    ("The answer is $5$, and $5 > 3$ so we are done.", "5"),
    ("The answer is $2$ and then $3$.", "2"),
]


@pytest.mark.parametrize("text,expected", LEAD_INS)
def test_lead_ins(text, expected):
    assert grader.extract_answer(text) == expected


def test_approximation_grades():
    assert grader.grade("$h\\approx 2.5$", "2.5")
    assert not grader.grade("$h\\approx 2.5$", "2.4")


# ---- double-escaped LaTeX ---------------------------------------------------------

def test_double_escaped_commands_read_as_single():
    assert grader.extract_answer("so $x = \\\\frac{1}{2}$") == "x = \\frac{1}{2}"
    got = grader.extract_answer("Thus $\\\\boxed{\\\\left( 2, \\\\frac{\\\\pi}{3} \\\\right)}.$")
    assert got == "\\left( 2, \\frac{\\pi}{3} \\right)"
    assert grader.grade("Thus $\\\\boxed{\\\\left( 2, \\\\frac{\\\\pi}{3} \\\\right)}.$", "(2, \\frac{\\pi}{3})")


def test_row_breaks_are_not_double_escapes():
    # "\\" then a variable or "\\\frac" (a row break, then \frac) stay as written.
    assert spans.undouble("\\begin{pmatrix} 1 \\\\x \\end{pmatrix}") == "\\begin{pmatrix} 1 \\\\x \\end{pmatrix}"
    assert spans.undouble("a \\\\\\frac{1}{2}") == "a \\\\\\frac{1}{2}"
    assert spans.undouble("1 \\\\ 2") == "1 \\\\ 2"
    assert spans.undouble("\\\\fraction") == "\\\\fraction"  # not a command name


# ---- boxes and lists on both sides ------------------------------------------------

def test_gold_lists():
    gold = grader.gold_from_solution
    assert gold("\\boxed{3} apples and \\boxed{4} pears") == "3, 4"
    assert gold("$7,2$ or $5$") == "7,2, 5"
    assert gold("$(a,b)=(1,2)$") == "(a,b)=(1,2)"
    assert gold("\\[ \\boxed{q = 2 \\text{ and } q = \\dfrac{1}{3}} \\]") == "q = 2 \\text{ and } q = \\dfrac{1}{3}"
    # near misses: separate statements, and prose that is not only maths
    assert gold("first \\boxed{3} then \\boxed{4}") == "4"
    assert gold("\\boxed{3} is wrong and \\boxed{4}") == "4"
    assert gold("We get 5 apples") is None
    assert gold("$x$ is big and $y$") is None


def test_box_joiners_with_units_and_part_labels():
    assert last_boxed("$$\\boxed{(1, 2)} \\text{ for part (a) and } \\boxed{(3, 4)}$$") == "(1, 2), (3, 4)"
    assert last_boxed("\\boxed{6} cm and \\boxed{8} cm") == "6, 8"
    for gap in [" apples and ", " for part (a) and ", " square units, "]:
        assert is_joiner(gap), gap
    for gap in [" apples ", " then, ", " is wrong and ", " cm and then ", " so and ", " seems wrong, ", " earlier, and "]:
        assert not is_joiner(gap), gap


def test_span_joiners():
    for gap in [", ", " and ", ", and ", " or ", " \\text{ or } ", ";"]:
        assert spans.is_span_joiner(gap), gap
    for gap in ["", " ", " then ", " andy ", " and then "]:
        assert not spans.is_span_joiner(gap), gap


# ---- bounded work -----------------------------------------------------------------

BOUNDED = [
    "a $" * 30000,
    "we have $x_1 = 2$ and " * 5000,
    "$1$, " * 20000,
    "\\\\" * 30000,
    "1 000 " * 20000,
    "\\boxed{1} papers and " * 5000,
    "$$" + "x" * 60000,
]


@pytest.mark.parametrize("text", BOUNDED, ids=range(len(BOUNDED)))
def test_span_scan_is_bounded(text):
    t = time.perf_counter()
    grader.extract_answer(text)
    grader.gold_from_solution(text)
    assert time.perf_counter() - t < 1.0


def test_joined_lists_are_capped():
    assert grader.extract_answer("$1$, " * 20000).count("1") <= 16
