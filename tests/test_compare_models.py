"""Paired comparisons of models on the same held-out questions (mathjax.rl.evaluate,
mathjax.experiments.compare_models, scripts/compare_models.py)."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from mathjax.experiments import compare_models as cm
from mathjax.rl.evaluate import QuestionResults, answer_clusters, paired_difference
from sft_fixtures import save_copy_task_models, write_jsonl

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_paired_difference_by_hand():
    # d = [1, 0, 0, 1]: mean 0.5; sample sd sqrt(4 * 0.25 / 3) = 0.57735; se = 0.57735 / 2.
    mean, se = paired_difference([1, 0, 1, 1], [0, 0, 1, 0])
    assert mean == pytest.approx(0.5)
    assert se == pytest.approx(0.288675, abs=1e-6)
    # The same values paired: no difference and no spread, however different the questions are.
    assert paired_difference([0.1, 0.9, 0.5], [0.1, 0.9, 0.5]) == (0.0, 0.0)
    with pytest.raises(ValueError, match="shapes"):
        paired_difference([1, 0], [1, 0, 1])
    with pytest.raises(ValueError, match="at least 2"):
        paired_difference([1], [0])


def test_question_results_summary():
    hits = np.asarray([[True, False, False, False], [False, False, False, False], [True, True, True, True]])
    r = QuestionResults(ids=["a", "b", "c"], greedy=np.asarray([True, False, True]), hits=hits)
    s = r.summary()
    assert s["eval_greedy_accuracy"] == pytest.approx(2 / 3)
    assert s["eval_pass_at_4"] == pytest.approx(2 / 3)  # a and c have a right sample
    assert s["eval_pass_ratio"] == pytest.approx((0.25 + 0 + 1) / 3)
    assert s["eval_questions"] == 3
    empty = QuestionResults(ids=["a"], greedy=np.asarray([False]), hits=np.zeros((1, 0), bool)).summary()
    assert "eval_pass_ratio" not in empty and empty["eval_greedy_accuracy"] == 0.0


def test_answer_clusters_and_majority_vote():
    texts = ["The answer is 5", "The answer is 1/2", "so it is 0.5", "The answer is 7", "no idea", "answer: 5"]
    right = [True, False, False, False, False, True]
    # 1/2 and 0.5 are one wrong answer; "no idea" casts no vote.
    assert answer_clusters(texts, right) == [0, 1, 1, 2, -1, 0]
    clusters = np.asarray([
        [0, 0, 1, 2],  # the right answer leads: 1
        [0, 1, 1, 2],  # a wrong answer leads: 0 (PassRatio 0.25 all the same)
        [0, 0, 1, 1],  # a tie of two: half the credit
        [-1, -1, -1, 0],  # only one vote, and it is right
    ])
    r = QuestionResults(ids=list("abcd"), greedy=np.zeros(4, bool), hits=clusters == 0, clusters=clusters)
    np.testing.assert_allclose(r.majority, [1.0, 0.0, 0.5, 1.0])
    assert QuestionResults(ids=["a"], greedy=np.zeros(1, bool), hits=np.zeros((1, 2), bool)).majority.tolist() == [0]


def test_markdown_shows_each_difference_to_the_control():
    result = {"questions": 200, "k": 16, "temperature": 0.7, "control": "SFT",
              "models": {"SFT": {"greedy": 0.645, "pass_ratio": 0.564, "majority": 0.62, "pass_at_k": 0.855,
                                 "slip_share": 0.87},
                         "GRPO": {"greedy": 0.675, "pass_ratio": 0.601, "majority": 0.64, "pass_at_k": 0.85,
                                  "slip_share": 0.88}},
              "vs_control": {"GRPO": {"greedy": [0.03, 0.022], "pass_ratio": [0.037, 0.009],
                                      "majority": [0.02, 0.011], "pass_at_k": [-0.005, 0.01]}}}
    table = cm.markdown(result)
    assert "| SFT | 64.5% | 56.4% | 62.0% | 85.5% | 87% |" in table
    assert "| GRPO | 67.5% (+3.0 ± 2.2) | 60.1% (+3.7 ± 0.9) | 64.0% (+2.0 ± 1.1) | 85.0% (-0.5 ± 1.0) | 88% |" in table
    assert "PassRatio@16" in table and "maj@16" in table and "Pass@16" in table


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Two copies of one tiny random model and a second random model, with eval questions whose gold is 1."""
    root = tmp_path_factory.mktemp("compare")
    env = {**os.environ, "PYTHONPATH": ROOT, "JAX_PLATFORMS": "cpu"}
    save_copy_task_models(str(root), {"a": 0, "b": 1}, "The answer is: 1.", env)
    shutil.copytree(root / "a", root / "a_copy")
    write_jsonl(str(root / "eval.jsonl"), [{"question": f"Say one {i}.", "answer": "#### 1"} for i in range(6)])
    return root


def _run(models, *flags):
    env = {**os.environ, "PYTHONPATH": ROOT, "JAX_PLATFORMS": "cpu"}
    return subprocess.run([sys.executable, "scripts/compare_models.py", f"--eval_files={models / 'eval.jsonl'}",
                           "--num_samples=4", "--max_new_tokens=8", "--temperature=1.0", *flags],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_script_pairs_every_model_with_the_control(models, tmp_path):
    out = tmp_path / "out"
    done = _run(models, f"--models=ctl={models / 'a'},same={models / 'a_copy'},other={models / 'b'}",
                f"--output_dir={out}")
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads((out / "compare.json").read_text())
    assert result["questions"] == 6 and result["k"] == 4 and result["control"] == "ctl"
    assert set(result["vs_control"]) == {"same", "other"}
    # The same weights with the same seed draw the same samples: every paired difference is exactly 0.
    # (A per-model seed, or questions paired out of order, would not give this for a random model.)
    for name in ("greedy", "pass_ratio", "majority", "pass_at_k"):
        assert result["vs_control"]["same"][name] == [0.0, 0.0]
        assert result["models"]["same"][name] == result["models"]["ctl"][name]
    for m in result["models"].values():  # a right majority needs a right sample
        assert 0.0 <= m["majority"] <= m["pass_at_k"] + 1e-12
    assert "| same |" in (out / "compare.md").read_text()


def test_script_rejects_a_malformed_model_list(models, tmp_path):
    done = _run(models, f"--models=ctl={models / 'a'},{models / 'b'}", f"--output_dir={tmp_path}")
    assert done.returncode != 0
    assert "is not LABEL=MODEL_DIR" in done.stderr
    assert not (tmp_path / "compare.json").exists()
