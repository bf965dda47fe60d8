"""Joint tokenization: SFT ids are the whole conversation encoded at once, and sampling prompts are their prefix.

Tokenizers are trained here, in seconds, on synthetic math text: a LLaMA-2-like
SentencePiece model (dummy prefix on) used directly and through Hugging Face,
the project's own tokenizer (``train_tokenizer``: no dummy prefix) both ways, a
byte-level BPE (Llama-3 / GPT-2 style) via ``tokenizers``, and a duck-typed
character tokenizer that takes the generic path.
"""

from __future__ import annotations

import io
import random
import types

import numpy as np
import pytest

from mathjax.data import procedural, sft, sources
from mathjax.data import tokenize as tz
from mathjax.data import tokenizer as tk
from mathjax.data.templates import Template, get_template, prompt_boundary
from sft_fixtures import arithmetic_records, write_jsonl

transformers = pytest.importorskip("transformers")

TEMPLATES = ("xwin_math", "plain", "alpaca")


def _records() -> list[dict]:
    recs = arithmetic_records(40, seed=7) + procedural.generate(40, seed=3, max_steps=3)
    # Responses that start with a word ("▁Tom"), a digit, or a multi-byte character.
    recs.append({"question": "Who has more?", "answer": "Tom has 12 and Mia has 9.\nThe answer is: 12."})
    recs.append({"question": "Say caf\u00e9 twice.", "answer": "\u00e9t\u00e9 \u65e5\u672c 3.\nThe answer is: 3."})
    return recs


def _corpus() -> list[str]:
    lines = []
    for rec in arithmetic_records(300, seed=123) + procedural.generate(150, seed=1, max_steps=3):
        for name in TEMPLATES:
            lines.extend(get_template(name).format_prompt(rec["question"]).split("\n"))
        lines.extend(rec["answer"].split("\n"))
    return [ln for ln in lines if ln]


def _train_sp(lines: list[str], dummy_prefix: bool) -> bytes:
    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=model, model_type="bpe", vocab_size=450,
        hard_vocab_limit=False, character_coverage=1.0, byte_fallback=True, split_digits=True,
        add_dummy_prefix=dummy_prefix, remove_extra_whitespaces=False, normalization_rule_name="identity",
        unk_id=0, bos_id=1, eos_id=2, pad_id=3, minloglevel=2, num_threads=1)
    return model.getvalue()


def _byte_level_bpe(lines: list[str]) -> tk.HFTokenizer:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.post_processor = processors.ByteLevel(trim_offsets=True)  # as GPT-2 and Llama-3 ship
    trainer = trainers.BpeTrainer(vocab_size=500, special_tokens=["<|begin|>", "<|end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator(lines, trainer)
    hf = transformers.PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<|begin|>", eos_token="<|end|>")
    return tk.HFTokenizer(hf)


class CharTokenizer:
    """A duck-typed tokenizer (encode/decode only): exercises the generic split."""

    bos_id, eos_id, pad_id = 1, 2, 0

    def encode(self, text, add_bos=False):
        return ([1] if add_bos else []) + [3 + ord(c) for c in text]

    def decode(self, ids):
        return "".join(chr(i - 3) for i in ids if i >= 3)


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("joint")
    lines = _corpus()
    llama = tk.SentencePieceTokenizer(_train_sp(lines, dummy_prefix=True))
    llama.save(root / "llama_hf")
    ours = tk.train_tokenizer(lines, root / "ours", vocab_size=450)
    return {
        "llama_sp": llama,
        "llama_hf": tk.load_tokenizer(root / "llama_hf"),
        "ours_sp": ours,
        "ours_hf": tk.load_tokenizer(root / "ours"),
        "byte_bpe": _byte_level_bpe(lines),
        "chars": CharTokenizer(),
    }


NAMES = ("llama_sp", "llama_hf", "ours_sp", "ours_hf", "byte_bpe", "chars")


def _reference_prompt_tokens(tok, ids: list[int], prefix: str) -> int:
    """Oracle: the most leading tokens whose decoding is a prefix of ``prefix`` (slow, by decoding)."""
    best = 0
    for k in range(1, len(ids) + 1):
        decoded = tok.decode(ids[:k])
        if len(decoded) > len(prefix):
            break
        if prefix.startswith(decoded):
            best = k
    return best


def _sampler_encode(tok, prompt: str) -> list[int]:
    """The sampler's own ``_encode`` on a string prompt (no model needed)."""
    from mathjax.sample.sampler import Sampler

    fake = types.SimpleNamespace(tokenizer=tok, add_bos=True, config=types.SimpleNamespace(vocab_size=1 << 20))
    return Sampler._encode(fake, prompt)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("template_name", TEMPLATES)
def test_example_is_the_whole_text_and_the_mask_starts_at_the_response(tokenizers, name, template_name):
    tok, template = tokenizers[name], get_template(template_name)
    exact_decode = not name.startswith("llama")  # dummy-prefix decoding drops a leading space
    for rec in _records():
        prompt, response = template.format_prompt(rec["question"]), template.format_response(rec["answer"])
        text, cut = prompt + response, prompt_boundary(prompt)
        ids, prompt_len = sft.tokenize_example(tok, template, rec["question"], rec["answer"])
        ids = ids.tolist()
        # (a) the ids are the tokenization of the whole text (+ BOS, EOS).
        assert ids == [tok.bos_id] + list(tok.encode(text)) + [tok.eos_id]
        # (b) the loss starts exactly at the response's first token ...
        assert prompt_len == 1 + _reference_prompt_tokens(tok, ids[1:-1], text[:cut])
        assert tok.decode(ids[:prompt_len]) == text[:cut]
        _, targets, mask = sft.example_row_arrays(np.asarray(ids), prompt_len)
        trained = tok.decode(targets[mask == 1].tolist())
        # ... and what is trained on is the response (with the prompt's trailing space, which
        # a dummy-prefix decode drops at the start of a decoding).
        assert trained == (text[cut:] if exact_decode else text[cut:].lstrip(" "))
        assert trained.lstrip(" ") == response
        # (c) no double space: the sequence spells the text, also across the boundary token
        # (the old encoding decodes to "ASSISTANT:  Tom" with a dummy-prefix tokenizer).
        assert tok.decode(ids) == text
        assert text.startswith(tok.decode(ids[:prompt_len + 1]).rstrip("\ufffd"))  # (a partial character)
        # (d) the sampler's prompt ids are a prefix of the training sequence.
        assert _sampler_encode(tok, prompt) == ids[:prompt_len]
        assert tz.encode_prompt(tok, prompt) == ids[:prompt_len]


@pytest.mark.parametrize("name", ("llama_sp", "llama_hf", "ours_sp", "ours_hf", "byte_bpe"))
def test_separate_encoding_is_not_the_whole_text(tokenizers, name):
    """Near miss: the old prompt-then-response encoding is not what the whole text tokenizes to."""
    tok, template = tokenizers[name], get_template("xwin_math")
    recs = _records()
    differs = prompt_not_prefix = 0
    for rec in recs:
        prompt, response = template.format_prompt(rec["question"]), template.format_response(rec["answer"])
        old = tok.encode(prompt, add_bos=True) + tok.encode(response) + [tok.eos_id]
        new = sft.tokenize_example(tok, template, rec["question"], rec["answer"])[0].tolist()
        differs += old != new
        if name.startswith("llama"):
            # LLaMA-2's double space: the prompt's lone "▁" and the response's own dummy prefix.
            assert tok.decode(old) == prompt + " " + response
        # Encoding the prompt with its trailing space is no prefix of the training sequence.
        with_space = tok.encode(prompt, add_bos=True)
        prompt_not_prefix += new[: len(with_space)] != with_space
    # Digits are split from "▁", so only responses starting with a word ("▁Tom") move the
    # boundary token; with a dummy prefix every response differs (its extra "▁").
    assert prompt_not_prefix > 0
    assert differs == (len(recs) if name.startswith("llama") else prompt_not_prefix)


def test_dummy_prefix_separate_encoding_doubles_the_space(tokenizers):
    tok, template = tokenizers["llama_sp"], get_template("xwin_math")
    prompt = template.format_prompt("Who has more?")
    response = "Tom has 12.\nThe answer is: 12."
    old = tok.encode(prompt, add_bos=True) + tok.encode(response)
    pieces = [tok._sp.id_to_piece(i) for i in old[1:]]
    n = len(tok.encode(prompt))
    assert pieces[n - 1] == "\u2581" and pieces[n].startswith("\u2581")  # "▁" then "▁Tom": two spaces
    new, prompt_len = sft.tokenize_example(tok, template, "Who has more?", response)
    pieces = [tok._sp.id_to_piece(int(i)) for i in new[1:-1]]
    assert "\u2581" not in pieces[prompt_len - 2:prompt_len]  # no lone "▁" at the end of the prompt
    assert pieces[prompt_len - 1].startswith("\u2581")  # the response starts with "▁Tom" (or "▁")


@pytest.mark.parametrize("name", ("llama_sp", "ours_sp", "ours_hf", "byte_bpe"))
def test_a_straddling_token_is_trained_on(tokenizers, name):
    """A boundary inside a token: that token counts as response, and the stats say so."""
    tok = tokenizers[name]
    template = Template(name="mid_word", prompt="{question}\nThe ans")  # boundary inside "answer"
    text, cut = template.format_example("What is 2 + 3?", "wer is: 5.")
    ids, n, aligned = tz.encode_split(tok, [text], [cut])[0]
    assert ids == list(tok.encode(text))
    assert n == _reference_prompt_tokens(tok, ids, text[:cut])
    assert not aligned
    assert len(tok.decode(ids[:n])) < cut < len(tok.decode(ids[:n + 1]))  # token n crosses the boundary
    ex, prompt_len = sft.tokenize_example(tok, template, "What is 2 + 3?", "wer is: 5.")
    assert prompt_len == n + 1
    # Trained on from the straddling token on: the text after the last whole prompt token.
    assert tok.decode(ex[prompt_len:].tolist()).lstrip(" ") == text[len(tok.decode(ids[:n])):].lstrip(" ")


def test_straddles_are_counted_in_the_stats(tokenizers, tmp_path):
    tok = tokenizers["ours_sp"]
    path = write_jsonl(tmp_path / "d.jsonl", [{"question": "What is 2 + 3?", "answer": "wer is: 5."}] * 3)
    template = Template(name="mid_word", prompt="{question}\nThe ans")
    _, stats = sft.tokenize_records(sources.open_sources(path), range(3), tok, template, sources.resolve_fields(),
                                    128, True, False)
    assert stats.boundary_in_token == 3 and "across the prompt/response boundary" in stats.summary()
    _, stats = sft.tokenize_records(sources.open_sources(path), range(3), tok, get_template("plain"),
                                    sources.resolve_fields(), 128, True, False)
    assert stats.boundary_in_token == 0


def _random_texts(n: int, seed: int) -> list[tuple[str, int]]:
    rng = random.Random(seed)
    pool = list("abcdeTom 0123456789+-*/=.,:?'\n") + ["  ", "The answer is: ", "ASSISTANT: ", "caf\u00e9",
                                                       "\u65e5\u672c", "\U0001f642"]
    out = []
    for _ in range(n):
        text = "".join(rng.choice(pool) for _ in range(rng.randint(1, 25)))
        out.append((text, rng.randint(0, len(text))))
    return out


@pytest.mark.parametrize("name", NAMES)
def test_fast_split_paths_match_the_generic_one(tokenizers, name):
    """SentencePiece piece lengths and HF offsets agree with the encode/decode-only method, cut anywhere."""
    tok = tokenizers[name]
    # Which fast path each back end takes (so none silently falls back to the generic one).
    if name.endswith("_sp"):
        assert tok._surface_bytes() is not None
    elif name != "chars":
        assert tok._trims_offsets() == (name == "byte_bpe")
    cases = _random_texts(300, seed=len(name))
    texts, cuts = [t for t, _ in cases], [c for _, c in cases]
    fast = tz.encode_split(tok, texts, cuts)
    for (text, cut), (ids, n, aligned) in zip(cases, fast):
        assert ids == list(tok.encode(text))
        ref_ids, ref_n, ref_aligned = tz.split_by_prefix(tok, text, cut)
        assert (n, aligned) == (ref_n, ref_aligned), (text, cut)
    assert [list(x) for x in getattr(tok, "encode_batch", lambda t: [tok.encode(x) for x in t])(texts)] == \
        [list(tok.encode(t)) for t in texts]


def test_hf_fallback_when_the_backend_differs(tokenizers):
    tok = tokenizers["ours_hf"]
    cases = _random_texts(50, seed=9)
    texts, cuts = [t for t, _ in cases], [c for _, c in cases]
    fast = tok.encode_split(texts, cuts)
    tok._backend_differs = True
    try:
        assert tok.encode_split(texts, cuts) == fast
        assert tok.encode_batch(texts) == [ids for ids, _, _ in fast]
    finally:
        del tok._backend_differs


@pytest.mark.parametrize("name", ("llama_sp", "ours_hf", "chars"))
def test_batched_records_equal_one_at_a_time(tokenizers, name, tmp_path, monkeypatch):
    tok = tokenizers[name]
    recs = _records()
    path = write_jsonl(tmp_path / "d.jsonl", recs)
    template = get_template("xwin_math")
    monkeypatch.setattr(tz, "ENCODE_BATCH", 7)  # several batches, a ragged last one
    store, _ = sft.tokenize_records(sources.open_sources(path), range(len(recs)), tok, template,
                                    sources.resolve_fields(), 4096, True, False)
    for k, rec in enumerate(recs):
        ids, prompt_len = store.example(k)
        want, want_len = sft.tokenize_example(tok, template, rec["question"], rec["answer"])
        np.testing.assert_array_equal(ids, want)
        assert prompt_len == want_len


def test_prompt_boundary_moves_only_spaces():
    assert prompt_boundary("ASSISTANT: ") == len("ASSISTANT:")
    assert prompt_boundary("Answer:   ") == len("Answer:")
    assert prompt_boundary("### Response:\n") == len("### Response:\n")
    assert prompt_boundary("plain") == 5 and prompt_boundary("") == 0
    text, cut = get_template("xwin_math").format_example(" Q? ", " A. ")
    assert text == get_template("xwin_math").format_prompt("Q?") + "A."  # the convention's text, unchanged
    assert text[:cut].endswith("ASSISTANT:") and text[cut:] == " A."
