"""Procedural word problems: exact arithmetic, determinism, split hygiene, knobs."""

from __future__ import annotations

import collections
import json
import re
import time
from fractions import Fraction

import pytest

from mathjax.data import procedural
from mathjax.data.templates import final_answer_line

_EQ = re.compile(r"(\d+(?:\s*[-+*/]\s*\d+)+)\s*=\s*(\d+)")
_TOKEN = re.compile(r"\s*(\d+|[-+*/])")


def _evaluate(expr: str) -> Fraction:
    """Exact value of ``a op b op c ...`` with the usual precedence (no eval)."""
    tokens = _TOKEN.findall(expr)
    assert "".join(tokens) == expr.replace(" ", ""), expr
    terms: list[Fraction] = [Fraction(int(tokens[0]))]
    ops: list[str] = []
    for op, num in zip(tokens[1::2], tokens[2::2]):
        value = Fraction(int(num))
        if op == "*":
            terms[-1] *= value
        elif op == "/":
            terms[-1] /= value
        else:
            ops.append(op)
            terms.append(value)
    total = terms[0]
    for op, term in zip(ops, terms[1:]):
        total = total + term if op == "+" else total - term
    return total


def _equations(answer: str) -> list[tuple[str, int]]:
    return [(m.group(1), int(m.group(2))) for m in _EQ.finditer(answer)]


def test_evaluator_sanity():
    assert _evaluate("20 * 3 / 4") == 15
    assert _evaluate("2 + 3 * 4 - 6 / 3") == 12
    assert _evaluate("7 / 2") == Fraction(7, 2)


@pytest.fixture(scope="module")
def records():
    return procedural.generate(1500, seed=7, min_steps=1, max_steps=8)


def test_schema(records):
    for rec in records:
        assert set(rec) == {"id", "question", "answer", "final_answer", "steps", "kind"}
        assert rec["kind"] in procedural.FAMILIES
        assert isinstance(rec["steps"], int) and 1 <= rec["steps"] <= 8
        assert rec["final_answer"].isdigit()
        assert rec["question"].isascii() and rec["answer"].isascii()
    assert len({r["id"] for r in records}) == len(records)
    assert len({r["question"] for r in records}) == len(records)
    assert {r["kind"] for r in records} == set(procedural.FAMILIES)


def test_every_step_is_exact_and_final_answer_is_last_result(records):
    for rec in records:
        lines = rec["answer"].split("\n")
        assert lines[-1] == final_answer_line(rec["final_answer"])
        eqs = _equations(rec["answer"])
        # One equation per step, one per line, none in the final-answer line.
        assert len(eqs) == rec["steps"] == len(lines) - 1, rec
        for line in lines[:-1]:
            assert len(_EQ.findall(line)) == 1, line
        for expr, claimed in eqs:
            assert _evaluate(expr) == claimed, (expr, claimed, rec)
            assert 0 <= claimed <= 1000
        assert str(eqs[-1][1]) == rec["final_answer"]
        assert "=" not in rec["question"]


def test_grader_arithmetic_checker_agrees(records):
    arithmetic = pytest.importorskip("mathjax.grader.arithmetic")
    for rec in records:
        checks = arithmetic.check_arithmetic(rec["answer"])
        assert len(checks) >= rec["steps"], (rec["answer"], checks)
        assert all(c.ok for c in checks), (rec["answer"], [c for c in checks if not c.ok])


def test_deterministic_from_seed():
    a = procedural.generate(300, seed=3, max_steps=4)
    assert a == procedural.generate(300, seed=3, max_steps=4)
    assert a[:100] == procedural.generate(100, seed=3, max_steps=4)  # a prefix, not a new draw
    assert a != procedural.generate(300, seed=4, max_steps=4)


def test_train_and_test_disjoint_across_seeds():
    kw = dict(max_steps=3, max_number=10)
    train = [r for s in (0, 1) for r in procedural.generate(2000, "train", seed=s, **kw)]
    test = [r for s in (0, 1, 2) for r in procedural.generate(400, "test", seed=s, **kw)]
    assert not {r["question"] for r in train} & {r["question"] for r in test}
    skeleton = lambda r: tuple(f"{e} = {v}" for e, v in _equations(r["answer"]))  # noqa: E731
    train_sk, test_sk = {skeleton(r) for r in train}, {skeleton(r) for r in test}
    assert not train_sk & test_sk
    assert all(procedural.skeleton_is_test(s) for s in test_sk)
    assert not any(procedural.skeleton_is_test(s) for s in train_sk)
    assert all(r["id"].startswith("proc-test-") for r in test)


def test_steps_knob():
    recs = procedural.generate(2000, seed=1, min_steps=2, max_steps=5, step_weights=[4, 2, 1, 0])
    counts = collections.Counter(r["steps"] for r in recs)
    assert set(counts) == {2, 3, 4}
    # Expected 4:2:1 (1143:571:286); loose bounds, the draw is fixed by the seed anyway.
    assert counts[2] > 1.5 * counts[3] and counts[3] > 1.5 * counts[4]
    as_map = procedural.generate(500, seed=1, min_steps=1, max_steps=6, step_weights={1: 1.0, 6: 1.0})
    assert {r["steps"] for r in as_map} == {1, 6}
    deep = procedural.generate(50, seed=1, min_steps=9, max_steps=9)
    assert all(r["steps"] == 9 == len(_equations(r["answer"])) for r in deep)


def test_max_number_bounds_free_numbers():
    recs = procedural.generate(500, seed=2, max_steps=4, max_number=9, kinds=["inventory", "savings", "ages"])
    for rec in recs:
        # Fractions (p/q) and percentages are rates, not counts; every other
        # number a chain question states is a start value or an operand.
        text = re.sub(r"\d+/\d+|\d+%", "", rec["question"])
        assert all(int(x) <= 9 for x in re.findall(r"\d+", text)), rec["question"]


def test_kinds_filter_and_errors():
    assert {r["kind"] for r in procedural.generate(50, seed=0, kinds=["shopping"])} == {"shopping"}
    with pytest.raises(ValueError):
        procedural.generate(10, split="dev")
    with pytest.raises(ValueError):
        procedural.generate(10, step_weights=[1, 2])
    with pytest.raises(ValueError):
        procedural.generate(10, kinds=["parts"], min_steps=5, max_steps=6)
    with pytest.raises(ValueError, match="distinct"):
        procedural.generate(1000, kinds=["reading"], max_number=2, max_steps=1)


def test_fast_enough():
    start = time.perf_counter()
    procedural.generate(10_000, seed=0)
    assert time.perf_counter() - start < 10.0  # ~0.5 s on one core; 100k in seconds


def test_write_jsonl(tmp_path):
    recs = procedural.generate(20, seed=0)
    path = tmp_path / "sub" / "train.jsonl"
    procedural.write_jsonl(recs, path)
    with open(path) as f:
        assert [json.loads(line) for line in f] == recs
    assert [p.name for p in path.parent.iterdir()] == ["train.jsonl"]
