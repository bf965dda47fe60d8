"""A scripted generator for the synthesis tests (in-process and behind a loopback HTTP server), and
unit tests of reply parsing, filters, near-duplicate removal and the leakage index."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mathjax.data import procedural
from mathjax.synth import dedup, decontam, filters, parse, prompts

# A GSM8K-format test question planted into the synthetic output.
PLANTED_TEST = {
    "question": "Janet's ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins "
                "for her friends every day with four. She sells the remainder at the farmers' market daily for $2 "
                "per fresh duck egg. How much in dollars does she make every day at the farmers' market?",
    "answer": "Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\nShe makes 9 * 2 = $<<9*2=18>>18 every day at "
              "the farmer's market.\n#### 18",
}


def write_jsonl(path, records) -> str:
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    return str(path)


def write_test_set(path) -> str:
    """A small GSM8K-format test file holding the planted question and a few others."""
    others = [{"question": r["question"], "answer": r["answer"].replace("The answer is: ", "#### ").rstrip(".")}
              for r in procedural.generate(5, split="test", seed=99)]
    return write_jsonl(path, [PLANTED_TEST] + others)


def make_plan(n: int) -> tuple[list[dict], dict[str, dict]]:
    """``n`` seeds (procedural train problems) and, per seed id, what the generator replies.

    Seeds 0-9 each exercise one outcome (``expect``); the others are kept.
    """
    seeds = procedural.generate(n, split="train", seed=11)
    fresh = procedural.generate(n, split="test", seed=12)
    plan = {}
    for i, (s, f) in enumerate(zip(seeds, fresh)):
        new_q, answers = f["question"], [f["answer"]] * 4
        p = {"seed_q": s["question"], "question": f"New question: {new_q}",
             "verify": f"Verdict: OK\nQuestion: {new_q}", "final_q": new_q, "answers": answers, "expect": None}
        if i == 0:
            p.update(question="", expect=filters.MALFORMED_QUESTION)
        elif i == 1:
            p.update(verify="Verdict: REJECT\nThe numbers contradict each other.", expect=filters.VERIFIER_REJECTED)
        elif i == 2:
            p.update(question=f"New question: {s['question']}", verify=f"Verdict: OK\nQuestion: {s['question']}",
                     final_q=s["question"], expect=filters.SEED_DUPLICATE)
        elif i == 3:
            p.update(answers=["I am not sure how to solve this."] * 4, expect=filters.NO_FINAL_ANSWER)
        elif i == 4:
            p.update(answers=[f"{k} + 1 = {k + 1}.\nThe answer is: {k + 1}." for k in range(4)],
                     expect=filters.LOW_AGREEMENT)
        elif i == 5:  # the asking sentence states the answer
            leaked = new_q.rstrip("?") + f" if the result is {f['final_answer']}?"
            p.update(question=f"New question: {leaked}", verify=f"Verdict: OK\nQuestion: {leaked}", final_q=leaked,
                     expect=filters.ANSWER_IN_QUESTION)
        elif i == 8:
            planted = PLANTED_TEST["question"]
            p.update(question=f"New question: {planted}", verify=f"Verdict: OK\nQuestion: {planted}",
                     final_q=planted, answers=["16 - 3 - 4 = 9 eggs.\n9 * 2 = 18.\nThe answer is: 18."] * 4,
                     expect=filters.CONTAMINATED)
        elif i == 9:
            revised = new_q.replace("How many", "Exactly how many")
            p.update(verify=f"Verdict: REVISED\nQuestion: {revised}", final_q=revised)
        elif i == 10:
            p.update(verify="This question looks fine to me.")
        plan[s["id"]] = p
    # Seed 6 writes a near-copy of seed 7's question (one word changed): the later one (7) goes.
    ids = [s["id"] for s in seeds]
    if n > 7:
        q7 = plan[ids[7]]["final_q"]
        twin = q7.replace(" has ", " owns ", 1) if " has " in q7 else q7 + " Think carefully."
        plan[ids[6]].update(question=f"New question: {twin}", verify=f"Verdict: OK\nQuestion: {twin}", final_q=twin,
                            answers=plan[ids[7]]["answers"])
        plan[ids[7]]["expect"] = filters.NEAR_DUPLICATE
    return seeds, plan


def reply(plan: dict[str, dict], prompt: str, sample: int) -> str:
    """The scripted reply to a stage prompt (stage told apart by the prompt's wording)."""
    if "Verdict: OK" in prompt:  # stage (b): find the draft in the prompt
        for p in plan.values():
            draft = parse.parse_new_question(p["question"])
            if draft and draft in prompt:
                return p["verify"]
        raise KeyError("unknown verification prompt")
    if "New question:" in prompt:  # stage (a)
        for p in plan.values():
            if p["seed_q"] in prompt:
                return p["question"]
        raise KeyError("unknown question prompt")
    best = None  # stage (c): the longest planned question the prompt contains
    for p in plan.values():
        if p["final_q"] and p["final_q"] in prompt and (best is None or len(p["final_q"]) > len(best["final_q"])):
            best = p
    if best is None:
        raise KeyError("unknown answer prompt")
    return best["answers"][sample % len(best["answers"])]


class Crash(Exception):
    pass


class FakeGenerator:
    """The Generator protocol over ``reply``; ``crash_after`` raises mid-stage after that many lines
    (leaving a torn line when ``torn``), like a killed process."""

    name = "fake:scripted"
    bare_answer_prompts = False

    def __init__(self, plan, crash_after: int | None = None, torn: bool = True):
        self.plan = plan
        self.crash_after = crash_after
        self.torn = torn
        self.calls: list[tuple[str, int]] = []

    def settings(self) -> dict:
        return {"generator": self.name}

    def run_stage(self, records, path, *, num_samples, seed, progress=True, desc=""):
        from mathjax.sample import runner

        done = {str(r["id"]) for r in runner.read_output(path)}
        self.calls.append((desc, len(records)))
        with open(path, "a", encoding="utf-8") as f:
            for r in records:
                if str(r["id"]) in done:
                    continue
                if self.crash_after is not None and self.crash_after <= 0:
                    if self.torn:
                        f.write('{"id": "%s", "question": "half a li' % r["id"])
                    raise Crash
                samples = [{"text": reply(self.plan, r["question"], j), "num_tokens": 1, "finish_reason": "stop"}
                           for j in range(num_samples)]
                f.write(json.dumps({"id": r["id"], "question": r["question"], "answer": None,
                                    "prompt": r["question"], "samples": samples}) + "\n")
                f.flush()
                if self.crash_after is not None:
                    self.crash_after -= 1


class ScriptedServer:
    """An OpenAI-compatible chat-completions server on 127.0.0.1 replying from a plan.

    ``fail_first`` maps a status (429, 503, 500) to how many requests get it
    before any succeeds; ``retry_after`` is sent with those. ``delay`` sleeps
    per request (kill tests). ``max_n`` caps choices per response (servers that
    ignore ``n``).
    """

    def __init__(self, plan, fail_first: dict[int, int] | None = None, retry_after: str | None = None,
                 delay: float = 0.0, max_n: int | None = None, api_key: str | None = None):
        self.plan = plan
        self.fail = dict(fail_first or {})
        self.retry_after = retry_after
        self.delay = delay
        self.max_n = max_n
        self.api_key = api_key
        self.log: list[dict] = []
        self.served: dict[str, int] = {}
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_POST(self):
                import time

                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.log.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
                    status = next((s for s, left in server.fail.items() if left > 0), None)
                    if status is not None:
                        server.fail[status] -= 1
                if server.api_key and self.headers.get("Authorization") != f"Bearer {server.api_key}":
                    return self._send(401, {"error": "bad key"})
                if status is not None:
                    return self._send(status, {"error": "busy"}, {"Retry-After": server.retry_after})
                if server.delay:
                    time.sleep(server.delay)
                prompt = body["messages"][-1]["content"]
                n = body.get("n", 1) if server.max_n is None else min(body.get("n", 1), server.max_n)
                with server.lock:  # sample j of a prompt is the plan's answer j, however the n are split
                    offset = server.served.get(prompt, 0)
                    server.served[prompt] = offset + n
                choices = [{"index": j, "finish_reason": "stop",
                            "message": {"role": "assistant", "content": reply(server.plan, prompt, j + offset)}}
                           for j in range(n)]
                self._send(200, {"id": "x", "object": "chat.completion", "choices": choices,
                                 "usage": {"completion_tokens": 10 * n}})

            def _send(self, status, payload, headers=None):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    if v is not None:
                        self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


# ----- unit tests -----


def test_parse_question_and_verification():
    assert parse.parse_new_question("Sure!\nNew question: Ann has 3 pens. How many?\nSolution: 3") == \
        "Ann has 3 pens. How many?"
    assert parse.parse_new_question("Ann has 3 pens. How many?") == "Ann has 3 pens. How many?"
    assert parse.parse_new_question("New question: What is 2+2? The answer is: 4.") == "What is 2+2?"
    assert parse.parse_new_question("") == ""
    v = parse.parse_verification("Verdict: REVISED\nQuestion: What is 2+3?", "What is 2+2?")
    assert (v.verdict, v.question) == ("revised", "What is 2+3?")
    assert parse.parse_verification("**Verdict:** REJECT", "q").verdict == "reject"
    assert parse.parse_verification("Verdict: OK", "What is 2+2?") == parse.Verification("ok", "What is 2+2?")
    assert parse.parse_verification("Looks good.", "What is 2+2?") == parse.Verification("unparsed", "What is 2+2?")
    assert parse.solution_target("2 + 2 = 4.\nThe answer is: 4\nUSER: more", "4") == "2 + 2 = 4.\nThe answer is: 4."
    assert parse.solution_target("The answer is: 4.", "4") == ""
    assert parse.solution_target("So $x=\\boxed{4}$", "4") == "So $x=\\boxed{4}$\nThe answer is: 4."


def test_prompts_format_and_override(tmp_path):
    ps = prompts.get_prompt_set("math")
    text = ps.format_question("Find $x$ if $x+1=2$.", "$x=\\boxed{1}$")
    assert "Find $x$ if $x+1=2$." in text and "New question:" in text
    assert "Verdict: OK" in ps.format_verify("q") and "The answer is: <ANSWER>." in ps.format_answer("q")
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"gsm8k": {"question": "Rewrite: {seed_question}\nNew question:"}}))
    sets = prompts.load_prompt_sets(str(path))
    assert sets["gsm8k"].format_question("Q?", "S") == "Rewrite: Q?\nNew question:"
    assert sets["gsm8k"].fingerprint() != prompts.PROMPT_SETS["gsm8k"].fingerprint()
    assert sets["math"] == prompts.PROMPT_SETS["math"]
    path.write_text(json.dumps({"gsm8k": {"question": "{seed_qestion}"}}))
    with pytest.raises(ValueError, match="bad template field"):
        prompts.load_prompt_sets(str(path))
    path.write_text('{"gsm8k":\n {"question": }}')
    with pytest.raises(ValueError, match=r"p.json:2: invalid JSON"):
        prompts.load_prompt_sets(str(path))


def test_vote_groups_equivalent_answers_and_filters():
    texts = ["1/2 of 1 is 0.5.\nThe answer is: 0.5.", "Half.\nThe answer is: \\frac{1}{2}.",
             "So 3.\nThe answer is: 3.", "I give up."]
    v = filters.vote(texts)
    assert (v.count, v.agreement, v.group) == (2, 0.5, [0, 1]) and v.answers[3] is None
    ok = filters.check_answers("What is half of one?", "Seed?", texts, filters.FilterOptions(agreement=0.5))
    assert ok.reason is None and ok.target == "1/2 of 1 is 0.5.\nThe answer is: 0.5." and ok.chosen == 0
    assert filters.check_answers("What is half of one?", "Seed?", texts,
                                 filters.FilterOptions(agreement=0.75)).reason == filters.LOW_AGREEMENT
    assert filters.answer_in_question("Tom has 5 pens. Is it true that he has 5 pens?", "5")
    assert not filters.answer_in_question("Tom has 5 pens and loses none. How many pens are left?", "5")
    assert filters.answer_in_question("What is 2+3? \\boxed{5}", "5")
    assert filters.is_seed_duplicate("Tom has  5 pens. How many?", "tom has 5 pens. how many?")


def test_near_duplicates_keep_first_and_scale():
    base = [r["question"] for r in procedural.generate(300, split="train", seed=3)]
    texts = list(base)
    texts.insert(10, base[4].replace(" has ", " owns ", 1) if " has " in base[4] else base[4] + " Hurry.")
    texts.append(base[200].upper())  # case and spacing do not hide a copy
    dropped = dedup.near_duplicates(texts)
    assert set(dropped) == {10, len(texts) - 1}
    assert dropped[10][0] == 4 and dropped[len(texts) - 1][0] == 201 and dropped[len(texts) - 1][1] == 1.0


def test_decontamination_index_flags_planted_question(tmp_path):
    index = decontam.build_index([write_test_set(tmp_path / "test.jsonl")], n=13)
    assert index.items == {"test.jsonl": 6}
    reworded = "Here is a task. " + PLANTED_TEST["question"].upper().replace(",", " ,")
    hit = index.check(reworded)
    assert hit is not None and hit.test_set == "test.jsonl" and len(hit.ngram.split()) == 13
    assert index.check("Janet's ducks lay 16 eggs per day. How many eggs in a week?") is None
    short = decontam.TestSetIndex(n=13)
    short.add("t", "1", "Compute 8 choose 4.")
    short.add("t", "2", "Find the sum of all positive divisors of 36 please.")  # 10 words
    assert short.check("compute 8 choose 4") is not None and short.check("Compute 8 choose 4 and add 1.") is None
    assert short.check("First, find the sum of all positive divisors of 36 please, then double it.") is not None
