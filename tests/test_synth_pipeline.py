"""The synthesis pipeline with a scripted generator: every drop reason, stats accounting, leakage
report/enforcement, resume after a crash (torn lines, no loss or duplication), process shards, and
the output read unchanged by the SFT data reader."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from mathjax import synth
from mathjax.data import sft, sources
from mathjax.data.templates import FINAL_ANSWER_PREFIX
from mathjax.synth import filters, pipeline
from test_synth_fakes import PLANTED_TEST, Crash, FakeGenerator, make_plan, write_jsonl, write_test_set

N = 30


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    seeds, plan = make_plan(N)
    seeds_path = write_jsonl(root / "seeds.jsonl", seeds)
    test_path = write_test_set(root / "gsm8k_test.jsonl")
    return synth.load_seeds(seeds_path), plan, test_path


def _lines(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _expected(plan, enforce=True):
    out = {}
    for sid, p in plan.items():
        e = p["expect"]
        out[sid] = None if (e == filters.CONTAMINATED and not enforce) else e
    return out


def test_every_reason_accounted_and_output_is_sft_input(data, tmp_path):
    seeds, plan, test_path = data
    opts = synth.SynthOptions(num_answers=4, decontaminate=(test_path,), enforce_decontamination=True)
    gen = FakeGenerator(plan)
    summary = synth.run(seeds, gen, str(tmp_path), opts, progress=False)
    stats = summary.stats
    assert summary.generated == {"1_questions": N, "2_verified": N - 1, "3_answers": N - 2}
    assert stats["kept"] + sum(stats["dropped"].values()) == stats["seeds"] == N
    expected = _expected(plan)
    want = {r: sum(1 for e in expected.values() if e == r) for r in filters.DROP_REASONS}
    assert stats["dropped"] == want
    assert stats["kept"] == N - 8  # seeds 0-5, 7 and 8 dropped; 6, 9 (revised), 10 (unparsed) and up kept
    assert stats["verdicts"] == {"ok": N - 4, "reject": 1, "revised": 1, "unparsed": 1}
    assert stats["decontamination"]["flagged"] == 1 and stats["decontamination"]["enforced"]
    assert stats["decontamination"]["hits"][0]["test_set"] == "gsm8k_test.jsonl"
    with open(tmp_path / "stats.json") as f:
        assert json.load(f) == stats

    kept = _lines(tmp_path / "synthetic.jsonl")
    dropped = _lines(tmp_path / "dropped.jsonl")
    assert len(kept) == stats["kept"] and len(dropped) == N - stats["kept"]
    by_seed = {r["provenance"]["seed_id"]: r for r in kept}
    for sid, reason in expected.items():
        assert (sid in by_seed) == (reason is None), sid
    for r in dropped:
        assert r["reason"] == expected[r["provenance"]["seed_id"]]
    ids = [s["id"] for s in seeds]
    for r in kept:
        p = r["provenance"]
        assert r["id"] == f"synth-{p['seed_id']}" and p["generator"] == "fake:scripted"
        assert r["question"] == plan[p["seed_id"]]["final_q"]
        assert r["answer"].endswith(f"{FINAL_ANSWER_PREFIX}{p['majority_answer']}.")
        assert p["agreement"] == 1.0 and p["votes"] == 4 and len(p["stages"]["answers"]) == 4
        assert set(p["stages"]) == {"question", "draft_question", "verify", "answers"}
    assert by_seed[ids[9]]["provenance"]["verdict"] == "revised"
    assert by_seed[ids[10]]["provenance"]["verdict"] == "unparsed"
    assert [r["provenance"]["seed_id"] for r in kept] == [i for i in ids if i in by_seed]  # seed order

    # The trainer's reader takes the file as it is: default question/answer fields, no preset.
    source = sources.open_sources(str(tmp_path / "synthetic.jsonl"))
    pairs = list(sources.read_pairs(source, range(len(source)), sources.resolve_fields(), skip_bad=False))
    assert [(q, a) for _, q, a in pairs] == [(r["question"], r["answer"]) for r in kept]

    # A rerun regenerates nothing; only finalize runs again (its thresholds may change).
    gen2 = FakeGenerator(plan)
    summary = synth.run(seeds, gen2, str(tmp_path), opts, progress=False)
    assert summary.generated == {"1_questions": 0, "2_verified": 0, "3_answers": 0}
    assert summary.stats == {**stats, "finalize_seconds": summary.stats["finalize_seconds"]}


def test_sft_batches_consume_output(data, tmp_path):
    from mathjax.data.tokenizer import load_tokenizer
    from mathjax.parallel.mesh import make_mesh
    from sft_fixtures import make_tokenizer

    seeds, plan, _ = data
    synth.run(seeds, FakeGenerator(plan), str(tmp_path), synth.SynthOptions(), progress=False)
    tok = load_tokenizer(make_tokenizer(str(tmp_path / "tok")))
    layout = sft.BatchLayout(make_mesh("data:2,fsdp:2,tensor:2"), batch_size=4, micro_batches=1, seq_len=256)
    batches = sft.build_batches(str(tmp_path / "synthetic.jsonl"), tok, layout,
                                sft.SFTDataOptions(seq_len=256, template="plain"), seed=0)
    kept = len(_lines(tmp_path / "synthetic.jsonl"))
    assert batches.stats.examples == kept and batches.stats.bad_records == 0
    b = batches.batch(0)
    assert b["loss_mask"].sum() > 0 and np.all(b["tokens"] < tok.vocab_size)


def test_leakage_reported_without_enforcement(data, tmp_path):
    seeds, plan, test_path = data
    stats = synth.run(seeds, FakeGenerator(plan), str(tmp_path),
                      synth.SynthOptions(decontaminate=(test_path,)), progress=False).stats
    assert stats["dropped"][filters.CONTAMINATED] == 0 and stats["decontamination"]["flagged"] == 1
    flagged = [r for r in _lines(tmp_path / "synthetic.jsonl") if "contamination" in r["provenance"]]
    assert [r["question"] for r in flagged] == [PLANTED_TEST["question"]]
    # Thresholds are finalize-only: tighten agreement without regenerating anything.
    strict = synth.finalize(seeds, str(tmp_path), synth.SynthOptions(filters=synth.FilterOptions(agreement=1.0)))
    assert strict["kept"] == stats["kept"] and strict["decontamination"]["flagged"] == 0


@pytest.mark.parametrize("stage", [0, 1, 2])
def test_resume_after_crash_loses_and_duplicates_nothing(data, tmp_path, stage):
    seeds, plan, _ = data
    opts = synth.SynthOptions(num_answers=3)
    clean_dir = tmp_path / "clean"
    synth.run(seeds, FakeGenerator(plan), str(clean_dir), opts, progress=False)

    out = tmp_path / "crashed"
    gen = FakeGenerator(plan)
    stages_before = {0: 0, 1: N, 2: 2 * N - 1}[stage]  # lines written before the crash stage
    gen.crash_after = stages_before + 7  # crash 7 records into the stage, leaving a torn line
    with pytest.raises(Crash):
        synth.run(seeds, gen, str(out), opts, progress=False)
    torn = pipeline.stage_path(str(out), pipeline.STAGES[stage])
    with open(torn, "rb") as f:
        assert not f.read().endswith(b"\n")  # the crash left half a line
    with pytest.raises(ValueError, match="not finished every stage"):
        synth.finalize(seeds, str(out), opts)
    resumed = FakeGenerator(plan)
    synth.run(seeds, resumed, str(out), opts, progress=False)
    assert resumed.calls[stage][1] == {0: N, 1: N - 1, 2: N - 2}[stage] - 7
    for st in pipeline.STAGES:
        ids = [r["id"] for r in _lines(pipeline.stage_path(str(out), st))]
        assert len(ids) == len(set(ids)) == len(_lines(pipeline.stage_path(str(clean_dir), st)))
    assert _lines(out / "synthetic.jsonl") == _lines(clean_dir / "synthetic.jsonl")
    with open(out / "stats.json") as a, open(clean_dir / "stats.json") as b:
        sa, sb = json.load(a), json.load(b)
    assert {k: v for k, v in sa.items() if k not in ("output", "finalize_seconds")} == \
        {k: v for k, v in sb.items() if k not in ("output", "finalize_seconds")}


def test_process_shards_equal_single_run(data, tmp_path):
    seeds, plan, test_path = data
    opts = synth.SynthOptions(decontaminate=(test_path,))
    single = synth.run(seeds, FakeGenerator(plan), str(tmp_path / "one"), opts, progress=False).stats
    multi = tmp_path / "three"
    for i in range(3):
        s = synth.run(seeds, FakeGenerator(plan), str(multi), opts, process_index=i, process_count=3, progress=False)
        assert s.seeds == N // 3 and s.stats is None
    assert sorted(os.listdir(multi / "stages"))[0] == "1_questions.shard-00000-of-00003.jsonl"
    stats = synth.finalize(seeds, str(multi), opts, process_count=3)
    assert stats["kept"] == single["kept"] and stats["dropped"] == single["dropped"]
    assert _lines(multi / "synthetic.jsonl") == _lines(tmp_path / "one" / "synthetic.jsonl")


def test_changed_settings_and_bad_seeds_are_refused(data, tmp_path):
    seeds, plan, _ = data
    synth.run(seeds[:3], FakeGenerator(plan), str(tmp_path), synth.SynthOptions(num_answers=2), progress=False)
    with pytest.raises(ValueError, match="other settings.*num_answers"):
        synth.run(seeds[:3], FakeGenerator(plan), str(tmp_path), synth.SynthOptions(num_answers=3), progress=False)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "What is 1+1?", "answer": "2"}\n{"question": \n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2"):
        synth.load_seeds(str(bad))
    dup = write_jsonl(tmp_path / "dup.jsonl", [{"id": "a", "question": "q", "answer": "1"}] * 2)
    with pytest.raises(ValueError, match="duplicate question id 'a'"):
        synth.load_seeds(dup)
    with pytest.raises(ValueError, match="style"):
        synth.SynthOptions(style="aime")


def test_math_seeds_get_math_prompts(tmp_path):
    path = write_jsonl(tmp_path / "math_train.jsonl", [
        {"problem": "Find $x$ if $2x = 6$.", "solution": "Divide: $x = \\boxed{3}$.", "level": "Level 1",
         "type": "Algebra", "unique_id": "train/algebra/1.json"}])
    seeds = synth.load_seeds(path)
    assert seeds[0]["id"] == "train/algebra/1.json" and pipeline.seed_style(seeds[0]) == "math"
    assert pipeline.seed_style({"question": "q", "answer": "1"}) == "gsm8k"
    assert pipeline.seed_style(seeds[0], "gsm8k") == "gsm8k"

    class Recorder(FakeGenerator):
        def run_stage(self, records, path, **kw):
            self.prompts = getattr(self, "prompts", []) + [r["question"] for r in records]

    gen = Recorder({})
    synth.run(seeds, gen, str(tmp_path / "out"), progress=False, finalize_output=False)
    assert gen.prompts[0] == synth.PROMPT_SETS["math"].format_question(seeds[0]["question"], seeds[0]["solution"])
    assert "competition mathematics" in gen.prompts[0] and "Divide: $x = \\boxed{3}$." in gen.prompts[0]
