"""Tokenized-data cache: hits skip tokenization, give identical batches, and any change or damage rebuilds."""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest

from mathjax.data import sft, token_cache
from mathjax.data.tokenizer import load_tokenizer
from mathjax.parallel.mesh import make_mesh
from sft_fixtures import arithmetic_records, make_tokenizer, write_jsonl


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    return load_tokenizer(make_tokenizer(str(tmp_path_factory.mktemp("tok"))))


@pytest.fixture(scope="module")
def layout():
    return sft.BatchLayout(make_mesh("data:2,fsdp:2,tensor:2"), batch_size=8, micro_batches=2, seq_len=128)


@pytest.fixture
def calls(monkeypatch):
    """Counts tokenize_records calls made by build_batches."""
    count = {"n": 0}
    real = sft.tokenize_records

    def counting(*args, **kwargs):
        count["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(sft, "tokenize_records", counting)
    return count


def _options(**kw):
    return sft.SFTDataOptions(**{"seq_len": 128, "template": "plain", **kw})


def _assert_same(a: sft.SFTBatches, b: sft.SFTBatches, steps=(0, 1, 5)) -> None:
    assert a.stats == b.stats
    for step in steps:
        x, y = a.batch(step), b.batch(step)
        for key in sft.BATCH_KEYS:
            np.testing.assert_array_equal(x[key], y[key])


def _cache_files(cache: str) -> list[str]:
    return sorted(f for f in os.listdir(cache) if f.endswith(".npz")) if os.path.isdir(cache) else []


def test_second_build_reads_the_cache_and_batches_match(tok, layout, tmp_path, calls, monkeypatch):
    path = write_jsonl(tmp_path / "d.jsonl", arithmetic_records(40))
    cache = str(tmp_path / "cache")
    plain = sft.build_batches(path, tok, layout, _options(), seed=1)
    first = sft.build_batches(path, tok, layout, _options(), seed=1, cache_dir=cache)
    assert calls["n"] == 2 and len(_cache_files(cache)) == 1
    assert not [f for f in os.listdir(cache) if f.endswith(".tmp")]  # the temp file was renamed away

    def fail(*args, **kwargs):
        raise AssertionError("tokenize_records called on a cache hit")

    monkeypatch.setattr(sft, "tokenize_records", fail)
    second = sft.build_batches(path, tok, layout, _options(), seed=1, cache_dir=cache)
    _assert_same(plain, first)
    _assert_same(plain, second)
    np.testing.assert_array_equal(second.store.tokens, plain.store.tokens)
    assert second.store.tokens.dtype == np.int32 and second.stats.examples == 40


def test_data_change_of_the_same_size_and_mtime_invalidates(tok, layout, tmp_path, calls):
    recs = arithmetic_records(24)
    path = write_jsonl(tmp_path / "d.jsonl", recs)
    cache = str(tmp_path / "cache")
    before = sft.build_batches(path, tok, layout, _options(), seed=0, cache_dir=cache)
    stat = os.stat(path)
    text = open(path).read()
    i = text.index("apples and gets ") + len("apples and gets ")
    digit = text[i]
    changed = text[:i] + ("7" if digit != "7" else "8") + text[i + 1:]  # one digit: same size
    with open(path, "w") as f:
        f.write(changed)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # and the old mtime
    assert os.stat(path).st_size == stat.st_size and os.stat(path).st_mtime_ns == stat.st_mtime_ns
    after = sft.build_batches(path, tok, layout, _options(), seed=0, cache_dir=cache)
    assert calls["n"] == 2 and len(_cache_files(cache)) == 2
    assert not np.array_equal(before.store.tokens, after.store.tokens)
    _assert_same(after, sft.build_batches(path, tok, layout, _options(), seed=0))


@pytest.mark.parametrize("change", [
    {"seq_len": 96},
    {"template": "none"},
    {"truncate": False},
    {"add_bos": False},
    {"question_field": "answer", "answer_field": "question"},
])
def test_options_are_in_the_key(tok, layout, tmp_path, calls, change):
    path = write_jsonl(tmp_path / "d.jsonl", arithmetic_records(24))
    cache = str(tmp_path / "cache")
    sft.build_batches(path, tok, layout, _options(), seed=0, cache_dir=cache)
    opts = _options(**change)
    lay = layout if opts.seq_len == 128 else sft.BatchLayout(layout.mesh, 8, 2, opts.seq_len)
    got = sft.build_batches(path, tok, lay, opts, seed=0, cache_dir=cache)
    assert calls["n"] == 2 and len(_cache_files(cache)) == 2
    _assert_same(got, sft.build_batches(path, tok, lay, opts, seed=0))
    sft.build_batches(path, tok, lay, opts, seed=0, cache_dir=cache)  # now a hit
    assert calls["n"] == 3


def test_a_new_seed_reuses_the_store_but_deals_anew(tok, layout, tmp_path, calls):
    """This process holds every slot, so any seed tokenizes the same records: a hit, dealt by the new seed."""
    path = write_jsonl(tmp_path / "d.jsonl", arithmetic_records(24))
    cache = str(tmp_path / "cache")
    sft.build_batches(path, tok, layout, _options(), seed=0, cache_dir=cache)
    got = sft.build_batches(path, tok, layout, _options(), seed=3, cache_dir=cache)
    assert calls["n"] == 1
    _assert_same(got, sft.build_batches(path, tok, layout, _options(), seed=3))


def test_another_process_share_is_another_entry(tok, layout, tmp_path, calls):
    path = write_jsonl(tmp_path / "d.jsonl", arithmetic_records(30))
    cache = str(tmp_path / "cache")
    sft.build_batches(path, tok, layout, _options(), seed=0, cache_dir=cache)
    part = sft.BatchLayout(layout.mesh, batch_size=8, micro_batches=2, seq_len=128)
    part.local_slots = part.local_slots[:, 1:3]
    part.local_row_ids = part.local_row_ids[1:3]
    half = sft.build_batches(path, tok, part, _options(), seed=0, cache_dir=cache)
    assert calls["n"] == 2 and len(_cache_files(cache)) == 2
    _assert_same(half, sft.build_batches(path, tok, part, _options(), seed=0))


def test_another_tokenizer_is_another_entry(tok, layout, tmp_path, calls):
    path = write_jsonl(tmp_path / "d.jsonl", arithmetic_records(24))
    cache = str(tmp_path / "cache")
    sft.build_batches(path, tok, layout, _options(), seed=0, cache_dir=cache)
    other = load_tokenizer(make_tokenizer(str(tmp_path / "tok2"), vocab_size=350))
    assert other.fingerprint() != tok.fingerprint()
    sft.build_batches(path, other, layout, _options(), seed=0, cache_dir=cache)
    assert calls["n"] == 2 and len(_cache_files(cache)) == 2


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "flip"])
def test_a_damaged_cache_file_is_rebuilt(tok, layout, tmp_path, calls, damage, caplog):
    path = write_jsonl(tmp_path / "d.jsonl", arithmetic_records(24))
    cache = str(tmp_path / "cache")
    good = sft.build_batches(path, tok, layout, _options(), seed=0, cache_dir=cache)
    (name,) = _cache_files(cache)
    file = os.path.join(cache, name)
    data = open(file, "rb").read()
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "garbage":
        data = os.urandom(len(data))
    elif damage == "empty":
        data = b""
    else:  # one byte inside the token array: only the zip CRC can tell
        k = data.index(b"tokens.npy") + 400
        data = data[:k] + bytes([data[k] ^ 0x5A]) + data[k + 1:]
    with open(file, "wb") as f:
        f.write(data)
    with caplog.at_level(logging.WARNING):
        rebuilt = sft.build_batches(path, tok, layout, _options(), seed=0, cache_dir=cache)
    assert calls["n"] == 2 and "unusable" in caplog.text
    _assert_same(good, rebuilt)
    sft.build_batches(path, tok, layout, _options(), seed=0, cache_dir=cache)  # repaired: a hit
    assert calls["n"] == 2


def test_unwritable_cache_and_unfingerprinted_tokenizer_only_skip_the_cache(tok, layout, tmp_path, calls, caplog):
    path = write_jsonl(tmp_path / "d.jsonl", arithmetic_records(16))
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("x")
    with caplog.at_level(logging.WARNING):
        got = sft.build_batches(path, tok, layout, _options(), seed=0, cache_dir=str(blocker / "cache"))
    assert "could not write token cache" in caplog.text
    _assert_same(got, sft.build_batches(path, tok, layout, _options(), seed=0))

    class NoFingerprint:  # a duck-typed tokenizer: encode/decode, no fingerprint
        bos_id, eos_id, pad_id = tok.bos_id, tok.eos_id, tok.pad_id
        encode, decode = tok.encode, tok.decode

    cache = str(tmp_path / "cache")
    got = sft.build_batches(path, NoFingerprint(), layout, _options(), seed=0, cache_dir=cache)
    assert _cache_files(cache) == []
    _assert_same(got, sft.build_batches(path, tok, layout, _options(), seed=0))


def test_store_round_trip_and_consistency_checks(tmp_path):
    store = sft.TokenStore()
    store.add(3, np.asarray([1, 70000, 5, 2], np.int32), 2)  # an id above uint16: stored as int32
    store.add(7, np.asarray([1, 9, 2], np.int32), 1)
    store.finalize()
    stats = sft.DataStats(records=2, examples=2, tokens=5)
    assert token_cache.save(str(tmp_path), "k" * 64, store, stats)
    loaded, loaded_stats = token_cache.load(str(tmp_path), "k" * 64)
    assert loaded_stats == stats
    for name in ("tokens", "offsets", "prompt_lens", "index", "lengths"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(store, name))
    assert token_cache.load(str(tmp_path), "j" * 64) is None  # absent
    with pytest.raises(ValueError):
        sft.TokenStore.from_arrays(store.tokens[:-1], store.offsets, store.prompt_lens, store.index)
    with pytest.raises(ValueError):
        sft.TokenStore.from_arrays(store.tokens, store.offsets, store.lengths, store.index)  # prompt covers all


def test_file_digest_reads_content(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"x" * (9 << 20))  # more than one read chunk
    b.write_bytes(b"x" * ((9 << 20) - 1) + b"y")
    assert token_cache.file_digest(a) != token_cache.file_digest(b)
    assert token_cache.file_digest(a) == token_cache.file_digest(str(a))
