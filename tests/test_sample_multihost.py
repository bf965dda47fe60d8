"""One model over two processes: the sampler's mesh spans hosts, as 70B on a pod slice.

Two CPU processes of 4 devices each (jax.distributed on 127.0.0.1) sample
through the runner on meshes that span both: ``data:2,tensor:4`` (rows split
across the processes) and ``tensor:8`` (every layer's weights and heads split
across them). Their merged shards must equal one process with 8 devices,
sample for sample; a question already in one process's shard is skipped by
both (they agree on what is done); a second identical run in the same
process compiles nothing.
"""

import json
import os
import socket
import subprocess
import sys

import pytest
from sample_fixtures import tiny_model_dir

from mathjax.sample import runner

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKER = os.path.join(ROOT, "tests", "sample_worker.py")
QUESTIONS = ["What is 12 plus 30?", "Mia has 25 apples and eats 3. How many are left?", "Compute 7 times 8.",
             "What is 100 divided by 4?", "Sum 1, 2 and 3.", "A train goes 60 km in 2 hours. Speed?"]
MESHES = ["data:2,tensor:4", "tensor:8"]


def _env(devices: int) -> dict:
    return {**os.environ, "PYTHONPATH": ROOT, "JAX_PLATFORMS": "cpu",
            "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}


def _lines(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("multihost")
    # 4 KV heads and a 128-wide MLP: both split over tensor:4 and tensor:8 (heads over 4).
    model = tiny_model_dir(root, QUESTIONS, seed=5, intermediate_size=128, num_heads=8, num_kv_heads=4)
    questions = root / "questions.jsonl"
    with open(questions, "w") as f:
        for i, q in enumerate(QUESTIONS):
            f.write(json.dumps({"id": f"q{i}", "question": q, "answer": str(i)}) + "\n")
    return root, model, str(questions)


def test_two_processes_one_model_equal_one_process(setup):
    root, model, questions = setup
    one = root / "one"
    one.mkdir()
    ref = subprocess.run([sys.executable, WORKER, model, questions, str(one), MESHES[0]], env=_env(8),
                         capture_output=True, text=True, timeout=480)
    assert ref.returncode == 0, ref.stdout[-2000:] + ref.stderr[-3000:]
    reference = {r["id"]: r for r in _lines(one / "data2_tensor4.jsonl")}
    assert len(reference) == len(QUESTIONS)

    two = root / "two"
    two.mkdir()
    # Question q1 (owned by process 1) is already done: neither process may decode or write it again.
    with open(two / "data2_tensor4.shard-00001-of-00002.jsonl", "w") as f:
        f.write(json.dumps(reference["q1"]) + "\n")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = [subprocess.Popen([sys.executable, WORKER, model, questions, str(two), *MESHES,
                               f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2", f"--process_id={i}"],
                              env=_env(4), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for i in range(2)]
    for p in procs:
        out, _ = p.communicate(timeout=480)
        assert p.returncode == 0, out[-4000:]

    for spec in MESHES:
        stem = spec.replace(":", "").replace(",", "_")
        merged = str(two / f"{stem}.jsonl")
        shards = runner.find_shards(merged)
        ids = [[r["id"] for r in _lines(p)] for p in shards]
        # Each process wrote exactly the questions it owns (i % 2), each once.
        assert ids[0] == ["q0", "q2", "q4"] or sorted(ids[0]) == ["q0", "q2", "q4"]
        assert sorted(ids[1]) == ["q1", "q3", "q5"]
        runner.merge(merged, order=[f"q{i}" for i in range(len(QUESTIONS))])
        got = _lines(merged)
        assert [r["id"] for r in got] == [f"q{i}" for i in range(len(QUESTIONS))]
        for r in got:
            assert r["samples"] == reference[r["id"]]["samples"], (spec, r["id"])
        compiles = json.load(open(two / f"{stem}.jsonl.compiles.json"))
        assert compiles["after"] == compiles["before"]  # the second run in the process compiled nothing
