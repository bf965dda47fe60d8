"""RFT data: path selection (correct, distinct equation sequences), the difficulty budget, an end-to-end run."""

import dataclasses
import json
import os
import subprocess
import sys

import pytest

from mathjax.rl import rft_select
from mathjax.rl.rft_select import equation_signature, extra_samples, select_paths

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

QUESTION = {"id": "apples", "question": "Tom has 3 boxes of 4 apples and eats 2. How many are left?",
            "answer": "He has 3 * 4 = <<3*4=12>>12 apples.\nHe has 12 - 2 = <<12-2=10>>10 left.\n#### 10"}
# Equation sequence A: 3*4=12, 12-2=10.
PATH_A = "Tom has 3 boxes of 4 apples, so 3 * 4 = 12 apples.\nHe eats 2: 12 - 2 = 10.\nThe answer is: 10."
PATH_A_REWORDED = ("There are 3 boxes with 4 apples in each: 3*4 = 12.\nEating 2 of them leaves 12-2 = 10.\n"
                   "The answer is: 10.\nUSER: thanks")  # what follows the final line is cut
# Sequence B: 4*3=12, 12-2=10 (another calculation order).
PATH_B = "Each of the 4 apples is in 3 boxes: 4 x 3 = 12.\nThen 12 - 2 = 10.\nThe answer is: 10."
WRONG = "3 * 4 = 12 apples, and he buys 2 more: 12 + 2 = 14.\nThe answer is: 14."
SLIP = "3 * 4 = 13 apples, minus 3 eaten: 13 - 3 = 10.\nThe answer is: 10."  # right answer, wrong arithmetic
NO_LINE = "3 * 4 = 12 and 12 - 2 = 10 apples."


def test_equation_signature_normalises_layout():
    assert equation_signature(PATH_A) == ("3*4=12", "12-2=10")
    assert equation_signature(PATH_A_REWORDED) == equation_signature(PATH_A)
    assert equation_signature(PATH_B) == ("4*3=12", "12-2=10")
    assert equation_signature("Total: $1,200 + $300 = $1,500.") == ("1200+300=1500",)
    assert equation_signature("No calculations here.") == ()


def test_select_keeps_only_correct_distinct_paths():
    gold = rft_select.gold_answer(QUESTION)
    assert gold == "10"
    samples = [{"text": t} for t in (PATH_A, PATH_A_REWORDED, PATH_B, WRONG, SLIP, NO_LINE)]
    kept = select_paths(QUESTION, samples, gold)
    assert kept == [PATH_A, PATH_B]
    sel = rft_select.classify_paths(QUESTION, samples, gold)
    assert sel.outcomes == ["kept", "duplicate", "kept", "wrong_answer", "arithmetic_slip", "no_final_line"]
    assert sel.num_correct == 4  # A, A again, B and the slip all end in 10
    # The slip survives when arithmetic is not checked; the final line cuts the trailing turn.
    loose = select_paths(QUESTION, [SLIP, PATH_A_REWORDED], gold, require_correct_arithmetic=False)
    assert loose == [SLIP, PATH_A_REWORDED.split("\nUSER:")[0]]
    # Grades from the bulk grader are used as given.
    assert select_paths(QUESTION, [PATH_A, PATH_B], gold, correct=[False, True]) == [PATH_B]
    # Against the gold solution (sequence A), only B is new.
    assert select_paths(QUESTION, samples, gold, dedup_with_reference=True) == [PATH_B]


def test_reference_target_and_gold():
    assert rft_select.reference_target(QUESTION) == "He has 3 * 4 = 12 apples.\nHe has 12 - 2 = 10 left.\nThe answer is: 10."
    assert rft_select.gold_answer({"answer": "Half of 8 is 4.\nThe answer is: 4."}) == "4"
    assert rft_select.gold_answer({"answer": "72"}) == "72"
    assert rft_select.reference_target({"answer": "72"}) is None  # no steps: not a training path
    assert rft_select.gold_answer({"answer": "x", "final_answer": 5}) == "5"


def test_difficulty_budget_favours_low_pass_rates():
    kw = dict(min_correct=4, max_samples=64, step=4)
    budgets = [extra_samples(4, kept, **kw) for kept in (0, 1, 2, 4)]
    assert budgets[0] > budgets[1] > budgets[2] > 0 == budgets[3]
    assert all(b % 4 == 0 for b in budgets)
    assert extra_samples(60, 0, **kw) == 4  # cut to the cap
    assert extra_samples(64, 0, **kw) == 0


# ----- end to end, on a tiny random model -----

TRAIN = [
    {"id": "q0", "question": QUESTION["question"], "answer": QUESTION["answer"]},
    {"id": "q1", "question": "A farm has 7019 cows and buys 300. How many now?",
     "answer": "7019 + 300 = 7319 cows.\nThe answer is: 7319."},
    {"id": "q2", "question": "What is 9043 minus 0?", "answer": "9043 - 0 = 9043.\n#### 9043"},
]
# Injected into the first pass of q0 (a random model never writes these).
INJECT = {("q0", 0): PATH_A, ("q0", 1): PATH_A_REWORDED, ("q0", 2): PATH_B, ("q0", 3): SLIP}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A tiny random HF model dir with its own SentencePiece tokenizer (nothing downloaded)."""
    from sample_fixtures import tiny_model_dir

    texts = [r["question"] for r in TRAIN] + [r["answer"] for r in TRAIN]
    return tiny_model_dir(tmp_path_factory.mktemp("rft"), texts)


@pytest.fixture
def injected(monkeypatch):
    """The runner's sampler, with hand-written texts in place of some first-pass samples."""
    from mathjax.sample import runner

    class InjectingSampler(runner.Sampler):
        def generate(self, prompts, num_samples=1, seed=0, question_ids=None, progress=None):
            for i, samples in super().generate(prompts, num_samples, seed, question_ids, progress):
                qid = question_ids[i]
                yield i, [dataclasses.replace(s, text=INJECT[(qid, j)]) if seed == 0 and (qid, j) in INJECT else s
                          for j, s in enumerate(samples)]

    monkeypatch.setattr(runner, "Sampler", InjectingSampler)


def _one_device_loader(path):
    import mathjax

    model = mathjax.load(path)  # one device: the fastest to compile on the shared CPU
    return model, model.tokenizer()


def _lines(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


OPTS = dict(num_samples=4, max_new_tokens=16, batch_size=8, grade_workers=0, budget="difficulty", min_correct=1,
            max_samples=8)


def test_end_to_end_shards_merge_and_resume(model_dir, injected, tmp_path):
    from mathjax.data import sft
    from mathjax.parallel.mesh import make_mesh
    from mathjax.rl import rft
    from mathjax.train.checkpoint import load_tokenizer_from

    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in TRAIN))
    out = str(tmp_path / "out")
    opts = rft.RFTOptions(**OPTS)
    loader = _one_device_loader
    # Two independent jobs (q0, q2 | q1), then the merge.
    for i in range(2):
        res = rft.run_rft(model_dir, str(train), out, opts, loader=loader, process_index=i, process_count=2,
                          progress=False)
        assert res.rounds[0]["written"] > 0 and "stats" not in res.rounds[0]
    with pytest.raises(ValueError, match="other settings"):
        rft.run_rft(model_dir, str(train), out, dataclasses.replace(opts, seed=1), loader=loader,
                    process_index=0, process_count=2, progress=False)
    merged = rft.run_rft(model_dir, str(train), out, opts, process_count=2, merge_only=True, progress=False)
    stats = merged.rounds[0]["stats"]

    rows = _lines(os.path.join(out, "rft.jsonl"))
    assert [r["id"] for r in rows if r["source"] == "gold"] == ["q0/gold", "q1/gold", "q2/gold"]
    assert rows[0]["answer"].endswith("The answer is: 10.") and "####" not in rows[0]["answer"]
    # q0's own solution is sequence A, so only B is new; the random model's text never grades right.
    assert [r["answer"] for r in rows if r["source"] == "sample"] == [PATH_B]
    # The difficulty budget: q0 has its path after 4 samples, q1 and q2 got another pass up to the cap.
    full = json.load(open(os.path.join(out, "stats.json")))
    per_q = {q["id"]: q for q in full["per_question"]}
    assert [per_q[q]["samples"] for q in ("q0", "q1", "q2")] == [4, 8, 8]
    assert per_q["q0"]["correct"] == 4 and per_q["q0"]["pass_rate"] == 1.0 and per_q["q0"]["kept"] == 1
    assert per_q["q0"]["outcomes"] == {"kept": 1, "duplicate": 2, "arithmetic_slip": 1}
    assert stats["examples"] == 4 and stats["kept_paths"] == 1 and stats["samples"] == 20
    assert os.path.exists(os.path.join(out, "round_1", "samples", "pass1_n4.shard-00001-of-00002.jsonl"))

    # The SFT trainer's data loader reads it as is.
    tokenizer = load_tokenizer_from(model_dir)
    layout = sft.BatchLayout(make_mesh("data:1", devices=__import__("jax").devices()[:1]), 2, 1, 512)
    batches = sft.build_batches(os.path.join(out, "rft.jsonl"), tokenizer, layout,
                                sft.SFTDataOptions(seq_len=512, template="xwin_math"), seed=0)
    assert batches.stats.examples == 4 and batches.batch(0)["loss_mask"].sum() > 0

    # A second run of every job resumes: nothing sampled again, the same data.
    before = open(os.path.join(out, "rft.jsonl")).read()
    for i in range(2):
        res = rft.run_rft(model_dir, str(train), out, opts, loader=loader, process_index=i, process_count=2,
                          progress=False)
        assert res.rounds[0]["written"] == 0
    rft.run_rft(model_dir, str(train), out, opts, process_count=2, merge_only=True, progress=False)
    assert open(os.path.join(out, "rft.jsonl")).read() == before


def test_script_resumes_without_sampling(model_dir, injected, tmp_path):
    """The acceptance command line: a finished run's rerun samples nothing and loads no model."""
    from mathjax.rl import rft

    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in TRAIN))
    out = str(tmp_path / "out")
    opts = rft.RFTOptions(**{**OPTS, "budget": "uniform"})
    first = rft.run_rft(model_dir, str(train), out, opts, loader=_one_device_loader, progress=False)
    assert first.rounds[0]["written"] == 3
    cmd = [sys.executable, "scripts/rft.py", f"--model={model_dir}", f"--input={train}", f"--output={out}",
           "--num_samples=4", "--max_new_tokens=16", "--batch_size=8", "--grade_workers=0", "--mesh=data:1",
           "--noprogress"]
    env = {**os.environ, "PYTHONPATH": ROOT, "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "round 1: 3 questions, 12 samples" in done.stdout
    marker = json.load(open(os.path.join(out, "round_1", "samples", "done-00000-of-00001.json")))
    assert marker["written"] == 0 and marker["skipped"] == 3
    assert [r["answer"] for r in _lines(os.path.join(out, "rft.jsonl")) if r["source"] == "sample"] == [PATH_B]


def test_rest_em_rounds_fine_tune_between_rounds(model_dir, tmp_path):
    """rounds=2: round 1's data fine-tunes the base model, round 2 samples from that workdir."""
    from mathjax.rl import rft

    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in TRAIN))
    out = str(tmp_path / "out")
    config = rft._load_config(os.path.join(ROOT, "configs", "tiny.py"))
    config.steps, config.batch_size, config.seq_len, config.checkpoint_every = 2, 8, 512, 2
    config.peak_flops_cpu, config.tensorboard = 1e12, False  # no matmul benchmark for the MFU figure
    opts = rft.RFTOptions(**{**OPTS, "budget": "uniform", "num_samples": 2, "rounds": 2})
    res = rft.run_rft(model_dir, str(train), out, opts, sft_config=config, loader=_one_device_loader,
                      progress=False)
    workdir = os.path.join(out, "round_1", "train")
    assert res.rounds[1]["model"] == workdir and res.rounds[1]["written"] == 3
    trained = json.load(open(os.path.join(workdir, rft.TRAINED_MARKER)))
    assert trained["step"] == 2 and trained["data"]["examples"] == 3  # the three gold solutions
    saved = json.load(open(os.path.join(workdir, "train_config.json")))
    assert saved["init_from"] == model_dir and saved["data"]["template"] == "xwin_math"
    meta = json.load(open(os.path.join(out, "round_2", "samples", "pass0_n2.jsonl.meta.json")))
    assert meta["model"] == workdir
    assert open(os.path.join(out, "rft.jsonl")).read() == open(os.path.join(out, "round_2", "rft.jsonl")).read()
    assert json.load(open(os.path.join(out, "stats.json")))["round"] == 2
