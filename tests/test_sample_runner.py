"""Dataset -> JSONL runs: schema, resume after a kill (torn line), shards and merge, the script."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from sample_fixtures import tiny_model_dir

import mathjax
from mathjax.sample import SamplingRules, runner

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUESTIONS = [
    "What is 12 plus 30?", "Mia has 25 apples and eats 3. How many are left?", "Compute 7 times 8.",
    "A train goes 60 km in 2 hours. What is its speed?", "What is 100 divided by 4?", "Is 17 prime?",
    "Sum 1, 2 and 3.",
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A tiny random HF model dir with its own SentencePiece tokenizer (nothing downloaded)."""
    return tiny_model_dir(tmp_path_factory.mktemp("runner"), QUESTIONS)


@pytest.fixture(scope="module")
def loaded(model_dir):
    model = mathjax.load(model_dir)
    return model, model.tokenizer()


def _records():
    return [{"id": f"q{i}", "question": q, "answer": str(i), "level": i % 3} for i, q in enumerate(QUESTIONS)]


KW = dict(num_samples=3, rules=SamplingRules(temperature=0.9), template="xwin_math", max_new_tokens=12,
          seed=0, batch_size=6, progress=False)


def _lines(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def test_schema_resume_after_kill_and_torn_line(loaded, tmp_path):
    model, tok = loaded
    clean = str(tmp_path / "clean.jsonl")
    runner.run(model, tok, _records(), clean, **KW)
    rows = _lines(clean)
    assert sorted(r["id"] for r in rows) == [f"q{i}" for i in range(len(QUESTIONS))]
    for r in rows:
        assert set(r) == {"id", "question", "answer", "prompt", "samples", "level"}
        assert r["prompt"].startswith("A chat between") and r["question"] in r["prompt"]
        assert len(r["samples"]) == 3
        for s in r["samples"]:
            assert set(s) == {"text", "num_tokens", "finish_reason"}
            assert s["finish_reason"] in ("eos", "stop", "length") and 1 <= s["num_tokens"] <= 12

    # "Kill" a run after two questions, leaving half a line behind.
    path = str(tmp_path / "resumed.jsonl")

    class Killed(Exception):
        pass

    def die(done, total, stats):
        if done == 2:
            raise Killed

    with pytest.raises(Killed):
        runner.run(model, tok, _records(), path, **{**KW, "progress": die})
    assert len(_lines(path)) == 2
    with open(path, "a") as f:
        f.write('{"id": "q6", "question": "Sum 1, 2 and 3.", "sam')
    # A different batch size on resume: results must not depend on it.
    result = runner.run(model, tok, _records(), path, **{**KW, "batch_size": 4})
    assert (result.skipped, result.written) == (2, len(QUESTIONS) - 2)
    resumed = _lines(path)
    assert sorted(r["id"] for r in resumed) == sorted(r["id"] for r in rows)  # nothing lost or duplicated
    by_id = {r["id"]: r for r in rows}
    for r in resumed:
        assert r == by_id[r["id"]]
    # A finished run has nothing left to do; changed settings are refused.
    assert runner.run(model, tok, _records(), path, **KW).written == 0
    with pytest.raises(ValueError, match="different sampling settings"):
        runner.run(model, tok, _records(), path, **{**KW, "seed": 1})


def test_shards_and_merge_equal_single_run(loaded, tmp_path):
    model, tok = loaded
    single = str(tmp_path / "single.jsonl")
    runner.run(model, tok, _records(), single, **KW)
    out = str(tmp_path / "multi.jsonl")
    for i in range(3):
        runner.run(model, tok, _records(), out, process_index=i, process_count=3, **KW)
    shards = runner.find_shards(out)
    assert [os.path.basename(p) for p in shards] == [f"multi.shard-0000{i}-of-00003.jsonl" for i in range(3)]
    ids = [[r["id"] for r in _lines(p)] for p in shards]
    assert sorted(sum(ids, [])) == sorted(f"q{i}" for i in range(len(QUESTIONS)))
    assert runner.merge(out, order=[r["id"] for r in _records()]) == len(QUESTIONS)
    single_rows = {r["id"]: r for r in _lines(single)}
    merged = _lines(out)
    assert [r["id"] for r in merged] == [f"q{i}" for i in range(len(QUESTIONS))]
    assert all(r == single_rows[r["id"]] for r in merged)


N_SCRIPT = 60  # enough work after the first line that the kill always lands mid-run


def test_script_killed_and_restarted(model_dir, tmp_path):
    """scripts/sample.py with the acceptance flags: SIGKILL mid-run, restart, complete and unduplicated."""
    questions = str(tmp_path / "questions.jsonl")
    with open(questions, "w") as f:
        for i in range(N_SCRIPT):
            f.write(json.dumps({"id": f"q{i}", "question": QUESTIONS[i % len(QUESTIONS)] + f" ({i})",
                                "answer": str(i)}) + "\n")
    out = str(tmp_path / "samples.jsonl")
    cmd = [sys.executable, "scripts/sample.py", f"--model={model_dir}", f"--input={questions}", f"--output={out}",
           "--num_samples=4", "--temperature=0.7", "--top_p=1.0", "--top_k=0", "--max_new_tokens=24",
           "--template=xwin_math", "--seed=0", "--batch_size=4", "--mesh=data:1", "--noprogress"]
    env = {**os.environ, "PYTHONPATH": ROOT, "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if os.path.exists(out) and open(out).read().count("\n") >= 1:
            break
        time.sleep(0.01)
    killed = proc.poll() is None
    if killed:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = len(open(out).read().splitlines()) if os.path.exists(out) else 0
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    ids = [r["id"] for r in _lines(out)]
    assert sorted(ids) == sorted(f"q{i}" for i in range(N_SCRIPT)) and len(ids) == len(set(ids))
    assert killed and 1 <= partial < N_SCRIPT  # the kill really interrupted the run
    for r in _lines(out):
        assert len(r["samples"]) == 4
