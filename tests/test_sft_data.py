"""SFT data: prompt masking, packing, truncation counts, deterministic order, bad input, presets, eval sets."""

from __future__ import annotations

import json
import os

import jax
import numpy as np
import pytest

from mathjax.data import sft, sources
from mathjax.data.templates import get_template
from mathjax.data.tokenizer import load_tokenizer
from mathjax.parallel.mesh import make_mesh
from sft_fixtures import arithmetic_records, make_tokenizer, write_jsonl


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    return load_tokenizer(make_tokenizer(str(tmp_path_factory.mktemp("tok"))))


@pytest.fixture(scope="module")
def mesh():
    return make_mesh("data:2,fsdp:2,tensor:2")


def _options(**kw):
    base = dict(seq_len=128, template="plain")
    base.update(kw)
    return sft.SFTDataOptions(**base)


def test_prompt_tokens_weigh_zero(tok):
    template = get_template("xwin_math")
    ids, prompt_len = sft.tokenize_example(tok, template, "What is 2 + 3?", "2 + 3 = 5.\nThe answer is: 5.")
    assert ids[0] == tok.bos_id and ids[-1] == tok.eos_id
    # Joint tokenisation: the prompt's trailing space belongs to the response's first token.
    assert tok.decode(ids[:prompt_len]) == template.format_prompt("What is 2 + 3?").rstrip(" ")
    tokens, targets, mask = sft.example_row_arrays(ids, prompt_len)
    np.testing.assert_array_equal(targets, ids[1:])
    # Target j is ids[j + 1]: trained on iff it is a response token or the EOS.
    assert mask[: prompt_len - 1].sum() == 0
    assert mask[prompt_len - 1 :].all()
    assert mask.sum() == len(ids) - prompt_len
    assert tok.decode(targets[mask == 1]) == " 2 + 3 = 5.\nThe answer is: 5."


def test_pack_rows_segments_and_positions(tok):
    store = sft.TokenStore()
    recs = arithmetic_records(12)
    for i, r in enumerate(recs):
        ids, p = sft.tokenize_example(tok, get_template("plain"), r["question"], r["answer"])
        store.add(i, ids, p)
    store.finalize()
    rows = sft.pack(store.lengths, np.arange(len(store)), seq_len=160)
    assert sorted(k for row in rows for k in row) == list(range(12))
    assert len(rows) < 12  # several examples share a row
    for row in rows:
        assert sum(store.lengths[k] - 1 for k in row) <= 160
        built = sft.build_row(store, row, 160)
        seg = built["segment_ids"]
        for s, k in enumerate(row, 1):
            ids, p = store.example(k)
            where = np.nonzero(seg == s)[0]
            np.testing.assert_array_equal(built["positions"][where], np.arange(len(ids) - 1))
            np.testing.assert_array_equal(built["tokens"][where], ids[:-1])
            np.testing.assert_array_equal(built["targets"][where], ids[1:])
        assert (built["loss_mask"][seg == 0] == 0).all()
    assert all(len(r) == 1 for r in sft.pack(store.lengths, np.arange(12), 160, enabled=False))


def test_truncate_and_drop_are_counted(tok, tmp_path):
    recs = arithmetic_records(10)
    recs[3]["answer"] = "1 + 1 = 2. " * 40 + "The answer is: 2."  # far longer than a row
    recs[5]["question"] = "How many? " * 80  # the prompt alone fills a row
    path = write_jsonl(tmp_path / "d.jsonl", recs)
    source = sources.open_sources(path)
    fields = sources.resolve_fields()
    store, stats = sft.tokenize_records(source, range(10), tok, get_template("plain"), fields, 128, True, False)
    assert (stats.truncated, stats.dropped_prompt_too_long, stats.examples) == (1, 1, 9)
    assert store.lengths.max() <= 129
    k = int(np.nonzero(store.index == 3)[0][0])
    ids, p = store.example(k)
    assert len(ids) == 129 and p < 129
    store, stats = sft.tokenize_records(source, range(10), tok, get_template("plain"), fields, 128, False, False)
    assert (stats.dropped_too_long, stats.dropped_prompt_too_long, stats.examples) == (2, 0, 8)
    assert "truncated 0, dropped 2 too long" in stats.summary()


def test_batches_deterministic_cover_data_and_reshuffle(tok, mesh, tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", arithmetic_records(40))
    layout = sft.BatchLayout(mesh, batch_size=8, micro_batches=2, seq_len=128)
    assert layout.global_shape == (2, 4, 128)
    a = sft.build_batches(path, tok, layout, _options(), seed=1)
    b = sft.build_batches(path, tok, layout, _options(), seed=1)
    c = sft.build_batches(path, tok, layout, _options(), seed=2)
    for step in (0, 3, 11):
        for key in sft.BATCH_KEYS:
            np.testing.assert_array_equal(a.batch(step)[key], b.batch(step)[key])
    assert not np.array_equal(a.batch(0)["tokens"], c.batch(0)["tokens"])
    # One epoch of every slot visits each example exactly once.
    seen = [k for slot in a.slots.values() for row in slot.rows(0) for k in row]
    assert sorted(seen) == list(range(40))
    # The next epoch visits them in another order.
    assert any(s.rows(0) != s.rows(1) for s in a.slots.values())
    assert a.stats.examples == 40 and a.stats.records == 40
    # The data position round-trips.
    assert a.check_state(json.loads(json.dumps(a.state(7)))) == 7
    glob = a.global_batch(2)
    assert glob["tokens"].shape == (2, 4, 128)
    np.testing.assert_array_equal(np.asarray(glob["tokens"]), a.batch(2)["tokens"])


def test_eval_pass_visits_each_example_once(tok, mesh, tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", arithmetic_records(21))
    layout = sft.BatchLayout(mesh, batch_size=4, micro_batches=1, seq_len=128)
    ev = sft.build_batches(path, tok, layout, _options(), seed=0, shuffle=False, repeat=False)
    n = ev.max_rows(0)
    segments = sum(int(ev.batch(i)["segment_ids"].max(axis=-1).sum()) for i in range(n + 2))
    assert segments == 21  # rows after a slot's last one are padding, not a second epoch
    assert ev.batch(n + 1)["loss_mask"].sum() == 0


def test_rows_of_a_slot_do_not_depend_on_other_slots(tok, mesh, tmp_path):
    """A process building only some slots gets the same rows (per-process slicing)."""
    path = write_jsonl(tmp_path / "d.jsonl", arithmetic_records(30))
    layout = sft.BatchLayout(mesh, batch_size=8, micro_batches=1, seq_len=128)
    full = sft.build_batches(path, tok, layout, _options(), seed=0)
    part = sft.BatchLayout(mesh, batch_size=8, micro_batches=1, seq_len=128)
    part.local_slots = part.local_slots[:, 2:5]
    part.local_row_ids = part.local_row_ids[2:5]
    half = sft.build_batches(path, tok, part, _options(), seed=0)
    assert len(half.store) < len(full.store)  # only its share was tokenized
    for step in range(4):
        np.testing.assert_array_equal(half.batch(step)["tokens"], full.batch(step)["tokens"][:, 2:5])


def test_batch_must_divide_over_data_axes(mesh):
    with pytest.raises(ValueError, match="divisible by data x fsdp"):
        sft.BatchLayout(mesh, batch_size=6, micro_batches=1, seq_len=8)
    with pytest.raises(ValueError, match="multiple of micro_batches"):
        sft.BatchLayout(mesh, batch_size=8, micro_batches=3, seq_len=8)


@pytest.mark.parametrize("raw, message", [
    ('{"question": "q", "answer": ', "invalid JSON"),
    ('{"question": "q"}', "missing field 'answer'"),
    ('{"question": "q", "answer": 7}', "non-empty string"),
    ('["q", "a"]', "expected a JSON object"),
])
def test_bad_line_names_file_and_line(tok, mesh, tmp_path, raw, message):
    path = write_jsonl(tmp_path / "bad.jsonl", arithmetic_records(12), raw_lines={6: raw})
    layout = sft.BatchLayout(mesh, batch_size=4, micro_batches=1, seq_len=128)
    with pytest.raises(ValueError, match=rf"bad\.jsonl:7: .*{message}"):
        sft.build_batches(path, tok, layout, _options(), seed=0)
    skipped = sft.build_batches(path, tok, layout, _options(skip_bad_lines=True), seed=0)
    assert skipped.stats.bad_records == 1 and skipped.stats.examples == 11


def test_blank_lines_are_not_records_and_lines_count_from_one(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"question": "a", "answer": "b"}\n\n{"question": "c"}\n')
    source = sources.open_sources(str(path))
    assert len(source) == 2
    with pytest.raises(sources.BadRecordError, match=r"d\.jsonl:3: missing field"):
        list(sources.read_pairs(source, range(2), sources.resolve_fields(), skip_bad=False))


def test_presets_and_custom_fields(tmp_path):
    gsm = {"question": "Q?", "answer": "Half of 48 is <<48/2=24>>24.\n#### 1,024"}
    q, target = sources.to_pair(gsm, sources.resolve_fields("gsm8k"), "x:1")
    assert target == "Half of 48 is 24.\nThe answer is: 1024."
    math = {"problem": "P?", "solution": "So $\\boxed{\\frac{1}{2}}$."}
    q, target = sources.to_pair(math, sources.resolve_fields("math"), "x:1")
    assert q == "P?" and target.endswith("The answer is: \\frac{1}{2}.")
    with pytest.raises(sources.BadRecordError, match="x:1: gsm8k answer"):
        sources.to_pair({"question": "q", "answer": "no final"}, sources.resolve_fields("gsm8k"), "x:1")
    custom = sources.resolve_fields("", "prompt", "completion")
    assert sources.to_pair({"prompt": "p", "completion": "c"}, custom, "x:1") == ("p", "c")
    with pytest.raises(ValueError, match="unknown dataset preset"):
        sources.resolve_fields("nope")


def test_hf_datasets_local_file(tok, mesh, tmp_path):
    """A data file read through `datasets` (here parquet-free: a JSON array file)."""
    pytest.importorskip("datasets")
    recs = arithmetic_records(16)
    path = tmp_path / "data.json"
    path.write_text(json.dumps([{"problem": r["question"], "sol": r["answer"]} for r in recs]))
    layout = sft.BatchLayout(mesh, batch_size=4, micro_batches=1, seq_len=128)
    batches = sft.build_batches("", tok, layout, _options(question_field="problem", answer_field="sol"), seed=0,
                                hf_dataset=str(path))
    assert batches.stats.examples == 16


def test_load_eval_set_formats(tmp_path):
    gsm = tmp_path / "gsm"
    gsm.mkdir()
    write_jsonl(gsm / "test.jsonl", [{"question": "Q1", "answer": "a\n#### 1,200"}, {"question": "Q2", "answer": "b\n#### -3"}])
    got = sources.load_eval_set(str(gsm), split="test")
    assert [r["answer"] for r in got] == ["1200", "-3"]
    assert got[0]["question"] == "Q1" and got[0]["id"] and got[0]["solution"] == "a\n#### 1,200"
    math = write_jsonl(tmp_path / "math.jsonl", [
        {"unique_id": "test/algebra/1.json", "problem": "P", "level": "Level 3", "type": "Algebra",
         "solution": "x $\\boxed{2}$ then $\\boxed{\\frac{a}{b}}$"}])
    (rec,) = sources.load_eval_set(math)
    assert rec == {"id": "test/algebra/1.json", "question": "P", "answer": "\\frac{a}{b}", "level": "Level 3",
                   "type": "Algebra", "solution": "x $\\boxed{2}$ then $\\boxed{\\frac{a}{b}}$"}
    proc = write_jsonl(tmp_path / "proc.jsonl", arithmetic_records(5))
    got = sources.load_eval_set(proc, limit=3)
    assert len(got) == 3 and got[0]["answer"] == arithmetic_records(1)[0]["final_answer"]
    assert got[0]["id"] == "arith-0" and got[0]["solution"].endswith(f"The answer is: {got[0]['answer']}.")
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"question": "Q", "answer": "a\n#### 1"}], raw_lines={0: "{oops"})
    with pytest.raises(ValueError, match=r"bad\.jsonl:1"):
        sources.load_eval_set(bad)
