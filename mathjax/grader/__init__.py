"""The shared math grader: answer extraction, equivalence, metrics and reports.

Imports nothing from JAX (nor from other ``mathjax`` subpackages); it runs in
CPU worker processes.

Single answers::

    from mathjax import grader
    grader.extract_answer(text)          # -> str | None
    grader.is_equiv(pred, gold)          # -> bool
    grader.is_equiv("30^\\circ", "\\frac{\\pi}{6}", angles="convert")   # degrees policy, see angles.py
    grader.grade(text, gold)             # -> bool, never raises
    grader.majority_answer(answers)      # -> (answer, count), grouped by equivalence

Sample files (the sampler's JSONL)::

    grader.grade_samples("samples.jsonl", workers=16)   # -> list[list[bool]]
    results = grader.grade_run("samples.jsonl", workers=16)
    metrics = grader.compute_metrics(results)
    grader.write_report(metrics, "out/", extra={"greedy_accuracy": 0.41})

Question-blind control (guessing from a training set's answers, exact)::

    counts = grader.load_answer_distribution("train.jsonl")   # or {answer: count} .json
    grader.control_metrics(golds, counts, ks=[1, 4, 16])     # the model's metric keys
    grader.evaluate("samples.jsonl", "out/", control_answers="train.jsonl")

Arithmetic checks (a op b = c, exact)::

    grader.check_arithmetic(text), grader.has_arithmetic_slip(text)

At import the sympy version is checked and a small self-test runs; a parser
or sympy problem raises :class:`GraderDependencyError` here, instead of
silently lowering scores later (the Xwin-Math antlr4 failure mode).
"""

from mathjax.grader.symbolic import GraderDependencyError, check_sympy_version

check_sympy_version()

from mathjax.grader.api import (  # noqa: E402
    DEFAULT_TIMEOUT,
    compare_full,
    grade,
    is_equiv,
    majority_answer,
    set_angle_policy,
    stats,
)
from mathjax.grader.angles import POLICIES as ANGLE_POLICIES  # noqa: E402
from mathjax.grader.arithmetic import ArithmeticCheck, check_arithmetic, has_arithmetic_slip  # noqa: E402
from mathjax.grader.bulk import QuestionResult, grade_run, grade_samples  # noqa: E402
from mathjax.grader.control import (  # noqa: E402
    AnswerDistributionError,
    AnswerGuesser,
    control_metrics,
    load_answer_distribution,
)
from mathjax.grader.equiv import Verdict, analyze, compare  # noqa: E402
from mathjax.grader.keys import answer_key  # noqa: E402
from mathjax.grader.extract import extract_answer, gold_from_solution  # noqa: E402
from mathjax.grader.metrics import compute_metrics, pass_at_k  # noqa: E402
from mathjax.grader.report import evaluate, write_report  # noqa: E402
from mathjax.grader.selftest import run_self_test  # noqa: E402

run_self_test()

__all__ = [
    "ANGLE_POLICIES",
    "AnswerDistributionError",
    "AnswerGuesser",
    "ArithmeticCheck",
    "DEFAULT_TIMEOUT",
    "GraderDependencyError",
    "QuestionResult",
    "Verdict",
    "analyze",
    "answer_key",
    "check_arithmetic",
    "compare",
    "compare_full",
    "compute_metrics",
    "control_metrics",
    "evaluate",
    "extract_answer",
    "gold_from_solution",
    "grade",
    "grade_run",
    "grade_samples",
    "has_arithmetic_slip",
    "is_equiv",
    "load_answer_distribution",
    "majority_answer",
    "pass_at_k",
    "set_angle_policy",
    "stats",
    "write_report",
]
