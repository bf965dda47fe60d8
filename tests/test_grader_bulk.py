"""Bulk grading of a samples file: worker pool, in-process mode, script."""

import json
import os
import subprocess
import sys
import time

import pytest

from mathjax import grader
from mathjax.grader import pool as pool_lib

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "grader")
SAMPLES = os.path.join(FIXTURES, "samples.jsonl")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _expected():
    with open(SAMPLES) as f:
        return [[s["expected"] for s in json.loads(line)["samples"]] for line in f]


@pytest.fixture(scope="module")
def inline_results():
    return grader.grade_run(SAMPLES, workers=0, progress=False)


def test_inline_grading_matches_labels(inline_results):
    assert [r.correct for r in inline_results] == _expected()
    hostile = inline_results[4]
    assert hostile.outcomes.get("oversize", 0) >= 2
    assert inline_results[5].num_samples == 0


def test_result_fields(inline_results):
    r = inline_results[0]
    assert r.id == "gsm-1" and r.gold == "72" and r.steps == 2
    assert r.answers[:3] == ["72", "72", "62"]
    assert r.clusters[:4] == [0, 0, r.clusters[2], r.clusters[3]] and r.clusters[2] != r.clusters[3] != 0
    assert r.slips == [False, False, True, False, False, False]
    assert r.finish_reasons[-1] == "length"
    m2 = inline_results[2]
    assert m2.level == "Level 2" and m2.subject == "Algebra" and m2.steps and m2.steps >= 1
    # "0.75", "\\dfrac{3}{4}" and "75\\%" are one cluster with the gold
    assert inline_results[1].clusters == [0, 0, 0, inline_results[1].clusters[3], inline_results[1].clusters[4], 0]


def test_worker_pool_agrees_with_inline(inline_results):
    t = time.perf_counter()
    results = grader.grade_run(SAMPLES, workers=2, progress=False)
    assert [r.correct for r in results] == [r.correct for r in inline_results]
    assert [r.clusters for r in results] == [r.clusters for r in inline_results]
    assert time.perf_counter() - t < 30


def test_grade_samples_from_records():
    with open(SAMPLES) as f:
        records = [json.loads(line) for line in f]
    assert grader.grade_samples(records, workers=0) == _expected()
    # bare answers and worked-solution answers are both accepted as gold
    recs = [
        {"answer": "Half of 4 is 4/2 = 2.\n#### 2", "samples": [{"text": "The answer is: 2"}]},
        {"answer": "so it is $\\boxed{\\frac12}$", "samples": [{"text": "The answer is: 0.5"}]},
        {"final_answer": "36", "answer": "3 * 12 = 36\nThe answer is: 36.", "samples": [{"text": "#### 36"}]},
        {"solution": "Thus $\\boxed{7}$.", "samples": ["The answer is: 7"]},
    ]
    assert grader.grade_samples(recs, workers=0) == [[True], [True], [True], [True]]


def test_evaluate_writes_report(tmp_path):
    grader.evaluate(SAMPLES, tmp_path, workers=0, bootstrap=50, progress=False, extra={"greedy_accuracy": 0.5})
    for name in ("report.json", "report.md", "pass_at_k.png", "graded.jsonl"):
        assert (tmp_path / name).exists()
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["num_questions"] == 6 and data["num_samples"] == 26
    assert data["questions_without_samples"] == 1
    assert data["greedy_accuracy"] == 0.5
    assert data["grading_outcomes"].get("oversize", 0) >= 2
    assert data["errors"]["wrong_samples"] > 0
    assert data["accuracy_by_steps"]["buckets"]


def test_script_end_to_end(tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = tmp_path / "rep"
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "scripts", "grade.py"), f"--samples={SAMPLES}", f"--output_dir={out}",
         "--workers=1", "--bootstrap=20", "--noprogress"],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads((out / "report.json").read_text())
    assert set(data["pass_at_k"]) == {"1", "2", "4"}
    assert "maj_at_k" in data and "pass_ratio" in data


# ---- the pool itself ------------------------------------------------------------------


@pytest.fixture(scope="module")
def one_worker():
    with pool_lib.WorkerPool(1, max_tasks_per_worker=3) as p:
        yield p


def test_pool_hard_timeout_kills_and_replaces(one_worker):
    t = time.perf_counter()
    res = one_worker.call(time.sleep, 30, timeout=0.5)
    assert res.status == pool_lib.TIMEOUT
    assert time.perf_counter() - t < 10
    assert one_worker.call(abs, -3, timeout=30).value == 3  # the replacement works


def test_pool_crash_and_error(one_worker):
    assert one_worker.call(os._exit, 3, timeout=30).status == pool_lib.CRASHED
    res = one_worker.call(int, "x", timeout=30)
    assert res.status == pool_lib.ERROR and "ValueError" in res.error
    assert one_worker.call(abs, -1, timeout=30).value == 1


def test_pool_recycles_workers(one_worker):
    pids = [r.value for r in one_worker.map(os.getpid, [()] * 7, timeout=30)]
    assert len(set(pids)) >= 2  # max 3 tasks per worker
    assert os.getpid() not in pids


def test_pool_inline_mode():
    with pool_lib.WorkerPool(0) as p:
        assert [r.value for r in p.map(abs, [(-1,), (-2,)], timeout=5)] == [1, 2]
        assert p.call(time.sleep, 5, timeout=0.2).status == pool_lib.TIMEOUT


def test_pool_rejects_fork():
    with pytest.raises(ValueError):
        pool_lib.WorkerPool(1, context="fork")
