"""SFT batches: tokenize with a prompt mask, pack rows, shard them over processes.

Tokens and masks
  An example is ``[BOS] + encode(prompt + response) + [EOS]``, the whole
  conversation encoded at once; the prompt is the template's
  (:mod:`mathjax.data.templates`) formatting of the question, and the loss
  starts at the first token not wholly inside it (:mod:`mathjax.data.tokenize`
  says where exactly, and why that matches the sampler's prompts). A row
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

Token cache
  With ``cache_dir``, each process's tokenized store is saved there keyed by
  content (data bytes, tokenizer, template, options, its record ids) and
  loaded instead of tokenizing on the next start (:mod:`mathjax.data.token_cache`).
"""

from __future__ import annotations

import bisect
import dataclasses
import logging
import os
from collections.abc import Sequence

import jax
import numpy as np
from jax.experimental import multihost_utils

from mathjax.data import sources, token_cache
from mathjax.data.layout import BatchLayout  # noqa: F401 - re-exported: callers build layouts via sft
from mathjax.data.templates import get_template
# Re-exported: tokenization lives in mathjax.data.tokenize; callers and tests reach it via sft.
from mathjax.data.tokenize import (  # noqa: F401
    DataStats,
    TokenStore,
    example_row_arrays,
    fit_length,
    tokenize_batch,
    tokenize_example,
    tokenize_records,
)

BATCH_KEYS = ("tokens", "targets", "loss_mask", "segment_ids", "positions")


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
    cache_dir: str | os.PathLike | None = None,
) -> SFTBatches:
    """Reads this process's share of the records and returns its batch stream.

    ``shuffle=False, repeat=False`` gives one ordered pass (eval sets): slots
    that run out yield padding rows.

    ``cache_dir``: where to keep tokenized stores between runs (the trainer's
    ``workdir/data_cache``); None tokenizes every time. A hit gives the same
    batches as tokenizing; a missing, stale or corrupt file is (re)built.

    Collective in multi-process runs: every process must call it. A bad record
    fails every process (the failing one with the error naming file and line).
    """
    error, store, stats, slot_of = None, None, DataStats(), np.zeros((0,), np.int64)
    try:
        source = sources.open_sources(files, hf_dataset, hf_config, split)
        fields = sources.resolve_fields(options.dataset, options.question_field, options.answer_field)
        template = get_template(options.template)
        if fields.question_field is None and template.format_prompt("") != "":
            raise ValueError(f"dataset preset {fields.name!r} trains on whole documents: it needs template 'none', "
                             f"not {options.template!r}")
        slot_of = assign_slots(len(source), layout.batch_size, seed, shuffle)
        local = np.nonzero(np.isin(slot_of, layout.local_slots.reshape(-1)))[0]
        primary = set(np.nonzero(np.isin(slot_of, layout.primary_slots))[0].tolist())
        add_bos = options.add_bos and tokenizer.bos_id is not None
        key = cached = None
        if cache_dir:
            key = token_cache.cache_key(
                token_cache.source_fingerprints(files, hf_dataset, source), tokenizer, template, fields,
                seq_len=options.seq_len, truncate=options.truncate, skip_bad=options.skip_bad_lines,
                add_bos=add_bos, local=local, counted=primary)
            cached = token_cache.load(cache_dir, key) if key else None
        if cached is not None:
            store, stats = cached
        else:
            store, stats = tokenize_records(source, local, tokenizer, template, fields, options.seq_len,
                                            options.truncate, options.skip_bad_lines, add_bos, primary)
            if key:
                token_cache.save(cache_dir, key, store, stats)
        stats.records = len(primary)
    except Exception as e:  # noqa: BLE001 - re-raised by sync_errors after the other processes hear of it
        error = e
    sync_errors(error, "reading SFT data")
    stats = sum_stats(stats)
    if stats.examples == 0:
        raise ValueError(f"no usable examples in {files or hf_dataset}: {stats.summary()}")
    return SFTBatches(layout, store, slot_of, options, seed, shuffle, stats, repeat)
