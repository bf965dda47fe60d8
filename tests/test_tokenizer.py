"""Trained SentencePiece tokenizer: HF loadability, exact round trips, special ids."""

from __future__ import annotations

import json
import os
import random
import time

import pytest

from mathjax.data import procedural
from mathjax.data import tokenizer as tk
from mathjax.data.templates import get_template

transformers = pytest.importorskip("transformers")

_EXTRA = [
    "caf\u00e9 cr\u00e8me br\u00fbl\u00e9e, na\u00efve \u00fcber",
    "\u65e5\u672c\u8a9e\u306e\u6587\u7ae0 \u0421\u043b\u043e\u0432\u043e \u0639\u0631\u0628\u064a",
    "emoji \U0001f642\U0001f680 math \u2211 \u221a2 \u03c0 x\u00b2",
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("tok")
    recs = procedural.generate(1500, seed=0, max_steps=4)
    data = root / "train.jsonl"
    procedural.write_jsonl(recs, data)
    start = time.perf_counter()
    tok = tk.train_tokenizer([str(data), *_EXTRA], root / "out", vocab_size=700, template="xwin_math")
    return tok, root / "out", recs, time.perf_counter() - start


def _random_texts(n: int, seed: int = 0) -> list[str]:
    """Random strings over ASCII, digits, whitespace and arbitrary code points."""
    rng = random.Random(seed)
    pool = list("abcdefXYZ 0123456789+-*/=.,:'\n\t") + ["  ", "The answer is: "]
    texts = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(0, 30)):
            if rng.random() < 0.1:  # any code point but surrogates and the meta symbol
                cp = rng.choice([rng.randint(0x80, 0xD7FF), rng.randint(0xE000, 0x10FFFF)])
                parts.append(chr(cp) if cp != 0x2581 else "x")
            else:
                parts.append(rng.choice(pool))
        texts.append("".join(parts))
    return texts


def _texts(recs) -> list[str]:
    prompt = get_template("xwin_math").format_prompt
    return (
        list(tk.PROBE_TEXTS) + _EXTRA + _random_texts(300)
        + [r["question"] for r in recs[:150]] + [r["answer"] for r in recs[:150]]
        + [prompt(r["question"]) for r in recs[:50]]
    )


def test_trains_fast_and_writes_hf_files(trained):
    tok, out, _, seconds = trained
    assert seconds < 20
    assert sorted(os.listdir(out)) == sorted(
        ["tokenizer.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"])
    assert not [p for p in os.listdir(out.parent) if p.startswith(".tok-")]  # temp dir renamed away
    assert 300 < tok.vocab_size <= 700
    assert (tok.bos_id, tok.eos_id, tok.pad_id) == (1, 2, 3)
    config = json.loads((out / "tokenizer_config.json").read_text())
    assert config["add_prefix_space"] is False


def test_autotokenizer_matches_wrapper(trained):
    tok, out, recs, _ = trained
    hf = transformers.AutoTokenizer.from_pretrained(out)
    assert (hf.unk_token_id, hf.bos_token_id, hf.eos_token_id, hf.pad_token_id) == (0, 1, 2, 3)
    assert len(hf) == tok.vocab_size
    for text in _texts(recs):
        ids = tok.encode(text)
        assert hf.encode(text, add_special_tokens=False) == ids, text
        assert hf(text)["input_ids"] == [1] + ids  # HF users get BOS like the trainer
        assert hf.decode(ids, skip_special_tokens=True) == tok.decode(ids) == text


def test_load_tokenizer_dir_and_model_file_agree(trained):
    tok, out, recs, _ = trained
    from_dir, from_file = tk.load_tokenizer(out), tk.load_tokenizer(out / "tokenizer.model")
    assert isinstance(from_dir, tk.HFTokenizer) and isinstance(from_file, tk.SentencePieceTokenizer)
    for a in (from_dir, from_file):
        assert (a.bos_id, a.eos_id, a.pad_id, a.vocab_size) == (1, 2, 3, tok.vocab_size)
    tk.check_same(from_dir, from_file, _texts(recs))


def test_prompt_response_concatenation(trained):
    _, out, recs, _ = trained
    template = get_template("xwin_math")
    for tok in (tk.load_tokenizer(out), tk.load_tokenizer(out / "tokenizer.model")):
        for rec in recs[:100]:
            prompt, response = template.format_prompt(rec["question"]), rec["answer"]
            p_ids, r_ids = tok.encode(prompt, add_bos=True), tok.encode(response)
            assert p_ids[0] == tok.bos_id and tok.bos_id not in p_ids[1:] + r_ids
            # What the trainer builds and what the sampler decodes.
            assert tok.decode(p_ids + r_ids + [tok.eos_id]) == prompt + response
            assert tok.decode(r_ids + [tok.eos_id, tok.pad_id, tok.pad_id]) == response


def test_digits_split_and_byte_fallback(trained):
    tok, out, _, _ = trained
    hf = transformers.AutoTokenizer.from_pretrained(out)
    ids = tok.encode("x 9876543210 = 12")
    pieces = hf.convert_ids_to_tokens(ids)
    assert all(sum(c.isdigit() for c in p) <= 1 for p in pieces), pieces
    assert sum(p.isdigit() for p in pieces) == 12
    rare = "\U0001f996 \u0f00"  # never seen in training
    ids = tok.encode(rare)
    assert tk.UNK_ID not in ids and tok.decode(ids) == rare
    assert all(p.startswith("<0x") or p == "\u2581" for p in hf.convert_ids_to_tokens(ids))


def test_decode_skips_specials_and_out_of_range(trained):
    tok, out, _, _ = trained
    for t in (tok, tk.load_tokenizer(out)):
        ids = t.encode("The answer is: 42.")
        assert t.decode([0, 1, *ids, 2, 3, t.vocab_size, t.vocab_size + 7, -1]) == "The answer is: 42."
        # Special-token strings in text are text, never control ids.
        ids = t.encode("<s></s><pad><unk>")
        assert not set(ids) & {0, 1, 2, 3} and t.decode(ids) == "<s></s><pad><unk>"


def test_save_round_trip(trained, tmp_path):
    tok, out, recs, _ = trained
    texts = _texts(recs)[:200]
    tok.save(tmp_path / "sp_saved")
    tk.check_same(tok, tk.load_tokenizer(tmp_path / "sp_saved"), texts)
    hf = tk.load_tokenizer(out)
    (tmp_path / "hf_saved").mkdir()  # an existing dir is replaced
    hf.save(tmp_path / "hf_saved")
    tk.check_same(tok, tk.load_tokenizer(tmp_path / "hf_saved"), texts)


def test_iter_texts_and_errors(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"question": "Q?", "answer": "A.", "id": "x"}) + "\n\n")
    assert list(tk.iter_texts([str(path), "free text"])) == ["Q?", "A.", "free text"]
    assert list(tk.iter_texts(path, fields=("question",), template="plain")) == ["Question: Q?\nAnswer: "]
    with pytest.raises(ValueError):
        tk.train_tokenizer(["x"], tmp_path / "t", vocab_size=100)
    with pytest.raises(ValueError):
        tk.load_tokenizer(path)
