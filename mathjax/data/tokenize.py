"""Text -> training ids: joint tokenization, the prompt/response split, the token store.

Joint tokenization
  An example's ids are ``[BOS] + encode(prompt + response) + [EOS]``: the
  whole conversation encoded at once, exactly the ids a model sees when that
  text is tokenized anywhere else. Encoding prompt and response apart and
  concatenating is not the same: with a dummy-prefix SentencePiece model
  (LLaMA-2, Mistral) the prompt ``... ASSISTANT: `` ends in a lone ``▁`` and the
  response starts with ``▁Word``, a double space the whole text never has;
  with our no-prefix models ``▁`` + ``Word`` replaces ``▁Word``.

The split
  The prompt is ``text[:boundary]`` with ``boundary =
  templates.prompt_boundary(prompt)`` (before the prompt's trailing spaces).
  ``prompt_len`` counts the leading tokens that lie wholly inside it; the loss
  starts at the next one. A token that straddles the boundary is trained on,
  i.e. counted as response (TRL's and axolotl's completion-only masking count
  it as prompt). The reason is sampling: the sampler only knows the prompt
  text, so the ids it can feed are the tokens wholly inside the prompt
  (:func:`encode_prompt`), and the first token the model must then produce is
  exactly the straddling one; masking it would leave the model untrained on
  its very first prediction. With the boundary before the trailing spaces,
  the split falls between tokens for every tokenizer we use, there is no
  straddling token, and the sampler's prompt ids are a prefix of every
  training sequence of that question. ``DataStats.boundary_in_token`` counts
  the examples where it still does not (e.g. the ``none`` template, which has
  no separator).
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
from collections.abc import Iterable, Sequence

import numpy as np

from mathjax.data import sources
from mathjax.data.templates import Template, prompt_boundary

# Records tokenized per native batch call: large enough to amortise the call,
# small enough that the texts of one batch stay a few MB.
ENCODE_BATCH = 1024


# ---------------------------------------------------------------------------
# The split, for any tokenizer.


def encode_prompt(tokenizer, prompt: str, add_bos: bool = True) -> list[int]:
    """The ids a model is prompted with: ``prompt`` up to ``templates.prompt_boundary``.

    The prompt's trailing spaces are left for the model to generate as part of
    its first token, as in training, so these ids are a prefix of the training
    sequence of any response (module docstring).
    """
    return list(tokenizer.encode(prompt[:prompt_boundary(prompt)], add_bos=add_bos))


def split_by_prefix(tokenizer, text: str, cut: int, ids: Sequence[int] | None = None,
                    head: Sequence[int] | None = None) -> tuple[list[int], int, bool]:
    """``Tokenizer.encode_split`` of one text with only ``encode`` and ``decode``.

    ``ids`` and ``head``: ``encode(text)`` and ``encode(text[:cut])`` if the caller has them.

    The tokens shared with ``encode(text[:cut])`` lie in the prompt (identical
    ids decode to identical text). If the prompt's ids are not all shared, the
    cut is inside a token or the prompt alone tokenizes differently
    (``aligned`` False), and further tokens are added while their decoding is
    still a prefix of ``text[:cut]`` (a decoding that ends in a partial UTF-8
    character is not a prefix, but a later one may be).
    """
    ids = list(tokenizer.encode(text) if ids is None else ids)
    head = [] if not cut else list(tokenizer.encode(text[:cut]) if head is None else head)
    n = 0
    while n < min(len(ids), len(head)) and ids[n] == head[n]:
        n += 1
    aligned = n == len(head)
    if not aligned:
        prefix = text[:cut]
        for k in range(n + 1, len(ids) + 1):
            decoded = tokenizer.decode(ids[:k])
            if len(decoded) > len(prefix):
                break
            if prefix.startswith(decoded):
                n = k
    return ids, n, aligned


def encode_split(tokenizer, texts: Sequence[str], cuts: Sequence[int]) -> list[tuple[list[int], int, bool]]:
    """``Tokenizer.encode_split`` for any tokenizer (duck-typed ones get :func:`split_by_prefix`)."""
    method = getattr(tokenizer, "encode_split", None)
    if method is not None:
        return method(texts, cuts)
    return [split_by_prefix(tokenizer, t, c) for t, c in zip(texts, cuts)]


# ---------------------------------------------------------------------------
# Examples.


def tokenize_batch(tokenizer, template: Template, pairs: Sequence[tuple[str, str]],
                   add_bos: bool = True) -> list[tuple[np.ndarray, int, bool]]:
    """``(ids int32 [L], prompt_len, aligned)`` of each ``(question, response)``, in one encode call."""
    if not pairs:
        return []
    texts, cuts = zip(*(template.format_example(q, a) for q, a in pairs))
    bos = [tokenizer.bos_id] if add_bos and tokenizer.bos_id is not None else []
    eos = [tokenizer.eos_id]
    return [(np.asarray(bos + list(ids) + eos, np.int32), len(bos) + n, aligned)
            for ids, n, aligned in encode_split(tokenizer, texts, cuts)]


def tokenize_example(tokenizer, template: Template, question: str, response: str,
                     add_bos: bool = True) -> tuple[np.ndarray, int]:
    """``(ids int32 [L], prompt_len)`` of ``[BOS] encode(prompt + response) EOS`` (module docstring)."""
    ids, prompt_len, _ = tokenize_batch(tokenizer, template, [(question, response)], add_bos)[0]
    return ids, prompt_len


def fit_length(ids: np.ndarray, prompt_len: int, seq_len: int, truncate: bool) -> tuple[np.ndarray | None, str]:
    """Fits an example to a row of ``seq_len`` next-token pairs.

    Returns ``(ids or None, status)`` with status ``ok``, ``truncated``,
    ``dropped`` (too long and ``truncate`` is off) or ``dropped_prompt`` (the
    prompt alone fills the row, so no response token would be trained on).
    """
    limit = seq_len + 1
    if len(ids) <= limit:
        return ids, "ok"
    if not truncate:
        return None, "dropped"
    if prompt_len >= limit:
        return None, "dropped_prompt"
    return ids[:limit], "truncated"


def example_row_arrays(ids: np.ndarray, prompt_len: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(tokens, targets, loss_mask)`` of one example: ``L - 1`` next-token pairs."""
    mask = (np.arange(1, len(ids)) >= prompt_len).astype(np.int32)
    return ids[:-1], ids[1:], mask


# ---------------------------------------------------------------------------
# Tokenized examples of this process.


@dataclasses.dataclass
class DataStats:
    """What happened to the records (summed over processes for the logs)."""

    records: int = 0  # records in the sources
    examples: int = 0  # kept examples
    truncated: int = 0
    dropped_too_long: int = 0
    dropped_prompt_too_long: int = 0
    bad_records: int = 0
    tokens: int = 0  # next-token pairs of the kept examples
    response_tokens: int = 0  # of which trained on
    boundary_in_token: int = 0  # examples whose prompt/response boundary falls inside a token

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def summary(self) -> str:
        text = (
            f"{self.examples} examples from {self.records} records "
            f"({self.tokens} tokens, {self.response_tokens} trained on); "
            f"truncated {self.truncated}, dropped {self.dropped_too_long} too long, "
            f"{self.dropped_prompt_too_long} with over-long prompts, {self.bad_records} bad records skipped"
        )
        if self.boundary_in_token:
            text += f"; {self.boundary_in_token} with a token across the prompt/response boundary"
        return text


class TokenStore:
    """Examples as one flat token array with offsets (memory: 4 bytes a token)."""

    def __init__(self):
        self._chunks: list[np.ndarray] = []
        self._prompt: list[int] = []
        self._index: list[int] = []
        self._lengths: list[int] = []

    def add(self, index: int, ids: np.ndarray, prompt_len: int) -> None:
        self._chunks.append(ids)
        self._prompt.append(prompt_len)
        self._index.append(index)
        self._lengths.append(len(ids))

    def finalize(self) -> "TokenStore":
        chunks = self._chunks or [np.zeros((0,), np.int32)]
        self.tokens = np.concatenate(chunks).astype(np.int32, copy=False)
        self.lengths = np.asarray(self._lengths, np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)]).astype(np.int64)
        self.prompt_lens = np.asarray(self._prompt, np.int64)
        self.index = np.asarray(self._index, np.int64)
        del self._chunks, self._prompt, self._lengths, self._index
        return self

    @classmethod
    def from_arrays(cls, tokens: np.ndarray, offsets: np.ndarray, prompt_lens: np.ndarray,
                    index: np.ndarray) -> "TokenStore":
        """A finalized store from its arrays (the token cache); raises ValueError if they do not fit together."""
        store = cls.__new__(cls)
        store.tokens = np.asarray(tokens).astype(np.int32)
        store.offsets = np.asarray(offsets, np.int64)
        store.prompt_lens = np.asarray(prompt_lens, np.int64)
        store.index = np.asarray(index, np.int64)
        store.lengths = np.diff(store.offsets)
        n = len(store.index)
        if (store.tokens.ndim != 1 or store.offsets.shape != (n + 1,) or store.prompt_lens.shape != (n,)
                or store.offsets[0] != 0 or store.offsets[-1] != len(store.tokens) or (store.lengths < 1).any()
                or (store.prompt_lens < 0).any() or (store.prompt_lens >= store.lengths).any()):
            raise ValueError("token store arrays are inconsistent")
        return store

    def __len__(self) -> int:
        return len(self.index)

    def example(self, k: int) -> tuple[np.ndarray, int]:
        return self.tokens[self.offsets[k] : self.offsets[k + 1]], int(self.prompt_lens[k])


def _batches(items: Iterable, size: int):
    it = iter(items)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def tokenize_records(
    source: sources.RecordSource,
    indices: Sequence[int],
    tokenizer,
    template: Template,
    fields: sources.Preset,
    seq_len: int,
    truncate: bool,
    skip_bad: bool,
    add_bos: bool = True,
    counted: set[int] | None = None,
) -> tuple[TokenStore, DataStats]:
    """Reads, converts and tokenizes the records ``indices`` of ``source``.

    Records are encoded ``ENCODE_BATCH`` at a time through the tokenizer's
    batch call; the result is identical to :func:`tokenize_example` on each.
    ``counted``: indices whose outcome goes into the returned stats (the ones
    this process is primary for; default all), so summing stats over
    processes counts each record once.
    """
    store, stats, read_stats = TokenStore(), DataStats(), sources.ReadStats()
    pairs = sources.read_pairs(source, indices, fields, skip_bad, read_stats)
    for chunk in _batches(pairs, ENCODE_BATCH):
        examples = tokenize_batch(tokenizer, template, [(q, t) for _, q, t in chunk], add_bos)
        for (i, _, _), (ids, prompt_len, aligned) in zip(chunk, examples):
            ids, status = fit_length(ids, prompt_len, seq_len, truncate)
            count = counted is None or i in counted
            if count and not aligned:
                stats.boundary_in_token += 1
            if ids is None:
                if count:
                    if status == "dropped":
                        stats.dropped_too_long += 1
                    else:
                        stats.dropped_prompt_too_long += 1
                continue
            store.add(i, ids, prompt_len)
            if count:
                stats.examples += 1
                stats.truncated += status == "truncated"
                stats.tokens += len(ids) - 1
                stats.response_tokens += len(ids) - max(prompt_len, 1)
    if read_stats.bad:
        logging.warning("skipped %d bad records; first: %s", read_stats.bad, read_stats.first_bad)
    stats.bad_records = sum(1 for i in read_stats.bad_indices if counted is None or i in counted)
    return store.finalize(), stats
