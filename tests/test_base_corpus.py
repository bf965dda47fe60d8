"""The demo's base model: its pretraining corpus, the `text` dataset preset, the rebuild script, the shipped copy."""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest

from mathjax.data import base_corpus, procedural, sft, sources
from mathjax.data.templates import FINAL_ANSWER_PREFIX, get_template
from mathjax.data.tokenizer import load_tokenizer
from mathjax.grader.arithmetic import check_arithmetic
from sft_fixtures import make_tokenizer, write_jsonl

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED = os.path.join(ROOT, "assets", "demo_base")


def test_corpus_is_deterministic_mixed_and_has_no_answer_format():
    docs = base_corpus.generate_corpus(400, seed=3, max_number=40)
    assert docs == base_corpus.generate_corpus(400, seed=3, max_number=40)
    assert docs != base_corpus.generate_corpus(400, seed=4, max_number=40)
    kinds = [d["kind"] for d in docs]
    assert 0.45 < kinds.count("story") / len(docs) < 0.75  # STORY_SHARE = 0.6
    for d in docs:
        assert FINAL_ANSWER_PREFIX not in d["text"] and "Question:" not in d["text"]
        checks = check_arithmetic(d["text"])
        assert checks and all(c.ok for c in checks), d["text"]  # every fact and step is right


def test_stories_are_training_split_and_within_the_step_limit():
    docs = [d for d in base_corpus.generate_corpus(300, seed=0, max_steps=3) if d["kind"] == "story"]
    for d in docs:
        equations = [f"{c.expression}" for c in check_arithmetic(d["text"])]
        assert 1 <= len(equations) <= 3
    # the stories' problems, regenerated, are train-split problems (their equation chains are not test chains)
    problems = procedural.generate(len(docs), "train", seed=1_000_003, min_steps=1, max_steps=3, max_number=20)
    assert all(not procedural.skeleton_is_test(re.findall(r"\d+ [-+*/] \d+(?: [-+*/] \d+)* = \d+", p["answer"]))
               for p in problems)
    with pytest.raises(ValueError, match="num_docs"):
        base_corpus.generate_corpus(-1)


def test_text_preset_trains_on_every_token(tmp_path):
    tok = load_tokenizer(make_tokenizer(str(tmp_path / "tok")))
    path = write_jsonl(tmp_path / "c.jsonl", [{"text": "3 + 4 = 7\n7 * 2 = 14"}, {"text": "Ann has 2 cards."}])
    fields = sources.resolve_fields("text")
    assert fields.question_field is None and fields.answer_field == "text"
    store, stats = sft.tokenize_records(sources.open_sources(path), range(2), tok, get_template("none"), fields,
                                        64, True, False)
    assert stats.examples == 2
    for k in range(2):
        ids, prompt_len = store.example(k)
        _, _, mask = sft.example_row_arrays(ids, prompt_len)
        assert mask.all()  # every next-token target is trained on (the BOS is only an input)
        assert ids[0] == tok.bos_id
    # a record without the field names file and line; a prompt template is refused with a clear error
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"text": "ok"}, {"question": "no text"}])
    with pytest.raises(sources.BadRecordError, match=r"bad\.jsonl:2: missing field 'text'"):
        list(sources.read_pairs(sources.open_sources(bad), range(2), fields, skip_bad=False))
    from mathjax.parallel.mesh import make_mesh

    layout = sft.BatchLayout(make_mesh("data:1,fsdp:-1,tensor:1"), batch_size=8, micro_batches=1, seq_len=64)
    with pytest.raises(ValueError, match="needs template 'none'"):
        sft.build_batches(path, tok, layout, sft.SFTDataOptions(seq_len=64, template="plain", dataset="text"), seed=0)
    batches = sft.build_batches(path, tok, layout, sft.SFTDataOptions(seq_len=64, template="none", dataset="text"),
                                seed=0)
    b = batches.batch(0)
    assert np.array_equal(b["loss_mask"] > 0, b["segment_ids"] > 0)


@pytest.mark.slow
def test_rebuild_script_writes_a_loadable_base(tmp_path):
    import mathjax
    from mathjax.experiments.demo_base import build_base

    out = str(tmp_path / "base")
    summary = build_base(out, str(tmp_path / "work"), num_docs=300, steps=3, progress=False, log=lambda s: None)
    assert summary["steps"] == 3 and summary["num_docs"] == 300
    model = mathjax.load(out)
    assert model.config.vocab_size == summary["vocab_size"]
    tok = model.tokenizer()
    assert tok.decode(tok.encode("The answer is: 305.")) == "The answer is: 305."
    assert json.load(open(os.path.join(out, "pretraining.json")))["steps"] == 3


def test_shipped_base_is_small_and_documented():
    assert os.path.exists(os.path.join(SHIPPED, "config.json")), "assets/demo_base missing: scripts/pretrain_base.py"
    size = sum(os.path.getsize(os.path.join(SHIPPED, f)) for f in os.listdir(SHIPPED))
    assert size <= 10 * 1024 * 1024
    info = json.load(open(os.path.join(SHIPPED, "pretraining.json")))
    assert info["steps"] > 0 and info["train_seconds"] > 0
    with open(os.path.join(SHIPPED, "model.safetensors"), "rb") as f:  # weights stored in bfloat16
        header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
    assert {v["dtype"] for k, v in header.items() if k != "__metadata__"} == {"BF16"}
