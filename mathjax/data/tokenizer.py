"""Tokenizers: train a small SentencePiece model, load any tokenizer behind one API.

Training (:func:`train_tokenizer`) makes a LLaMA-style SentencePiece BPE model
(byte fallback, digits split one per token, ``<unk>``=0, ``<s>``=1, ``</s>``=2)
plus a dedicated ``<pad>``=3, so padding can never be mistaken for a real token
(LLaMA itself has no pad). It is saved as a Hugging Face tokenizer directory
(``tokenizer.model``, ``tokenizer.json``, ``tokenizer_config.json``,
``special_tokens_map.json``) that ``transformers.AutoTokenizer`` loads as a
``LlamaTokenizer`` encoding and decoding exactly like our wrapper (checked at
the end of training).

Whitespace: our models are trained *without* SentencePiece's dummy prefix
(``add_dummy_prefix=False``), with identity normalization and no whitespace
collapsing. So ``encode`` is exactly invertible on any text that does not
contain the meta symbol ``▁`` (U+2581), and encoding is concatenative for
decoding: ``decode(encode(prompt, add_bos=True) + encode(response)) ==
prompt + response``, and ``decode(encode(response)) == response``, which is
what the sampler needs when it decodes generated ids alone.

Tokenizers loaded from Hugging Face directories keep their own conventions:
LLaMA-2's adds a dummy-prefix space to every ``encode`` call, which its
``decode`` strips again, so response ids alone still decode to the response,
but prompt and response ids decoded together show the prompt's trailing space
twice.

Joint encoding (what SFT and the sampler rely on, see ``templates``): a
training example is ``encode(prompt + response)``, not the two encoded apart,
and :meth:`Tokenizer.encode_split` says how many of its leading tokens lie in
the prompt; ``tokenize.encode_prompt`` is the matching rule for sampling prompts.
The back ends answer in one native batch call: SentencePiece from a table of
piece lengths (exact under identity normalization), Hugging Face fast
tokenizers from their offset mappings; anything else falls back to
``tokenize.split_by_prefix``, which needs only ``encode`` and ``decode``.

Special-token strings inside text (``"<s>"``) are plain text for our trained
tokenizers (``split_special_tokens`` is set in their config, as SentencePiece
does), so untrusted questions cannot inject control tokens. For other HF
tokenizers the wrapper keeps their configured behaviour.

Pad id: ours is ``<pad>``; for HF tokenizers it is their pad token, else
``<unk>`` (LLaMA-2's common choice), else EOS (Llama-3, Qwen2). Code should
mask padding with explicit masks rather than by comparing ids to ``pad_id``.
"""

from __future__ import annotations

import abc
import bisect
import hashlib
import io
import itertools
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from mathjax.data.templates import get_template
from mathjax.data.tokenize import split_by_prefix

UNK, BOS, EOS, PAD = "<unk>", "<s>", "</s>", "<pad>"
UNK_ID, BOS_ID, EOS_ID, PAD_ID = 0, 1, 2, 3

# Strings every export is checked on: both back ends must agree on them.
PROBE_TEXTS = (
    "",
    " ",
    "Question: What is 12 * 34?\nAnswer: ",
    "Mia has 25 apples.\n3 * 12 = 36\nThe answer is: 42.",
    "  two  spaces, trailing ",
    "\ttab\n\nblank line",
    "caf\u00e9 na\u00efve \u65e5\u672c\u8a9e \U0001f642 \u2211 x\u00b2",
    "1234567890 -7/2 3.14 1,000,000",
    "<s> not a control token </s> <pad> <unk>",
)


class Tokenizer(abc.ABC):
    """The tokenizer interface the trainer and the sampler use.

    Attributes:
      bos_id: beginning-of-sequence id, or None if the model has none (Qwen2).
      eos_id: end-of-sequence id, appended to training targets and stopping samples.
      pad_id: id used to fill batches (see module docstring).
      vocab_size: number of ids the tokenizer can produce (a model's embedding
        table may be larger; ``decode`` drops ids outside the tokenizer's range).
    """

    bos_id: int | None
    eos_id: int
    pad_id: int
    vocab_size: int

    @abc.abstractmethod
    def encode(self, text: str, add_bos: bool = False) -> list[int]:
        """Token ids of ``text``, with ``bos_id`` first if ``add_bos`` (and one exists)."""

    @abc.abstractmethod
    def decode(self, ids: Sequence[int]) -> str:
        """Text of ``ids``, skipping special tokens and out-of-range ids."""

    @abc.abstractmethod
    def save(self, directory: str | os.PathLike) -> None:
        """Writes a Hugging Face tokenizer directory (for HF export)."""

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """``[encode(t) for t in texts]`` (no BOS); back ends override it with one native call."""
        return [self.encode(t) for t in texts]

    def encode_split(self, texts: Sequence[str], cuts: Sequence[int]) -> list[tuple[list[int], int, bool]]:
        """Encodes each whole text and finds where its first ``cut`` characters end in its tokens.

        Returns ``(ids, n, aligned)`` per text: ``ids == encode(text)``; its
        first ``n`` tokens lie wholly inside ``text[:cut]`` (a token that
        straddles the cut is *not* counted: it is the first one a sampler fed
        ``text[:cut]`` has to produce); ``aligned`` is True when the cut falls
        between two tokens.
        """
        return [split_by_prefix(self, text, cut) for text, cut in zip(texts, cuts)]

    def fingerprint(self) -> str | None:
        """A digest of everything that decides ``encode`` (cache keys), or None if unknown."""
        return None


class SentencePieceTokenizer(Tokenizer):
    """A SentencePiece model used directly (a ``.model`` file or its bytes)."""

    def __init__(self, model_proto: bytes):
        import sentencepiece as spm

        self.model_proto = model_proto
        self._sp = spm.SentencePieceProcessor(model_proto=model_proto)
        self.vocab_size = self._sp.get_piece_size()
        bos = self._sp.bos_id()
        self.bos_id = bos if bos >= 0 else None
        self.eos_id = self._sp.eos_id()
        if self.eos_id < 0:
            raise ValueError("SentencePiece model has no EOS piece")
        pad, unk = self._sp.pad_id(), self._sp.unk_id()
        self.pad_id = pad if pad >= 0 else (unk if unk >= 0 else self.eos_id)
        # HF's decode(skip_special_tokens=True) drops unk/bos/eos/pad and control
        # pieces; SentencePiece would render unk as " \u2047 ". Match HF.
        self._skip = {
            i for i in range(self.vocab_size) if self._sp.is_control(i) or self._sp.is_unknown(i)
        }
        # Whether every encode starts with a dummy-prefix space (LLaMA-2 models do).
        self.add_prefix_space = self._sp.encode("a", out_type=str)[0].startswith("\u2581")

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> SentencePieceTokenizer:
        with open(path, "rb") as f:
            return cls(f.read())

    def encode(self, text: str, add_bos: bool = False) -> list[int]:
        ids = self._sp.encode(text)
        return [self.bos_id] + ids if add_bos and self.bos_id is not None else ids

    def decode(self, ids: Sequence[int]) -> str:
        return self._sp.decode([int(i) for i in ids if 0 <= i < self.vocab_size and int(i) not in self._skip])

    def save(self, directory: str | os.PathLike) -> None:
        _atomic_dir(directory, lambda tmp: _write_hf_files(self, tmp))

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        # SentencePiece encodes a list on a thread pool (-1: all cores); starting
        # it costs ~0.6 ms, more than encoding a few texts.
        return self._sp.encode(list(texts), num_threads=-1 if len(texts) >= 32 else 1) if texts else []

    def fingerprint(self) -> str:
        return hashlib.sha256(self.model_proto).hexdigest()

    def _surface_bytes(self) -> np.ndarray | None:
        """UTF-8 length of the text each id stands for, or None where that is not exact.

        Under identity normalization (LLaMA-2, Mistral, ours) the pieces of an
        encoding spell the input with spaces as ``▁`` plus at most one dummy
        prefix, so cumulative piece lengths are the tokens' end offsets: the
        offsets SentencePiece's protos carry, without building a proto per
        token (that costs ~4x the encode itself).
        """
        if not hasattr(self, "_surface"):
            self._surface = None
            try:
                from sentencepiece import sentencepiece_model_pb2
            except ImportError:
                return None
            model = sentencepiece_model_pb2.ModelProto.FromString(self.model_proto)
            norm = model.normalizer_spec
            if norm.name == "identity" and not norm.remove_extra_whitespaces and \
                    not model.trainer_spec.treat_whitespace_as_suffix:
                sp = self._sp
                self._surface = np.asarray([
                    1 if sp.is_byte(i) else 0 if sp.is_control(i) or sp.is_unknown(i)
                    else len(sp.id_to_piece(i).replace("\u2581", " ").encode()) for i in range(self.vocab_size)
                ], np.int64)
        return self._surface

    def encode_split(self, texts: Sequence[str], cuts: Sequence[int]) -> list[tuple[list[int], int, bool]]:
        texts = list(texts)
        surface = self._surface_bytes()
        batch = self.encode_batch(texts)
        if surface is None or not texts:
            return [split_by_prefix(self, t, c, ids) for t, c, ids in zip(texts, cuts, batch)]
        lens = np.asarray([len(ids) for ids in batch], np.int64)
        bounds = np.concatenate([[0], np.cumsum(lens)])
        flat = np.fromiter(itertools.chain.from_iterable(batch), np.int64, int(bounds[-1]))
        ends = np.concatenate([[0], np.cumsum(surface[flat])])  # ends[j + 1]: bytes up to the end of token j
        base = ends[bounds[:-1]]
        nbytes = np.asarray([len(t.encode()) for t in texts], np.int64)
        cut_bytes = np.asarray([len(t[:c].encode()) for t, c in zip(texts, cuts)], np.int64)
        shift = ends[bounds[1:]] - base - nbytes  # 1 where a dummy prefix was added
        ok = (shift == 0) | ((shift == 1) & self.add_prefix_space)
        target = base + cut_bytes + shift
        n = np.clip(np.searchsorted(ends[1:], target, side="right") - bounds[:-1], 0, lens)
        n[cut_bytes == 0] = 0  # an empty prompt owns no token, not even a lone dummy prefix
        aligned = (ends[bounds[:-1] + n] == target) | (cut_bytes == 0)
        return [(ids, int(k), bool(a)) if good else split_by_prefix(self, t, c, ids)
                for ids, k, a, good, t, c in zip(batch, n, aligned, ok, texts, cuts)]


class HFTokenizer(Tokenizer):
    """A ``transformers`` tokenizer (any model: LLaMA-2/3, Mistral, Qwen2, ours)."""

    def __init__(self, hf_tokenizer):
        self.hf = hf_tokenizer
        self.vocab_size = len(hf_tokenizer)
        self.bos_id = hf_tokenizer.bos_token_id
        if hf_tokenizer.eos_token_id is None:
            raise ValueError(f"tokenizer {hf_tokenizer.name_or_path!r} has no EOS token")
        self.eos_id = hf_tokenizer.eos_token_id
        for pad in (hf_tokenizer.pad_token_id, hf_tokenizer.unk_token_id, self.eos_id):
            if pad is not None:
                self.pad_id = pad
                break

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike) -> HFTokenizer:
        from transformers import AutoTokenizer

        return cls(AutoTokenizer.from_pretrained(os.fspath(path)))

    def encode(self, text: str, add_bos: bool = False) -> list[int]:
        # BOS is added here, not by the HF post-processor, so every tokenizer
        # behaves alike whatever its add_bos_token setting.
        ids = self.hf.encode(text, add_special_tokens=False)
        return [self.bos_id] + ids if add_bos and self.bos_id is not None else ids

    def decode(self, ids: Sequence[int]) -> str:
        ids = [int(i) for i in ids if 0 <= i < self.vocab_size]
        return self.hf.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)

    def save(self, directory: str | os.PathLike) -> None:
        _atomic_dir(directory, self.hf.save_pretrained)

    def _backend(self, texts: Sequence[str]):
        """Rust encodings of ``texts`` (fast tokenizers), or None.

        The backend is called directly: ``hf(texts, return_offsets_mapping=True)``
        gives the same ids at half the speed. The first text of every batch is
        checked against ``hf.encode``; a tokenizer whose Python side changes
        the text first is then used through ``encode`` from there on.
        """
        backend = getattr(self.hf, "backend_tokenizer", None) if getattr(self.hf, "is_fast", False) else None
        if backend is None or not texts or getattr(self, "_backend_differs", False):
            return None
        encodings = backend.encode_batch(list(texts), add_special_tokens=False)
        if encodings[0].ids != self.hf.encode(texts[0], add_special_tokens=False):
            logging.warning("%s: backend encoding differs from encode(); batches go through encode()",
                            self.hf.name_or_path)
            self._backend_differs = True
            return None
        return encodings

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        encodings = self._backend(texts)
        return [e.ids for e in encodings] if encodings is not None else super().encode_batch(texts)

    def _trims_offsets(self) -> bool:
        """Whether the post-processor trims spaces off offsets (ByteLevel: GPT-2, Llama-3, Qwen2).

        Trimmed, a lone space token reads as empty and shifts past the cut, so
        such tokenizers split by shared prefix instead (``split_by_prefix``).
        """
        if not hasattr(self, "_trims"):
            config = json.loads(self.hf.backend_tokenizer.to_str()).get("post_processor")
            self._trims = '"trim_offsets": true' in json.dumps(config)
        return self._trims

    def encode_split(self, texts: Sequence[str], cuts: Sequence[int]) -> list[tuple[list[int], int, bool]]:
        encodings = self._backend(texts)
        if encodings is None:
            return super().encode_split(texts, cuts)
        if self._trims_offsets():
            heads = self._backend([t[:c] for t, c in zip(texts, cuts)])
            if heads is None:
                return super().encode_split(texts, cuts)
            return [split_by_prefix(self, t, c, e.ids, h.ids) for t, c, e, h in zip(texts, cuts, encodings, heads)]
        out = []
        for e, cut in zip(encodings, cuts):
            offsets = e.offsets  # character spans; sorted by end
            n = bisect.bisect_right(offsets, cut, key=lambda o: o[1])
            while n and cut and offsets[n - 1][0] >= cut:  # empty spans at the cut start the response
                n -= 1
            aligned = (n == 0 and cut == 0) or (n > 0 and offsets[n - 1][1] == cut)
            out.append((e.ids, 0 if cut == 0 else n, aligned))
        return out

    def fingerprint(self) -> str:
        h = hashlib.sha256(f"{type(self.hf).__name__} {self.bos_id} {self.eos_id}".encode())
        h.update(repr(getattr(self.hf, "split_special_tokens", None)).encode())
        if getattr(self.hf, "is_fast", False):
            h.update(self.hf.backend_tokenizer.to_str().encode())  # model, normalizer, pre-tokenizer, added tokens
        else:
            sp = getattr(self.hf, "sp_model", None)
            if sp is not None:
                h.update(sp.serialized_model_proto())
            h.update(json.dumps(sorted(self.hf.get_vocab().items())).encode())
            h.update(repr(sorted((k, repr(v)) for k, v in self.hf.init_kwargs.items())).encode())
        return h.hexdigest()


def load_tokenizer(path: str | os.PathLike) -> Tokenizer:
    """Loads a tokenizer: a SentencePiece ``.model`` file, or an HF tokenizer dir / hub id."""
    path = os.fspath(path)
    if os.path.isfile(path):
        if not path.endswith(".model"):
            raise ValueError(f"expected a SentencePiece .model file or a directory, got {path!r}")
        return SentencePieceTokenizer.from_file(path)
    return HFTokenizer.from_pretrained(path)


# ---------------------------------------------------------------------------
# Training.


def iter_texts(
    sources: Iterable[str | os.PathLike] | str | os.PathLike,
    fields: Sequence[str] = ("question", "answer"),
    template: str | None = None,
) -> Iterator[str]:
    """Texts from a mix of strings and files.

    An item is read as a file if it is a ``PathLike``, or a ``str`` that names an
    existing file ending in ``.jsonl``/``.json``/``.txt``. A ``.txt`` file is one
    text; any other file is JSONL (one record a line; the given ``fields`` are
    used, missing ones skipped). Any other string is itself a text. With ``template``, a record's ``question`` is
    first formatted as that template's prompt, so the prompt's words get tokens.
    """
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    prompt = get_template(template).format_prompt if template else None
    for item in sources:
        path = os.fspath(item)
        is_file = isinstance(item, os.PathLike) or (
            path.endswith((".jsonl", ".json", ".txt")) and "\n" not in path and os.path.isfile(path))
        if not is_file:
            yield path
        elif path.endswith(".txt"):
            with open(path, encoding="utf-8") as f:
                yield f.read()
        else:
            with open(path, encoding="utf-8") as f:
                for line in f:
                    if not line.strip():
                        continue
                    record = json.loads(line)
                    for field in fields:
                        value = record.get(field)
                        if isinstance(value, str):
                            yield prompt(value) if prompt and field == "question" else value


def train_tokenizer(
    texts_or_jsonl_files: Iterable[str | os.PathLike] | str | os.PathLike,
    output_dir: str | os.PathLike,
    vocab_size: int = 1024,
    *,
    fields: Sequence[str] = ("question", "answer"),
    template: str | None = None,
    max_lines: int = 1_000_000,
    num_threads: int = 1,
) -> SentencePieceTokenizer:
    """Trains a LLaMA-style SentencePiece BPE tokenizer and saves an HF tokenizer dir.

    Args:
      texts_or_jsonl_files: texts and/or ``.jsonl``/``.txt`` files (see :func:`iter_texts`).
      output_dir: destination; written to a temp dir beside it and renamed, so a
        crash never leaves a half-written tokenizer.
      vocab_size: upper bound on the vocabulary (260 ids are reserved: 4
        specials and 256 byte-fallback pieces). A small corpus may yield fewer.
      fields: JSONL fields to read.
      template: prompt template name (``templates.TEMPLATES``) applied to questions.
      max_lines: cap on training lines (an even, deterministic subsample).
      num_threads: SentencePiece trainer threads.

    Returns:
      The trained tokenizer (also loadable with ``load_tokenizer(output_dir)``).
    """
    import sentencepiece as spm

    if vocab_size <= 260:
        raise ValueError(f"vocab_size must exceed 260 (specials + bytes), got {vocab_size}")
    # SentencePiece trains on lines; a newline itself is left to byte fallback
    # (<0x0A>), as in LLaMA.
    lines = [ln for text in iter_texts(texts_or_jsonl_files, fields, template) for ln in text.split("\n") if ln]
    if not lines:
        raise ValueError("no training text")
    if len(lines) > max_lines:
        stride = len(lines) / max_lines
        lines = [lines[int(i * stride)] for i in range(max_lines)]
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_writer=model,
        model_type="bpe",  # transformers' LlamaTokenizer (v5) is BPE-only
        vocab_size=vocab_size,
        hard_vocab_limit=False,
        character_coverage=1.0,
        byte_fallback=True,
        split_digits=True,
        # Identity normalization, no dummy prefix, no whitespace collapsing:
        # exact round trips and concatenative encoding (module docstring).
        normalization_rule_name="identity",
        add_dummy_prefix=False,
        remove_extra_whitespaces=False,
        allow_whitespace_only_pieces=False,
        max_sentence_length=1 << 16,
        unk_id=UNK_ID, bos_id=BOS_ID, eos_id=EOS_ID, pad_id=PAD_ID,
        unk_piece=UNK, bos_piece=BOS, eos_piece=EOS, pad_piece=PAD,
        num_threads=num_threads,
        minloglevel=2,
    )
    tok = SentencePieceTokenizer(model.getvalue())
    tok.save(output_dir)
    return tok


# ---------------------------------------------------------------------------
# HF export.


def _atomic_dir(directory: str | os.PathLike, write) -> None:
    """Calls ``write(tmp_dir)`` and renames the result onto ``directory``."""
    directory = os.path.abspath(os.fspath(directory))
    parent = os.path.dirname(directory)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".tok-", dir=parent)
    try:
        write(tmp)
        if os.path.isdir(directory):
            shutil.rmtree(directory)
        os.replace(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _write_hf_files(tok: SentencePieceTokenizer, directory: str) -> None:
    """tokenizer.model + configs, then tokenizer.json converted by transformers.

    tokenizer.json spares every later load the SentencePiece conversion and
    pins the result; the conversion is then checked against SentencePiece.
    """
    from transformers import AutoTokenizer

    sp = tok._sp
    specials = {"unk_token": UNK, "bos_token": BOS, "eos_token": EOS, "pad_token": PAD}
    specials = {k: v for k, v in specials.items() if sp.piece_to_id(v) != sp.unk_id() or v == UNK}
    with open(os.path.join(directory, "tokenizer.model"), "wb") as f:
        f.write(tok.model_proto)
    config = {
        "tokenizer_class": "LlamaTokenizer",
        **specials,
        "add_bos_token": True,  # HF users calling tokenizer(prompt) get BOS like the trainer does
        "add_eos_token": False,
        "add_prefix_space": tok.add_prefix_space,
        "legacy": False,
        "split_special_tokens": True,
        "clean_up_tokenization_spaces": False,
        "model_max_length": 1 << 20,
    }
    _write_json(os.path.join(directory, "tokenizer_config.json"), config)
    _write_json(os.path.join(directory, "special_tokens_map.json"), specials)
    hf = AutoTokenizer.from_pretrained(directory)
    hf.backend_tokenizer.save(os.path.join(directory, "tokenizer.json"))
    probes = PROBE_TEXTS
    if tok.add_prefix_space:
        # Known HF divergence for dummy-prefix models (LLaMA-2 too): its Metaspace
        # adds no prefix to text that already starts with a space; SentencePiece does.
        probes = tuple(t for t in probes if not t[:1].isspace())
    check_same(tok, HFTokenizer(AutoTokenizer.from_pretrained(directory)), probes)


def check_same(a: Tokenizer, b: Tokenizer, texts: Iterable[str] = PROBE_TEXTS) -> None:
    """Raises ValueError unless ``a`` and ``b`` encode and decode ``texts`` alike."""
    for text in texts:
        ia, ib = a.encode(text, add_bos=True), b.encode(text, add_bos=True)
        if ia != ib:
            raise ValueError(f"tokenizers disagree on encode({text!r}): {ia[:16]} vs {ib[:16]}")
        da, db = a.decode(ia), b.decode(ib)
        if da != db:
            raise ValueError(f"tokenizers disagree on decode: {da!r} vs {db!r}")


def _write_json(path: str, obj) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")
