"""The OpenAI-compatible HTTP generator against a scripted server on 127.0.0.1: 429 + Retry-After,
5xx backoff, servers ignoring ``n``, auth, refused requests, and scripts/synthesize.py killed and rerun."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from mathjax import synth
from mathjax.synth import filters, http_generator, pipeline
from test_synth_fakes import FakeGenerator, ScriptedServer, make_plan, write_jsonl

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _lines(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _strip(rows):
    """Output rows without what names the generator."""
    out = []
    for r in rows:
        r = json.loads(json.dumps(r))
        r["provenance"].pop("generator")
        out.append(r)
    return out


@pytest.fixture(scope="module")
def seeds_and_plan(tmp_path_factory):
    seeds, plan = make_plan(14)
    path = write_jsonl(tmp_path_factory.mktemp("seeds") / "seeds.jsonl", seeds)
    return path, synth.load_seeds(path), plan


def test_rate_limited_then_success_matches_scripted_run(seeds_and_plan, tmp_path, monkeypatch):
    _, seeds, plan = seeds_and_plan
    opts = synth.SynthOptions(num_answers=3)
    synth.run(seeds, FakeGenerator(plan), str(tmp_path / "fake"), opts, progress=False)
    monkeypatch.setenv("TEST_SYNTH_KEY", "sk-test")
    slept = []

    def sleep(s):
        slept.append(s)
        time.sleep(min(s, 0.05))

    with ScriptedServer(plan, fail_first={429: 3, 503: 1, 500: 1}, retry_after="1", max_n=2,
                        api_key="sk-test") as server:
        gen = synth.HTTPGenerator(server.url, "scripted-model", api_key_env="TEST_SYNTH_KEY", concurrency=4,
                                  backoff_base=0.01, backoff_max=0.05, sleep=sleep)
        start = time.monotonic()
        stats = synth.run(seeds, gen, str(tmp_path / "http"), opts, progress=False).stats
        elapsed = time.monotonic() - start
    assert gen.counters["rate_limited"] == 3 and gen.counters["retries"] == 5
    assert elapsed >= 1.0  # Retry-After: 1 was honoured, by every worker
    assert any(s >= 1.0 for s in slept)
    assert {e["auth"] for e in server.log} == {"Bearer sk-test"}
    assert {e["path"] for e in server.log} == {"/v1/chat/completions"}
    body = server.log[-1]["body"]
    assert body["model"] == "scripted-model" and body["messages"][0]["role"] == "user"
    # The server caps n at 2: the client asked again for the third answer.
    answers = [e for e in server.log if e["body"]["n"] == 3]
    assert answers and any(e["body"]["n"] == 1 for e in server.log)
    assert stats["kept"] + sum(stats["dropped"].values()) == len(seeds)
    http_rows = _lines(tmp_path / "http" / "synthetic.jsonl")
    assert http_rows[0]["provenance"]["generator"] == f"http:scripted-model@{server.url}/chat/completions"
    assert _strip(http_rows) == _strip(_lines(tmp_path / "fake" / "synthetic.jsonl"))
    # Stage (c) asked with the answer prompt (the training template's wording).
    stage_c = _lines(pipeline.stage_path(str(tmp_path / "http"), "3_answers"))
    assert all("The answer is: <ANSWER>." in r["prompt"] for r in stage_c)


def test_fatal_refused_and_exhausted_requests(seeds_and_plan, tmp_path, monkeypatch):
    _, seeds, plan = seeds_and_plan
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    with ScriptedServer(plan, api_key="right") as server:
        gen = synth.HTTPGenerator(server.url, "m", api_key_env="NO_SUCH_KEY_VAR", max_retries=5)
        with pytest.raises(synth.GeneratorError, match="HTTP 401"):
            synth.run(seeds[:2], gen, str(tmp_path / "auth"), progress=False)
        assert len(server.log) == 2  # one request per seed in flight, none retried
    with ScriptedServer(plan, fail_first={400: 1}) as server:  # one request refused for good
        gen = synth.HTTPGenerator(server.url, "m", concurrency=1)
        stats = synth.run(seeds[:3], gen, str(tmp_path / "refused"), progress=False).stats
        assert stats["dropped"][filters.GENERATOR_ERROR] == 1 and gen.counters["rejected"] == 1
        dropped = [r for r in _lines(tmp_path / "refused" / "dropped.jsonl") if r["reason"] == "generator_error"]
        assert "HTTP 400" in dropped[0]["provenance"]["error"]
    with ScriptedServer(plan, fail_first={502: 100}) as server:
        gen = synth.HTTPGenerator(server.url, "m", max_retries=2, backoff_base=0.001, concurrency=2)
        with pytest.raises(synth.GeneratorError, match="still failing after 3 attempts; last: HTTP 502"):
            synth.run(seeds[:2], gen, str(tmp_path / "down"), progress=False)


def test_retry_after_forms():
    assert http_generator.parse_retry_after("7") == 7.0
    assert http_generator.parse_retry_after("") is None and http_generator.parse_retry_after("soon") is None
    now = time.time()
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now + 30))
    assert 28 <= http_generator.parse_retry_after(date, now=now) <= 31
    assert http_generator.chat_url("http://h:1/v1/") == "http://h:1/v1/chat/completions"
    with pytest.raises(ValueError, match="http"):
        http_generator.chat_url("localhost:8000")


def test_script_killed_mid_stage_and_rerun(tmp_path):
    """scripts/synthesize.py over HTTP: SIGKILL mid-stage, rerun, every seed once in every stage."""
    n = 24
    seeds, plan = make_plan(n)
    seeds_path = write_jsonl(tmp_path / "seeds.jsonl", seeds)
    out = tmp_path / "out"
    with ScriptedServer(plan, delay=0.03) as server:
        cmd = [sys.executable, "scripts/synthesize.py", f"--seeds={seeds_path}", f"--output={out}",
               f"--endpoint={server.url}", "--model_name=scripted", "--api_key_env=", "--concurrency=2",
               "--num_answers=2", "--agreement=0.75", "--noprogress"]
        env = {**os.environ, "PYTHONPATH": ROOT}
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        stage_b = pipeline.stage_path(str(out), "2_verified")
        deadline = time.time() + 60
        while time.time() < deadline and proc.poll() is None:
            if os.path.exists(stage_b) and open(stage_b).read().count("\n") >= 5:
                break
            time.sleep(0.005)
        killed = proc.poll() is None
        if killed:
            proc.send_signal(signal.SIGKILL)
        proc.wait()
        partial = open(stage_b).read().count("\n")
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert killed and 5 <= partial < n - 1  # the kill landed inside stage (b)
    for stage, expect in zip(pipeline.STAGES, (n, n - 1, n - 2)):
        ids = [r["id"] for r in _lines(pipeline.stage_path(str(out), stage))]
        assert len(ids) == len(set(ids)) == expect, stage
    stats = json.load(open(out / "stats.json"))
    assert stats["seeds"] == n and stats["kept"] + sum(stats["dropped"].values()) == n
    assert stats["kept"] == len(_lines(out / "synthetic.jsonl")) == n - 7  # seeds 0-5 and 7 of make_plan dropped
    assert f"kept {n - 7} of {n} seeds" in done.stdout
