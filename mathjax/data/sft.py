"""SFT batches: tokenize with a prompt mask, pack rows, shard them over processes.

Tokens and masks
  An example is ``[BOS] + prompt + response + [EOS]``; the prompt is the
  template's (:mod:`mathjax.data.templates`) formatting of the question. A row
  holds next-token pairs: ``tokens[j]`` predicts ``targets[j]``, and
  ``loss_mask[j]`` is 1 only where ``targets[j]`` is a response token or the
  EOS, so prompt tokens weigh zero. An example of ``L`` tokens fills ``L - 1``
  slots of a row, so it fits a row of ``seq_len`` when ``L <= seq_len + 1``.
  Longer ones are truncated (``truncate=True``; dropped if no response token
  would remain) or dropped, and counted.

Packing
  Several examples share a row, each with its own ``segment_ids`` value
  (1, 2, ...; 0 = padding) and positions restarting at 0, so attention never
  crosses examples and RoPE sees each example as if it were alone.

Order and sharding: *slots*
  The global batch has ``batch_size`` rows; row ``r`` of every batch comes
  from *slot* ``r``, a fixed share of the examples (a seeded permutation deals
  them out like cards). Each epoch a slot visits its examples in a fresh seeded
  order and packs them into rows. Consequences:

  * the batch at step ``s`` is a pure function of ``(data, seed, s)``: the data
    position in a checkpoint is just the step, and resuming is exact;
  * a process reads, parses and tokenizes only the examples of the slots its
    devices hold, yet the global batches do not depend on the number of
    processes (2 hosts x 4 devices == 1 host x 8 devices, bit for bit in data).

  Slots pack independently, so their epochs end at slightly different steps;
  ``steps_per_epoch`` is the mean over slots.
"""

from __future__ import annotations

import bisect
import dataclasses
import logging
from collections.abc import Sequence

import jax
import numpy as np
from jax.experimental import multihost_utils

from mathjax.data import sources
from mathjax.data.layout import BatchLayout  # noqa: F401 - re-exported: callers build layouts via sft
from mathjax.data.templates import Template, get_template

BATCH_KEYS = ("tokens", "targets", "loss_mask", "segment_ids", "positions")


# ---------------------------------------------------------------------------
# One example.


def tokenize_example(tokenizer, template: Template, question: str, response: str, add_bos: bool = True):
    """``(ids int32 [L], prompt_len)`` of ``[BOS] prompt response EOS``."""
    prompt = tokenizer.encode(template.format_prompt(question), add_bos=add_bos)
    answer = tokenizer.encode(template.format_response(response)) + [tokenizer.eos_id]
    return np.asarray(prompt + answer, np.int32), len(prompt)


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

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def summary(self) -> str:
        return (
            f"{self.examples} examples from {self.records} records "
            f"({self.tokens} tokens, {self.response_tokens} trained on); "
            f"truncated {self.truncated}, dropped {self.dropped_too_long} too long, "
            f"{self.dropped_prompt_too_long} with over-long prompts, {self.bad_records} bad records skipped"
        )


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
        self.tokens = np.concatenate(self._chunks) if self._chunks else np.zeros((0,), np.int32)
        self.lengths = np.asarray(self._lengths, np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)]).astype(np.int64)
        self.prompt_lens = np.asarray(self._prompt, np.int64)
        self.index = np.asarray(self._index, np.int64)
        del self._chunks, self._prompt, self._lengths, self._index
        return self

    def __len__(self) -> int:
        return len(self.index)

    def example(self, k: int) -> tuple[np.ndarray, int]:
        return self.tokens[self.offsets[k] : self.offsets[k + 1]], int(self.prompt_lens[k])


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

    ``counted``: indices whose outcome goes into the returned stats (the ones
    this process is primary for; default all), so summing stats over
    processes counts each record once.
    """
    store, stats, read_stats = TokenStore(), DataStats(), sources.ReadStats()
    for i, question, target in sources.read_pairs(source, indices, fields, skip_bad, read_stats):
        ids, prompt_len = tokenize_example(tokenizer, template, question, target, add_bos)
        ids, status = fit_length(ids, prompt_len, seq_len, truncate)
        count = counted is None or i in counted
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


# ---------------------------------------------------------------------------
# Packing.


def pack(lengths: np.ndarray, order: np.ndarray, seq_len: int, enabled: bool = True) -> list[list[int]]:
    """Next-fit packing of examples (given by ``order``) into rows of ``seq_len`` pairs.

    ``lengths`` are token counts (an example takes ``length - 1`` pairs).
    Next-fit keeps the shuffled order, so the batch stream stays a pure
    function of the seed; with ``enabled=False`` each example gets its own row.
    """
    rows: list[list[int]] = []
    used = seq_len + 1  # forces a new row for the first example
    for k in order:
        need = int(lengths[k]) - 1
        if not enabled or used + need > seq_len:
            rows.append([])
            used = 0
        rows[-1].append(int(k))
        used += need
    return rows


def build_row(store: TokenStore, examples: Sequence[int], seq_len: int) -> dict[str, np.ndarray]:
    """One packed row: ``tokens, targets, loss_mask, segment_ids, positions`` (int32 [seq_len])."""
    row = {key: np.zeros((seq_len,), np.int32) for key in BATCH_KEYS}
    start = 0
    for seg, k in enumerate(examples, 1):
        ids, prompt_len = store.example(k)
        tokens, targets, mask = example_row_arrays(ids, prompt_len)
        end = start + len(tokens)
        row["tokens"][start:end] = tokens
        row["targets"][start:end] = targets
        row["loss_mask"][start:end] = mask
        row["segment_ids"][start:end] = seg
        row["positions"][start:end] = np.arange(len(tokens))
        start = end
    return row


# ---------------------------------------------------------------------------
# Slots.


def assign_slots(num_records: int, num_slots: int, seed: int, shuffle: bool = True) -> np.ndarray:
    """Slot of every record: a seeded deal (round-robin over a permutation)."""
    order = np.random.default_rng([seed, 0x51075]).permutation(num_records) if shuffle else np.arange(num_records)
    slot = np.empty((num_records,), np.int64)
    slot[order] = np.arange(num_records) % num_slots
    return slot


class Slot:
    """The row stream of one batch row: its examples, reshuffled and repacked every epoch."""

    def __init__(self, slot_id: int, members: np.ndarray, lengths: np.ndarray, seq_len: int, seed: int,
                 shuffle: bool, pack_rows: bool, repeat: bool = True):
        self.slot_id = slot_id
        self.repeat = repeat
        self.members = members  # store indices, ordered by record index
        self._lengths = lengths
        self._seq_len = seq_len
        self._seed = seed
        self._shuffle = shuffle
        self._pack = pack_rows
        self._epochs: list[list[list[int]]] = []
        self._ends: list[int] = []  # cumulative row counts

    def rows(self, epoch: int) -> list[list[int]]:
        while len(self._epochs) <= epoch:
            e = len(self._epochs)
            order = self.members
            if self._shuffle:
                order = self.members[np.random.default_rng([self._seed, e, self.slot_id]).permutation(len(self.members))]
            rows = pack(self._lengths, order, self._seq_len, self._pack)
            self._epochs.append(rows)
            self._ends.append((self._ends[-1] if self._ends else 0) + len(rows))
        return self._epochs[epoch]

    def locate(self, step: int) -> tuple[int, int]:
        """``(epoch, row)`` of the row this slot contributes at ``step`` (row -1: empty slot)."""
        if len(self.members) == 0:
            return 0, -1
        if not self.repeat and step >= len(self.rows(0)):
            return 1, -1  # one pass only (eval): padding rows after the slot's last row
        while not self._ends or self._ends[-1] <= step:
            self.rows(len(self._epochs))
        epoch = bisect.bisect_right(self._ends, step)
        return epoch, step - (self._ends[epoch - 1] if epoch else 0)

    def row_examples(self, step: int) -> list[int]:
        epoch, row = self.locate(step)
        return [] if row < 0 else self.rows(epoch)[row]

    def epoch_progress(self, step: int) -> float:
        """Epochs completed at ``step`` (fractional)."""
        epoch, row = self.locate(step)
        return float(epoch) if row < 0 else epoch + row / max(1, len(self.rows(epoch)))


# ---------------------------------------------------------------------------
# Multi-process helpers.


def _allgather(x: np.ndarray) -> np.ndarray:
    """``[num_processes, ...]`` stack of every process's ``x``."""
    if jax.process_count() == 1:
        return np.asarray(x)[None]
    return np.asarray(multihost_utils.process_allgather(np.asarray(x)))


def sync_errors(error: BaseException | None, what: str) -> None:
    """Raises on every process if any process failed (so none waits forever in a collective)."""
    failed = _allgather(np.asarray([0 if error is None else 1], np.int32))[:, 0]
    if error is not None:
        raise error
    if failed.any():
        raise RuntimeError(f"{what} failed on process(es) {np.nonzero(failed)[0].tolist()}; see their logs")


def sum_stats(stats: DataStats) -> DataStats:
    values = np.asarray(list(stats.as_dict().values()), np.int64)
    total = _allgather(values).sum(axis=0)
    return DataStats(**dict(zip(stats.as_dict(), (int(v) for v in total))))


# ---------------------------------------------------------------------------
# The batch stream.


@dataclasses.dataclass(frozen=True)
class SFTDataOptions:
    """How records become rows (mirrors ``config.data`` plus the batch geometry)."""

    seq_len: int
    template: str = "xwin_math"
    pack: bool = True
    truncate: bool = True
    skip_bad_lines: bool = False
    add_bos: bool = True
    dataset: str = ""
    question_field: str = sources.DEFAULT_QUESTION_FIELD
    answer_field: str = sources.DEFAULT_ANSWER_FIELD


class SFTBatches:
    """Batches of packed rows for this process; ``batch(step)`` is a pure function of the step."""

    def __init__(self, layout: BatchLayout, store: TokenStore, slot_of_record: np.ndarray, options: SFTDataOptions,
                 seed: int, shuffle: bool, stats: DataStats, repeat: bool = True):
        self.layout = layout
        self.store = store
        self.stats = stats
        self.seed = seed
        self.num_records = len(slot_of_record)
        slot_of_example = slot_of_record[store.index] if len(store) else np.zeros((0,), np.int64)
        self.slots = {
            int(s): Slot(int(s), np.nonzero(slot_of_example == s)[0], store.lengths, options.seq_len, seed,
                         shuffle, options.pack, repeat)
            for s in layout.local_slots.reshape(-1)
        }

    def batch(self, step: int) -> dict[str, np.ndarray]:
        """Process-local arrays ``[micro_batches, local_rows, seq_len]`` for ``step``."""
        shape = self.layout.local_shape
        out = {k: np.zeros(shape, np.int32) for k in BATCH_KEYS}
        for m in range(shape[0]):
            for r in range(shape[1]):
                slot = self.slots[int(self.layout.local_slots[m, r])]
                row = build_row(self.store, slot.row_examples(step), self.layout.seq_len)
                for k in BATCH_KEYS:
                    out[k][m, r] = row[k]
        return out

    def global_batch(self, step: int) -> dict[str, jax.Array]:
        return self.layout.to_global(self.batch(step))

    def epoch(self, step: int) -> float:
        """Mean epochs completed over this process's slots (for logs)."""
        return float(np.mean([s.epoch_progress(step) for s in self.slots.values()])) if self.slots else 0.0

    def rows_in_epoch(self, epoch: int = 0) -> int:
        """Rows of ``epoch`` over all slots of all processes (collective)."""
        counts = np.full((self.layout.batch_size,), -1, np.int64)
        for s, slot in self.slots.items():
            counts[s] = len(slot.rows(epoch))
        return int(_allgather(counts).max(axis=0).clip(min=0).sum())

    def max_rows(self, epoch: int = 0) -> int:
        """Most rows any slot has in ``epoch`` (collective): an eval pass's length in batches."""
        local = max((len(s.rows(epoch)) for s in self.slots.values()), default=0)
        return int(_allgather(np.asarray([local], np.int64)).max())

    def state(self, step: int) -> dict:
        """The data position (a checkpoint item): the batch stream is a function of the step."""
        return {"next_step": int(step), "num_records": self.num_records, "batch_size": self.layout.batch_size,
                "seed": self.seed, "epoch": self.epoch(step)}

    def check_state(self, state: dict) -> int:
        """Validates a restored data position; returns the next step to read."""
        for key, mine in (("num_records", self.num_records), ("batch_size", self.layout.batch_size),
                          ("seed", self.seed)):
            if key in state and state[key] != mine:
                logging.warning("data position was saved with %s=%s, now %s: the resumed run will not "
                                "replay the original order", key, state[key], mine)
        return int(state["next_step"])


def build_batches(
    files: str | Sequence[str] | None,
    tokenizer,
    layout: BatchLayout,
    options: SFTDataOptions,
    seed: int,
    shuffle: bool = True,
    repeat: bool = True,
    hf_dataset: str = "",
    hf_config: str = "",
    split: str = "train",
) -> SFTBatches:
    """Reads this process's share of the records and returns its batch stream.

    ``shuffle=False, repeat=False`` gives one ordered pass (eval sets): slots
    that run out yield padding rows.

    Collective in multi-process runs: every process must call it. A bad record
    fails every process (the failing one with the error naming file and line).
    """
    error, store, stats, slot_of = None, None, DataStats(), np.zeros((0,), np.int64)
    try:
        source = sources.open_sources(files, hf_dataset, hf_config, split)
        fields = sources.resolve_fields(options.dataset, options.question_field, options.answer_field)
        template = get_template(options.template)
        slot_of = assign_slots(len(source), layout.batch_size, seed, shuffle)
        local = np.nonzero(np.isin(slot_of, layout.local_slots.reshape(-1)))[0]
        primary = set(np.nonzero(np.isin(slot_of, layout.primary_slots))[0].tolist())
        add_bos = options.add_bos and tokenizer.bos_id is not None
        store, stats = tokenize_records(source, local, tokenizer, template, fields, options.seq_len,
                                        options.truncate, options.skip_bad_lines, add_bos, primary)
        stats.records = len(primary)
    except Exception as e:  # noqa: BLE001 - re-raised by sync_errors after the other processes hear of it
        error = e
    sync_errors(error, "reading SFT data")
    stats = sum_stats(stats)
    if stats.examples == 0:
        raise ValueError(f"no usable examples in {files or hf_dataset}: {stats.summary()}")
    return SFTBatches(layout, store, slot_of, options, seed, shuffle, stats, repeat)
