"""Final-answer extraction from chains of thought, and grade() on realistic outputs."""

import json
import os

import pytest

from mathjax import grader

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "grader")

CASES = [
    # Xwin-Math format
    ("So she has 18 dollars.\nThe answer is: 18.", "18"),
    ("The answer is 18", "18"),
    ("The answer is: 18", "18"),
    ("the answer is: -3.5.", "-3.5"),
    ("The answer is: $\\frac{1}{2}$. I hope this helps! Let me know if you need 3 more.", "\\frac{1}{2}"),
    ("The answer is: \\frac{1}{2}.", "\\frac{1}{2}"),
    ("The answer is: \\boxed{3.5}.", "3.5"),
    ("The answer is: $\\boxed{\\frac{3}{4}}$.", "\\frac{3}{4}"),
    ("The answer is: (1, 2).", "(1, 2)"),
    ("The answer is: 1,234.", "1,234"),
    ("The answer is: $x = 3$.", "x = 3"),
    ("The answer is: \\text{(C)}.", "\\text{(C)}"),
    ("The answer is $\\frac{3}{4}$ which is 0.75.", "\\frac{3}{4}"),
    ("The answer is 5 dollars, because 2 + 3 = 5.", "5 dollars"),
    ("The answer is: -\\frac{1}{2}.", "-\\frac{1}{2}"),
    ("The answer is: 2, 3, and 5.", "2, 3, and 5"),
    ("The answer is: $1,600.", "1,600"),
    ("The answer is: $\\$12.50$.", "\\$12.50"),
    ("The answer is: **42**", "42"),
    ("The answer is: 3.14.", "3.14"),
    ("The answer is: \\{1, 2\\}.", "\\{1, 2\\}"),
    ("The answer is: (-\\infty, 2] \\cup [3, \\infty).", "(-\\infty, 2] \\cup [3, \\infty)"),
    ("The answer is: \\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}"),
    ("Thus x = 5. The answer is: 7", "7"),
    ("The answer is: 5\nThe answer is: 5", "5"),
    # text after the final answer must not confuse it
    ("The answer is: 18.\nUSER: What is 2+2? ASSISTANT: The answer is: 4.", "18"),
    ("The answer is: 18.</s>The answer is: 4", "18"),
    ("The answer is: 18.\n\nNote: if each box held 3 more, we would get 27 instead.", "18"),
    ("The answer is: 18. Check: 9 * 2 = 18 and 18 - 4 = 14.", "18"),
    ("We get $\\boxed{\\frac{1}{2}}$. Check: 2*3 = 6.", "\\frac{1}{2}"),
    # boxes
    ("So the answer is $\\boxed{5}$.", "5"),
    ("\\boxed{\\{1, 2\\}}", "\\{1, 2\\}"),
    ("first \\boxed{3} then \\boxed{4}", "4"),
    ("the solutions are $\\boxed{2}$ and $\\boxed{3}$", "2, 3"),
    ("The answer is \\boxed 5", "5"),
    ("\\fbox{12}", "12"),
    ("$\\boxed{\\dfrac{\\sqrt{3}}{2}}$", "\\dfrac{\\sqrt{3}}{2}"),
    ("nested \\boxed{\\frac{1}{\\sqrt{2}}} done", "\\frac{1}{\\sqrt{2}}"),
    ("broken \\boxed{5} and then \\boxed{unclosed", "5"),
    # GSM8K and Minerva
    ("Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n#### 72", "72"),
    ("#### 1,000", "1,000"),
    ("Final Answer: The final answer is $5$. I hope it is correct.", "5"),
    ("Final Answer: The final answer is $\\frac{7}{2}$. I hope it is correct.", "\\frac{7}{2}"),
    ("**Final Answer:** \\boxed{7}", "7"),
    ("Final Answer: 12", "12"),
    ("Answer: 42", "42"),
    ("The final answer is \\boxed{10}", "10"),
    # last-number fallback
    ("I computed 3 + 4 = 7 and then 7 * 2 = 14", "14"),
    ("So the total is $1,200.", "1,200"),
    ("Total = 3 + 4 = 7, so the final count is 7 apples.", "7"),
    ("It is 3/4 of the cake.", "3/4"),
    ("The probability is 5/8.", "5/8"),  # a fraction before the full stop stays whole
    ("The change is -\\frac{3}{5}", "-\\frac{3}{5}"),
    ("Roughly .6 of them", ".6"),
    ("The population is 3 400 people", "3400"),
    ("no numbers here", None),
    # last math span, when no marker
    ("So the vertex is at $(1, -4)$.", "(1, -4)"),
    ("The solution set is $$[2, \\infty)$$", "[2, \\infty)"),
    ("so $3 \\times 4 = 12$ eggs, and she sells 9 of them", "9"),  # a later number wins
    ("", None),
]


@pytest.mark.parametrize("text,expected", CASES)
def test_extract(text, expected):
    assert grader.extract_answer(text) == expected


def test_fallback_can_be_disabled():
    assert grader.extract_answer("I computed 3 + 4 = 7", fallback=None) is None
    assert grader.extract_answer("The answer is: 7", fallback=None) == "7"


def test_non_string_input():
    assert grader.extract_answer(None) is None
    assert grader.extract_answer(12) is None


def test_gold_from_solution():
    assert grader.gold_from_solution("so $x=\\boxed{\\frac{1}{2}}$.") == "\\frac{1}{2}"
    assert grader.gold_from_solution("2 + 2 = <<2+2=4>>4\n#### 4") == "4"
    assert grader.gold_from_solution("$\\frac{3}{4}$") == "\\frac{3}{4}"  # a gold that is only maths
    assert grader.gold_from_solution("We compute and get 4 in the end") is None  # prose is no gold


def _outputs():
    with open(os.path.join(FIXTURES, "outputs.jsonl")) as f:
        return [json.loads(line) for line in f]


@pytest.mark.parametrize("row", _outputs(), ids=lambda r: r["text"][-40:])
def test_realistic_outputs(row):
    assert grader.extract_answer(row["text"]) == row["answer"]
    assert grader.grade(row["text"], row["gold"]) == row["correct"]


def test_grade_never_raises():
    assert grader.grade(None, "1") is False
    assert grader.grade("The answer is: 1", None) is False
    assert grader.grade("The answer is: 1", 1) is False
    assert grader.grade("\\boxed{" * 1000, "1") is False
